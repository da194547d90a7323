"""The resume check's comparison: two states, exactly (types, values, dtypes, index, tz)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

__all__ = ["diff_states"]


def diff_states(a: Any, b: Any, path: str = "state", limit: int = 20) -> list[str]:
    """Differences between two states, exact: types, values, dtypes, index, tz, names.

    Returns up to ``limit`` human-readable lines, ``[]`` when the states are identical.
    """
    out: list[str] = []
    _diff(a, b, path, out, limit)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f"{path}: {type(a).__name__} != {type(b).__name__}")
        return
    if isinstance(a, dict):
        if list(a) != list(b):
            out.append(f"{path}: keys {list(a)} != {list(b)}")
            return
        for k in a:
            _diff(a[k], b[k], f"{path}[{k!r}]", out, limit)
        return
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, limit)
        return
    mod = type(a).__module__
    if mod.startswith("pandas"):
        import pandas.testing as pdt

        try:
            if hasattr(a, "columns"):
                pdt.assert_frame_equal(a, b, check_exact=True, check_freq=True)
            elif hasattr(a, "index"):
                pdt.assert_series_equal(a, b, check_exact=True, check_freq=True)
            elif hasattr(a, "freq") or hasattr(a, "dtype"):
                pdt.assert_index_equal(a, b, exact=True, check_exact=True)
            elif a != b:
                out.append(f"{path}: {a!r} != {b!r}")
        except AssertionError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "differs"
            out.append(f"{path}: {first}")
        return
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return
    if isinstance(a, datetime) and a.tzinfo != b.tzinfo:
        out.append(f"{path}: tzinfo {a.tzinfo!r} != {b.tzinfo!r}")
        return
    if a != b:
        out.append(f"{path}: {a!r} != {b!r}")
