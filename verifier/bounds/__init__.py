"""bounds layer of verifier: sound bounds on a `Graph`'s nodes and on linear objectives C·y.

- `ops`: the op registry (forward, interval and backward linear rules per canonical op).
- `ibp`: `ibp` (every node's box) and `ibp_objective` (C folded through the trailing affine ops).
- `crown`: `crown` (CROWN with CROWN intermediate bounds, injectable relu slopes for alpha-CROWN),
  `crown_with_input_coefficients`, `crown_objective`.
- `backward`: the DAG interpreter for backward linear bounds; `box`: shared helpers (`best_of`, ...).

Nothing is imported here, so `import verifier.bounds.ops` stays cheap.
"""
