"""The `mgw` command line."""
