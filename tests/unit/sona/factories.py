"""Vectors for the SONA tests: unit vectors, clusters around a centre, basis vectors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

DIM = 384

F32 = npt.NDArray[np.float32]


def unit(vector: npt.ArrayLike) -> F32:
    array = np.asarray(vector, dtype=np.float64)
    return (array / np.linalg.norm(array)).astype(np.float32)


def random_unit(rng: np.random.Generator, dim: int = DIM) -> F32:
    return unit(rng.standard_normal(dim))


def cluster(rng: np.random.Generator, centre: F32, n: int, spread: float = 0.3) -> list[F32]:
    """n unit vectors near `centre`: titles of one genre."""
    return [unit(centre + spread * random_unit(rng, centre.shape[0])) for _ in range(n)]


def basis(i: int, dim: int = DIM) -> F32:
    vector = np.zeros(dim, dtype=np.float32)
    vector[i] = 1.0
    return vector
