"""Adapters to external engines the domain slices use: embedding models and vector stores."""
