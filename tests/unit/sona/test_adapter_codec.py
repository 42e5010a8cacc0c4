"""The adapter's BYTEA blob: round trips, and every kind of damage refused."""

from __future__ import annotations

import hashlib
import struct
import time

import numpy as np
import pytest

from agents.sona.adapter_codec import (
    DIGEST_SIZE,
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    AdapterBlobError,
    WeightDtype,
    decode,
    encode,
)
from agents.sona.lora import DimensionMismatch, UserLoRAAdapter
from tests.unit.sona.factories import DIM, random_unit


@pytest.fixture
def adapter() -> UserLoRAAdapter:
    # A trained-looking adapter: both layers non-zero, weights of a few units at most.
    rng = np.random.default_rng(11)
    return UserLoRAAdapter(
        dim=DIM,
        a_user=rng.standard_normal((8, DIM)) / np.sqrt(8),
        b_user=0.3 * rng.standard_normal((DIM, 8)),
    )


def reseal(header_fields: tuple, payload: bytes) -> bytes:
    """A blob with a correct checksum around whatever header we want to test."""
    header = HEADER.pack(*header_fields)
    digest = hashlib.blake2b(header + payload, digest_size=DIGEST_SIZE).digest()
    return header + digest + payload


def split(blob: bytes) -> tuple[tuple, bytes]:
    return HEADER.unpack(blob[: HEADER.size]), blob[HEADER.size + DIGEST_SIZE :]


def assert_same_weights(loaded: UserLoRAAdapter, original: UserLoRAAdapter, tol: float) -> None:
    assert (loaded.dim, loaded.rank, loaded.alpha) == (original.dim, original.rank, original.alpha)
    assert loaded.base_seed == original.base_seed
    assert np.abs(loaded.a_user - original.a_user).max() <= tol
    assert np.abs(loaded.b_user - original.b_user).max() <= tol


def test_float32_round_trip_is_exact(adapter: UserLoRAAdapter) -> None:
    blob = encode(adapter)
    loaded = decode(blob, expected_dim=DIM)

    assert_same_weights(loaded, adapter, 0.0)
    assert len(blob) == HEADER.size + DIGEST_SIZE + 2 * 8 * DIM * 4
    preference = random_unit(np.random.default_rng(1))
    candidates = np.random.default_rng(2).standard_normal((20, DIM))
    np.testing.assert_array_equal(
        loaded.score_many(candidates, preference), adapter.score_many(candidates, preference)
    )


def test_float16_round_trip_is_within_1e_3_at_half_the_size(adapter: UserLoRAAdapter) -> None:
    blob = encode(adapter, dtype=WeightDtype.float16)
    loaded = decode(blob)

    assert split(blob)[0][2] == WeightDtype.float16
    assert len(blob) == HEADER.size + DIGEST_SIZE + 2 * 8 * DIM * 2
    assert_same_weights(loaded, adapter, 1e-3)
    assert loaded.a_user.dtype == np.float32


def test_float16_falls_back_to_float32_when_weights_are_too_large_for_it() -> None:
    rng = np.random.default_rng(3)
    # Half floats step by 0.0039 between 4 and 8: 1e-3 cannot be kept there.
    big = UserLoRAAdapter(
        dim=DIM,
        a_user=5.0 + rng.random((8, DIM)),
        b_user=np.zeros((DIM, 8)),
    )
    blob = encode(big, dtype=WeightDtype.float16)

    assert split(blob)[0][2] == WeightDtype.float32
    assert_same_weights(decode(blob), big, 0.0)


def test_a_fresh_adapter_round_trips(adapter: UserLoRAAdapter) -> None:
    fresh = UserLoRAAdapter.fresh(DIM, seed=5)
    loaded = decode(encode(fresh))
    assert_same_weights(loaded, fresh, 0.0)
    assert not loaded.b_user.any()


def test_decoding_is_fast(adapter: UserLoRAAdapter) -> None:
    blob = encode(adapter)
    decode(blob)  # the base layer is built once per process, then cached
    start = time.perf_counter()
    for _ in range(100):
        decode(blob)
    # docs/RULES.md: load by user in < 2 ms with the database round trip; decoding is a sliver.
    assert (time.perf_counter() - start) / 100 < 0.0005


