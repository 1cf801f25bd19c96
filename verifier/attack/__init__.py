"""attack layer of verifier."""
