"""Typed, versioned payload models: pure data, no I/O. Exported for subscribers."""
