"""Pieces both services share at their edges: JSON logs and the HTTP error/metrics plumbing."""
