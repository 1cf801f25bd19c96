"""report layer of verifier."""
