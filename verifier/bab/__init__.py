"""bab layer of verifier."""
