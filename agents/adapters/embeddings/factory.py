"""Pick the embedder the settings ask for, refusing a dimension it cannot give."""

from __future__ import annotations

from agents.adapters.embeddings.base import Embedder
from core.config import ConfigError, Settings


def create_embedder(settings: Settings) -> Embedder:
    """The local model by default; OpenAI when EMBEDDING_PROVIDER=openai."""
    dimension = settings.embedding.dimension
    if settings.embedding.provider == "local":
        from agents.adapters.embeddings.local import LocalEmbedder
        from agents.adapters.embeddings.minilm import DIMENSION, MODEL_NAME, packaged_model_dir

        if dimension != DIMENSION:
            raise ConfigError(
                [
                    f"EMBEDDING_DIMENSION: the local model {MODEL_NAME} makes {DIMENSION}-"
                    f"dimension vectors (got {dimension}); set EMBEDDING_DIMENSION={DIMENSION} "
                    "or EMBEDDING_PROVIDER=openai"
                ]
            )
        packaged_model_dir()  # fail at start-up, not on the first title, if it is missing
        return LocalEmbedder()

    from agents.adapters.embeddings.openai_embedder import FIXED, SHORTENABLE, OpenAIEmbedder

    model = settings.openai.embedding_model
    problems: list[str] = []
    if not settings.openai.api_key:
        problems.append("OPENAI_API_KEY: not set (EMBEDDING_PROVIDER=openai needs it)")
    if model in SHORTENABLE and dimension > SHORTENABLE[model]:
        problems.append(
            f"EMBEDDING_DIMENSION: {model} gives at most {SHORTENABLE[model]} dimensions "
            f"(got {dimension})"
        )
    if model in FIXED and dimension != FIXED[model]:
        problems.append(
            f"EMBEDDING_DIMENSION: {model} gives exactly {FIXED[model]} dimensions "
            f"(got {dimension}); use text-embedding-3-small, which can be shortened"
        )
    if problems:
        raise ConfigError(problems)
    # Other models: the first response is checked against EMBEDDING_DIMENSION.
    return OpenAIEmbedder(settings)