@pytest.mark.parametrize("keep", [0, 3, 10, HEADER.size, HEADER.size + DIGEST_SIZE, -1, -100])
def test_a_truncated_blob_is_refused(adapter: UserLoRAAdapter, keep: int) -> None:
    blob = encode(adapter)
    with pytest.raises(AdapterBlobError, match="truncated"):
        decode(blob[:keep])


def test_trailing_bytes_are_refused(adapter: UserLoRAAdapter) -> None:
    with pytest.raises(AdapterBlobError, match="after its payload"):
        decode(encode(adapter) + b"\x00")


@pytest.mark.parametrize("dtype", list(WeightDtype), ids=lambda d: d.name)
def test_a_single_flipped_bit_is_refused_anywhere(
    adapter: UserLoRAAdapter, dtype: WeightDtype
) -> None:
    blob = encode(adapter, dtype=dtype)
    head = HEADER.size + DIGEST_SIZE
    # Every byte of the header and checksum, and a stride through the weights.
    positions = [*range(head), *range(head, len(blob), 37), len(blob) - 1]
    for position in positions:
        damaged = bytearray(blob)
        damaged[position] ^= 1 << (position % 8)
        with pytest.raises(AdapterBlobError):
            decode(bytes(damaged))


def test_a_corrupted_payload_is_refused_by_its_checksum(adapter: UserLoRAAdapter) -> None:
    blob = bytearray(encode(adapter))
    blob[-10:] = b"\xff" * 10
    with pytest.raises(AdapterBlobError, match="checksum"):
        decode(bytes(blob))


def test_a_wrong_magic_is_refused_even_with_a_valid_checksum(adapter: UserLoRAAdapter) -> None:
    fields, payload = split(encode(adapter))
    with pytest.raises(AdapterBlobError, match="not an adapter blob"):
        decode(reseal((b"NOPE", *fields[1:]), payload))


def test_an_unknown_format_version_is_refused(adapter: UserLoRAAdapter) -> None:
    fields, payload = split(encode(adapter))
    with pytest.raises(AdapterBlobError, match=f"version {FORMAT_VERSION + 1}"):
        decode(reseal((fields[0], FORMAT_VERSION + 1, *fields[2:]), payload))


def test_an_unknown_dtype_is_refused(adapter: UserLoRAAdapter) -> None:
    fields, payload = split(encode(adapter))
    with pytest.raises(AdapterBlobError, match="dtype code 9"):
        decode(reseal((*fields[:2], 9, *fields[3:]), payload))


def test_shapes_that_do_not_fit_rank_and_dimension_are_refused(adapter: UserLoRAAdapter) -> None:
    fields, payload = split(encode(adapter))
    magic, version, dtype, reserved, dim, rank, alpha, seed, *_shapes, length = fields
    # The same number of weights, laid out as 16 x 192 instead of 8 x 384.
    transposed = (magic, version, dtype, reserved, dim, rank, alpha, seed, 16, 192, dim, rank)
    with pytest.raises(AdapterBlobError, match=r"shapes A 16x192.*rank 8 and dimension 384"):
        decode(reseal((*transposed, length), payload))
    # A payload shorter than the shapes say, under a header that agrees with it.
    short = payload[: len(payload) - 4]
    fitted = (magic, version, dtype, reserved, dim, rank, alpha, seed, rank, dim, dim, rank)
    with pytest.raises(AdapterBlobError, match="shapes need"):
        decode(reseal((*fitted, len(short)), short))


def test_non_finite_or_invalid_weights_are_refused(adapter: UserLoRAAdapter) -> None:
    fields, payload = split(encode(adapter))
    poisoned = struct.pack("<f", float("nan")) + payload[4:]
    with pytest.raises(AdapterBlobError, match="finite"):
        decode(reseal(fields, poisoned))
    negative_alpha = (*fields[:6], -16.0, *fields[7:])
    with pytest.raises(AdapterBlobError, match="alpha"):
        decode(reseal(negative_alpha, payload))


def test_an_adapter_for_another_dimension_is_a_dimension_mismatch() -> None:
    other = UserLoRAAdapter.fresh(512, seed=1)
    with pytest.raises(DimensionMismatch, match=r"stored adapter has dimension 512.*384"):
        decode(encode(other), expected_dim=DIM)


def test_the_header_starts_with_the_magic(adapter: UserLoRAAdapter) -> None:
    assert encode(adapter).startswith(MAGIC)
