"""Helpers shared by tests (and run as scripts by some of them)."""
