"""Text processing: token tables and language directories."""
