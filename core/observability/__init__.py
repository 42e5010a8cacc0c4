"""Logging, correlation ids, metrics and health shared by every process."""
