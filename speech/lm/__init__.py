"""Word language models (n-gram, ARPA)."""
