"""Content vectors: one interface (store.VectorStore), two Qdrant backends."""

from agents.adapters.vectors.factory import create_vector_store
from agents.adapters.vectors.store import ScoredPoint, VectorFilter, VectorPoint, VectorStore

__all__ = ["ScoredPoint", "VectorFilter", "VectorPoint", "VectorStore", "create_vector_store"]
