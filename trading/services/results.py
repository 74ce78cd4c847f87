"""Compact storage of a simulation's arrays: zlib-compressed little-endian numpy buffers.

A million-point equity curve is 8 MB of float64 and its timestamps another 8 MB of int64; zlib at
level 1 compresses the curve in about 0.2 s and the delta-encoded timestamps in about 0.02 s, so
storing both stays under a second, and reading them back is one decompress and
`numpy.frombuffer` each (no per-point rows, no JSON).
"""

from __future__ import annotations

import zlib

import numpy as np

LEVEL = 1


def pack(array: np.ndarray, dtype: str) -> bytes:
    return zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes(), LEVEL)


def unpack(blob: bytes | memoryview, dtype: str, shape: tuple[int, ...] | None = None
           ) -> np.ndarray:
    out = np.frombuffer(zlib.decompress(bytes(blob)), dtype=dtype)
    return out.reshape(shape) if shape is not None else out


def pack_timestamps(ns: np.ndarray) -> bytes:
    """int64 ns timestamps, delta-encoded first: a regular bar grid becomes one repeated step,
    which zlib shrinks a hundredfold in a few milliseconds."""
    ns = np.ascontiguousarray(ns, dtype=np.int64)
    return pack(np.diff(ns, prepend=np.int64(0)), "<i8")


def unpack_timestamps(blob: bytes | memoryview) -> np.ndarray:
    return np.cumsum(unpack(blob, "<i8"), dtype=np.int64)


def downsample(timestamps: np.ndarray, values: np.ndarray, points: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` evenly spaced samples, always keeping the first and the last point."""
    n = len(values)
    if points <= 0 or n <= points:
        return timestamps, values
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))
    return timestamps[idx], values[idx]
