"""Text embeddings: one dimension (EMBEDDING_DIMENSION, 384) for every vector we store."""

from agents.adapters.embeddings.base import Embedder, content_text, normalize_rows
from agents.adapters.embeddings.factory import create_embedder

__all__ = ["Embedder", "content_text", "create_embedder", "normalize_rows"]
