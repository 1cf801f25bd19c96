"""model layer of verifier."""
