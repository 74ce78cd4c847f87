"""What identifies a run, and the canonical JSON that makes equal runs byte-identical.

The fingerprint names everything a result depends on: engine version, strategy type and
parameters, a hash of the bar data, the seed and the cost and sizing configuration. JSON is
written with sorted keys, fixed separators and Python's shortest round-trip float repr, with
non-finite floats as null, so the same inputs and seed give the same bytes and the same
`result_hash` (SHA-256 of that JSON without the hash itself).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from .types import BarSet

ENGINE_VERSION = "1.0.0"


def data_hash(bars: BarSet) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(bars.timestamps, dtype=np.int64).tobytes())
    h.update("\x1f".join(bars.symbols).encode())
    for name in ("open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(getattr(bars, name), dtype=np.float64).tobytes())
    return h.hexdigest()


def clean(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, type):
        return value.__name__
    return value


def canonical_json(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(clean(value), sort_keys=True, allow_nan=False, indent=indent,
                      separators=(",", ":") if indent is None else (",", ": "))


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
