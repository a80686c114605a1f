"""Factor matrices: seeded initial values and the binary form blocks travel in (numpy only)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijective, well-mixed map of uint64 values."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def initial_factors(id_hashes: np.ndarray, rank: int) -> np.ndarray:
    """Initial factors as a pure function of each id's 64-bit hash.

    The hash is computed from (seed, original id) when the id maps are built, so the
    initial factors, and with them the trained model, depend neither on the number of
    blocks nor on partitioning, and a retried task recomputes the same numbers.
    Like Spark MLlib, each vector is standard normal, scaled to unit length.

    Parameters
    ----------
    id_hashes : ndarray of int64, shape (n,)
    rank : int

    Returns
    -------
    ndarray of float32, shape (n, rank)
    """
    with np.errstate(over="ignore"):
        base = id_hashes.astype(np.int64).view(np.uint64)[:, None]
        counter = np.arange(1, 2 * rank + 1, dtype=np.uint64)[None, :] * _GOLDEN
        bits = _splitmix64(base + counter)
    # 53 high bits -> uniform in (0, 1]; pairs of uniforms -> normals (Box-Muller).
    uniform = ((bits >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53
    u1, u2 = uniform[:, :rank], uniform[:, rank:]
    normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    norms = np.linalg.norm(normal, axis=1, keepdims=True)
    return (normal / np.maximum(norms, 1e-12)).astype(np.float32)


def encode_factors(factors: np.ndarray) -> bytes:
    """A factor block as little-endian float32 bytes (row-major, n x k)."""
    return np.ascontiguousarray(factors, dtype="<f4").tobytes()


def decode_factors(payload: bytes, rank: int) -> np.ndarray:
    """Inverse of :func:`encode_factors`."""
    return np.frombuffer(payload, dtype="<f4").reshape(-1, rank)


def encode_array(values: np.ndarray, dtype: str) -> bytes:
    """A 1-d array as little-endian bytes of the given dtype (e.g. ``"<i4"``)."""
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def decode_array(payload: bytes, dtype: str) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    return np.frombuffer(payload, dtype=dtype)


def binary_views(column: pa.Array | pa.ChunkedArray, dtype: str) -> list[np.ndarray | None]:
    """Every value of an Arrow binary column as a numpy array over Arrow's own buffer.

    ``to_pylist()`` or ``as_py()`` copies each value into a Python ``bytes`` first; a block
    row's CSR and a route's factors are megabytes, so the hot paths read them in place.
    The views are read-only and live as long as the column's buffers.

    Parameters
    ----------
    column : pyarrow.Array or pyarrow.ChunkedArray
        Of type ``binary`` or ``large_binary``.
    dtype : str
        The values' element type, as :func:`encode_array` wrote them (e.g. ``"<f4"``).

    Returns
    -------
    list of ndarray or None
        One array per value, in order; ``None`` for a null.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    views: list[np.ndarray | None] = []
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        offset_type = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(
            offsets_buffer,
            dtype=offset_type,
            count=len(chunk) + 1,
            offset=chunk.offset * np.dtype(offset_type).itemsize,
        )
        data = (
            np.frombuffer(data_buffer, dtype=np.uint8)
            if data_buffer is not None
            else np.zeros(0, dtype=np.uint8)
        )
        nulls = (
            chunk.is_null().to_numpy(zero_copy_only=False)
            if chunk.null_count
            else np.zeros(len(chunk), dtype=bool)
        )
        for index in range(len(chunk)):
            if nulls[index]:
                views.append(None)
            else:
                raw = data[offsets[index] : offsets[index + 1]]
                views.append(np.frombuffer(raw, dtype=dtype) if len(raw) else np.zeros(0, dtype))
    return views


def first_row_views(table: pa.Table, dtypes: dict[str, str]) -> dict[str, np.ndarray | None]:
    """The binary fields ``dtypes`` of a table's first row, as views (:func:`binary_views`)."""
    first = table.slice(0, 1)
    return {name: binary_views(first.column(name), dtype)[0] for name, dtype in dtypes.items()}
