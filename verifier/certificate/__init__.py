"""Unsat certificates for input-split proofs, and their independent checker.

`format` (the file layout) and `checker` (with `network` and `rigorous`) import no torch: a
certificate can be checked by code that shares nothing with the verifier's bound computations.
`recorder` collects the split tree during the verifier's search.
"""
