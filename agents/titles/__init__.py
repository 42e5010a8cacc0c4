"""Canonical titles: the content-store agent and the store of canonical records."""
