"""bounds layer of verifier."""
