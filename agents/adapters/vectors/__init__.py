"""Content vectors: one interface (store.VectorStore), two Qdrant backends."""

from agents.vectors.factory import create_vector_store
from agents.vectors.store import ScoredPoint, VectorFilter, VectorPoint, VectorStore

__all__ = ["ScoredPoint", "VectorFilter", "VectorPoint", "VectorStore", "create_vector_store"]
