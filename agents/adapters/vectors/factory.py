"""Pick the vector store backend from the settings."""

from __future__ import annotations

from agents.adapters.vectors.store import VectorStore
from core.config import Settings, secret_value


def create_vector_store(settings: Settings, collection: str | None = None) -> VectorStore:
    """A Qdrant server when QDRANT_URL is set, else the in-process engine under QDRANT_PATH.

    Each collection is its own directory under QDRANT_PATH (QDRANT_PATH/content, ...).
    Call `ensure_collection()` before use.
    """
    name = collection or settings.qdrant.collection
    dimension = settings.embedding.dimension
    if settings.qdrant.url:
        from qdrant_client import AsyncQdrantClient

        from agents.adapters.vectors.client import QdrantClientStore

        # No version probe in the constructor: it is a blocking HTTP call (and only a warning
        # when it fails); ensure_collection() is the first request and fails loudly instead.
        client = AsyncQdrantClient(
            url=settings.qdrant.url,
            api_key=secret_value(settings.qdrant.api_key),
            check_compatibility=False,
        )
        from agents.adapters.vectors.guarded import BreakerGuardedStore

        return BreakerGuardedStore(QdrantClientStore(client, name, dimension))

    from agents.adapters.vectors.edge import EdgeVectorStore

    return EdgeVectorStore(settings.qdrant.path / name, dimension)
