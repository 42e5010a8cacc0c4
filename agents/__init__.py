"""Faust agents: decode, call domain logic, write through a store."""
