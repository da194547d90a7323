"""Rendering of loaded states for the command line: pure functions, no I/O.

``to_json`` turns a state into JSON-ready data (``show --json``); ``render`` into indented
lines for a person (``show``), with one-line previews of pandas and numpy objects. pandas and
numpy are never imported here: they are looked up in ``sys.modules`` (a state holding their
objects has loaded them already).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["human_size", "render", "render_entry", "to_json"]

# -- rendering: JSON ----------------------------------------------------------------------

_HEAD = 5


def _pandas() -> Any:
    return sys.modules.get("pandas")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, datetime | date | time):
        return key.isoformat()
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return repr(key)


def _label(value: Any) -> Any:
    """An index label or scalar as JSON: ISO strings for time stamps."""
    return to_json(value)


def to_json(obj: Any) -> Any:
    """A JSON-ready rendering of a loaded state, for machines reading ``show --json``.

    Datetimes become ISO strings, ``Decimal`` a string, sets and tuples lists, non-finite
    floats the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``. pandas and numpy objects
    become previews: ``{"type", "dtype", "shape", "start", "end", "head", ...}``; other
    objects ``{"type", "fields"}`` (dataclasses) or ``{"type", "repr"}``.
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    pd = _pandas()
    np = _numpy()
    if pd is not None and obj is pd.NaT:
        return None
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return {"type": type(obj).__name__, "seconds": obj.total_seconds()}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj)
        return {"type": type(obj).__name__, "length": len(raw), "head": raw[:16].hex()}
    if isinstance(obj, dict):
        return {_json_key(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, set | frozenset):
        items = list(obj)
        try:
            items.sort()
        except TypeError:
            items.sort(key=repr)
        return [to_json(v) for v in items]
    if pd is not None:
        if isinstance(obj, pd.Series):
            return _series_json(obj)
        if isinstance(obj, pd.DataFrame):
            return _frame_json(obj)
        if isinstance(obj, pd.Index):
            out = {"type": type(obj).__name__, "dtype": str(obj.dtype), "shape": [len(obj)]}
            if len(obj):
                out.update(start=_label(obj[0]), end=_label(obj[-1]))
            out["head"] = [_label(v) for v in obj[:_HEAD]]
            return out
    if np is not None:
        if isinstance(obj, np.ndarray):
            flat = obj.reshape(-1)[:_HEAD]
            return {
                "type": "ndarray",
                "dtype": str(obj.dtype),
                "shape": list(obj.shape),
                "head": [to_json(v) for v in flat.tolist()],
            }
        if isinstance(obj, np.generic):
            return to_json(obj.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "type": type(obj).__qualname__,
            "fields": {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    return {"type": type(obj).__qualname__, "repr": _short(repr(obj), 200)}


def _series_json(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Series",
        "name": to_json(s.name),
        "dtype": str(s.dtype),
        "shape": [len(s)],
        "index": type(s.index).__name__,
    }
    if len(s):
        out.update(start=_label(s.index[0]), end=_label(s.index[-1]))
        out["head"] = [[_label(i), to_json(v)] for i, v in s.iloc[:_HEAD].items()]
        out["last"] = to_json(s.iloc[-1])
    else:
        out["head"] = []
    return out


def _frame_json(df: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "DataFrame",
        "shape": list(df.shape),
        "columns": [_json_key(c) for c in df.columns],
        "dtypes": {_json_key(c): str(t) for c, t in df.dtypes.items()},
        "index": type(df.index).__name__,
    }
    if len(df):
        out.update(start=_label(df.index[0]), end=_label(df.index[-1]))
    out["head"] = [
        {"index": _label(i), **{_json_key(c): to_json(v) for c, v in row.items()}}
        for i, row in df.iloc[:_HEAD].iterrows()
    ]
    return out


# -- rendering: for a person --------------------------------------------------------------

_MAX_ITEMS = 50
_INLINE = 90


def _short(text: str, limit: int = _INLINE) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar_text(obj: Any) -> str | None:
    """One-line text for a scalar, or None for a container / pandas object."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return _short(repr(obj))
    if isinstance(obj, datetime | date | time):
        return f"{obj.isoformat(sep=' ') if isinstance(obj, datetime) else obj.isoformat()}" + (
            f"  ({type(obj).__name__})"
        )
    if isinstance(obj, timedelta | Decimal):
        return f"{obj}  ({type(obj).__name__})"
    np = _numpy()
    if np is not None and isinstance(obj, np.generic):
        return f"{obj.item()!r}  ({obj.dtype})"
    return None


def _pandas_text(obj: Any) -> str | None:
    pd = _pandas()
    np = _numpy()
    if pd is not None:
        if obj is pd.NaT:
            return "NaT"
        if isinstance(obj, pd.Series):
            name = f" {obj.name!r}" if obj.name is not None else ""
            text = f"Series{name} {obj.dtype}, {len(obj):,} rows{_range(obj.index)}"
            if len(obj):
                text += f", last {_short(str(obj.iloc[-1]), 30)}"
            return text
        if isinstance(obj, pd.DataFrame):
            cols = _short(", ".join(str(c) for c in obj.columns), 60)
            return (
                f"DataFrame {obj.shape[0]:,} rows x {obj.shape[1]} cols ({cols}){_range(obj.index)}"
            )
        if isinstance(obj, pd.Index):
            return f"{type(obj).__name__} {obj.dtype}, {len(obj):,} entries{_range(obj)}"
    if np is not None and isinstance(obj, np.ndarray):
        head = ", ".join(repr(v) for v in obj.reshape(-1)[:_HEAD].tolist())
        more = ", ..." if obj.size > _HEAD else ""
        return f"ndarray {obj.dtype} shape {tuple(obj.shape)}: [{_short(head, 60)}{more}]"
    return None


def _range(index: Any) -> str:
    if not len(index):
        return ""
    return f", {index[0]} .. {index[-1]}"


def _plural(n: int) -> str:
    return f"{n:,} item{'s' if n != 1 else ''}"


def _items(obj: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> list[Any]:
    items = list(obj)
    if isinstance(obj, set | frozenset):
        try:
            items.sort()
        except TypeError:
            items.sort(key=repr)
    return items


def _one_line(obj: Any) -> str | None:
    """The whole of ``obj`` on one line, or None if it needs lines of its own."""
    text = _scalar_text(obj) or _pandas_text(obj)
    if text is not None:
        return text
    if isinstance(obj, dict) and not obj:
        return "{}"
    if isinstance(obj, list | tuple | set | frozenset):
        items = _items(obj)
        if all(_scalar_text(v) is not None for v in items):
            inline = repr(items) if type(obj) is list else repr(obj)
            if isinstance(obj, set | frozenset) and items:
                inline = "{" + repr(items)[1:-1] + "}"
                if type(obj) is frozenset:
                    inline = f"frozenset({inline})"
            if len(inline) <= _INLINE:
                return inline
    if not isinstance(obj, dict | list | tuple | set | frozenset) and not (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        return f"{_short(repr(obj))}  ({type(obj).__qualname__})"
    return None


def _header(obj: Any) -> str:
    if isinstance(obj, dict | list | tuple | set | frozenset):
        return f"{type(obj).__name__}, {_plural(len(obj))}"
    return type(obj).__qualname__


def render(obj: Any, indent: int = 0) -> list[str]:
    """Lines that show ``obj`` to a person: nested structure, previews for bulky values.

    The children of a container are rendered at ``indent``; a caller that labels the
    container (``render_entry``) puts its header line one level up.
    """
    pad = "  " * indent
    one = _one_line(obj)
    if one is not None:
        return [pad + one]
    children: list[tuple[str, Any]]
    if isinstance(obj, dict):
        children = [(_short(str(k), 60), v) for k, v in obj.items()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children = [(f"[{n}]", v) for n, v in enumerate(_items(obj))]
    else:  # a dataclass
        children = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    lines: list[str] = []
    for n, (label, value) in enumerate(children):
        if n == _MAX_ITEMS:
            lines.append(f"{pad}... {len(children) - n} more (show one with --section NAME)")
            break
        lines.extend(render_entry(pad, label, value, indent))
    return lines


def render_entry(pad: str, label: str, value: Any, indent: int) -> list[str]:
    """``label: value`` on one line when it fits, else ``label: <kind>`` and the value below."""
    one = _one_line(value)
    if one is not None:
        return [f"{pad}{label}: {one}"]
    return [f"{pad}{label}: {_header(value)}", *render(value, indent + 1)]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({n:,} bytes)"
        size /= 1024
    return f"{n:,} bytes"  # pragma: no cover - the loop always returns
