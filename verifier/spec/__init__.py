"""spec layer of verifier."""
