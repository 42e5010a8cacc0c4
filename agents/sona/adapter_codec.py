"""A user adapter's weights as one BYTEA blob (lora_adapters.weights), and back.

Layout, little-endian:

    header  magic b"MGLA" | format version u16 | dtype u8 | reserved u8
            | dim u32 | rank u32 | alpha f64 | base seed u64
            | A_user shape (u32, u32) | B_user shape (u32, u32) | payload length u32
    digest  blake2b-128 of the header and the payload
    payload A_user then B_user, C order, in the header's dtype

The digest covers the header too: a flipped bit in alpha or a shape would otherwise load as a
different, valid-looking adapter. Only the user layer is stored; the base layer is rebuilt
from its seed, which the header records so an adapter is never paired with another base.
"""

from __future__ import annotations

import hashlib
import struct
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from agents.sona.lora import DimensionMismatch, UserLoRAAdapter

MAGIC = b"MGLA"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHBBIIdQIIIII")
DIGEST_SIZE = 16
# docs/RULES.md: a stored adapter comes back within 1e-3 of every weight.
TOLERANCE = 1e-3


class AdapterBlobError(ValueError):
    """The blob is not a whole, intact adapter of this format; nothing was loaded."""


class WeightDtype(IntEnum):
    float32 = 1
    # Half the bytes; used only when every weight survives it within TOLERANCE.
    float16 = 2


_NUMPY_DTYPES = {WeightDtype.float32: np.dtype("<f4"), WeightDtype.float16: np.dtype("<f2")}


def _digest(header: bytes, payload: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    h.update(header)
    h.update(payload)
    return h.digest()


def _narrowed(weights: npt.NDArray[np.float32], dtype: WeightDtype) -> npt.NDArray[np.generic]:
    return weights.astype(_NUMPY_DTYPES[dtype])


def _fits_float16(*weights: npt.NDArray[np.float32]) -> bool:
    for array in weights:
        back = array.astype("<f2").astype(np.float32)
        if not np.isfinite(back).all():
            return False
        if float(np.max(np.abs(back - array), initial=0.0)) > TOLERANCE / 2:
            return False
    return True


def encode(adapter: UserLoRAAdapter, *, dtype: WeightDtype = WeightDtype.float32) -> bytes:
    """The blob for an adapter's user layer.

    float16 is a request, not a promise: when some weight would move by more than half the
    tolerance (large weights lose absolute precision in half floats) the blob is float32, and
    its header says so. The caller never has to handle a refusal.
    """
    a, b = adapter.a_user, adapter.b_user
    if dtype is WeightDtype.float16 and not _fits_float16(a, b):
        dtype = WeightDtype.float32
    payload = _narrowed(a, dtype).tobytes(order="C") + _narrowed(b, dtype).tobytes(order="C")
    header = HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        int(dtype),
        0,
        adapter.dim,
        adapter.rank,
        adapter.alpha,
        adapter.base_seed,
        *a.shape,
        *b.shape,
        len(payload),
    )
    return header + _digest(header, payload) + payload


def decode(
    blob: bytes | bytearray | memoryview, *, expected_dim: int | None = None
) -> UserLoRAAdapter:
    """The adapter in a blob, or AdapterBlobError; DimensionMismatch when it was trained for
    another embedding dimension than `expected_dim`. Checks everything before building."""
    data = bytes(blob)
    head = HEADER.size + DIGEST_SIZE
    if len(data) < head:
        raise AdapterBlobError(
            f"adapter blob truncated: {len(data)} bytes, the header alone is {head}"
        )
    header = data[: HEADER.size]
    (
        magic,
        version,
        dtype_code,
        _reserved,
        dim,
        rank,
        alpha,
        base_seed,
        a_rows,
        a_cols,
        b_rows,
        b_cols,
        payload_len,
    ) = HEADER.unpack(header)
    if magic != MAGIC:
        raise AdapterBlobError(f"not an adapter blob: magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise AdapterBlobError(
            f"adapter blob format version {version}; this code reads {FORMAT_VERSION}"
        )
    payload = data[head:]
    if len(payload) < payload_len:
        raise AdapterBlobError(
            f"adapter blob truncated: payload {len(payload)} bytes of {payload_len}"
        )
    if len(payload) > payload_len:
        raise AdapterBlobError(
            f"adapter blob has {len(payload) - payload_len} bytes after its payload"
        )
    if _digest(header, payload) != data[HEADER.size : head]:
        raise AdapterBlobError("adapter blob corrupted: checksum does not match its contents")

    try:
        dtype = WeightDtype(dtype_code)
    except ValueError:
        raise AdapterBlobError(f"adapter blob has unknown dtype code {dtype_code}") from None
    if (a_rows, a_cols) != (rank, dim) or (b_rows, b_cols) != (dim, rank):
        raise AdapterBlobError(
            f"adapter blob shapes A {a_rows}x{a_cols}, B {b_rows}x{b_cols} do not fit "
            f"rank {rank} and dimension {dim} (A rank x dim, B dim x rank)"
        )
    itemsize = _NUMPY_DTYPES[dtype].itemsize
    a_len = a_rows * a_cols * itemsize
    if payload_len != a_len + b_rows * b_cols * itemsize:
        raise AdapterBlobError(
            f"adapter blob payload is {payload_len} bytes; its shapes need "
            f"{a_len + b_rows * b_cols * itemsize}"
        )
    if expected_dim is not None and dim != expected_dim:
        raise DimensionMismatch("stored adapter", expected_dim, dim)

    np_dtype = _NUMPY_DTYPES[dtype]
    a = np.frombuffer(payload, dtype=np_dtype, count=a_rows * a_cols).reshape(a_rows, a_cols)
    b = np.frombuffer(payload, dtype=np_dtype, offset=a_len).reshape(b_rows, b_cols)
    try:
        return UserLoRAAdapter(dim=dim, a_user=a, b_user=b, alpha=alpha, base_seed=base_seed)
    except ValueError as exc:  # non-finite weights, alpha <= 0, rank larger than dim
        raise AdapterBlobError(f"adapter blob holds an invalid adapter: {exc}") from exc
