"""Legacy JSON import, in one place for the managers and the command line.

A stored object that is not a frame but a JSON object is read as a state: that is what code
written before statevault (the specification's hand-written "Before" version) left behind. A
trading state gets back what that code flattened, and only there: the datetime fields it
wrote with ``.isoformat()`` (``LEGACY_DATETIME_FIELDS`` at the top level, in each active
position and in each pair state) and the ``{"index", "values"}`` Series dicts of each pair
state. Any other string stays a string, however much it looks like a date. Nothing here
writes: the next save by a manager converts the file to a frame (the commit layer keeps a
copy of the JSON at ``<url>.legacy.json`` first).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..frame import MAGIC

__all__ = [
    "LEGACY_DATETIME_FIELDS",
    "is_frame",
    "looks_trading",
    "parse_json",
    "restore_legacy",
]

#: The datetime fields the old trader format wrote as ISO text (spec, "Before").
LEGACY_DATETIME_FIELDS = frozenset({"entry_time", "exit_time", "last_update", "timestamp"})

log = logging.getLogger("statevault")

# What the spec's hand-written "Before" code wrote for a datetime: datetime.isoformat().
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def is_frame(data: Any) -> bool:
    """Whether stored bytes start like a statevault frame."""
    return bytes(memoryview(data)[: len(MAGIC)]) == MAGIC


def parse_json(data: Any) -> dict[str, Any] | None:
    """The JSON object stored in ``data``, or None if it is not one (then it is no legacy state)."""
    if not bytes(data[:64]).lstrip().startswith(b"{"):
        return None
    try:
        obj = json.loads(bytes(data))
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def looks_trading(obj: Mapping[str, Any]) -> bool:
    """Whether a legacy document is a trading state (the CLI restores its types then)."""
    return "active_positions" in obj or "pair_states" in obj


def restore_legacy(obj: dict[str, Any]) -> dict[str, Any]:
    """Restore what the spec's "Before" code flattened: its datetime fields and Series dicts."""
    out = _restore_fields(obj)
    positions = out.get("active_positions")
    if isinstance(positions, dict):
        out["active_positions"] = {
            k: _restore_fields(v) if isinstance(v, dict) else v for k, v in positions.items()
        }
    pairs = out.get("pair_states")
    if isinstance(pairs, dict):
        out["pair_states"] = {k: _restore_pair(v) for k, v in pairs.items()}
    return out


def _restore_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: _datetime(v) if k in LEGACY_DATETIME_FIELDS else v for k, v in obj.items()}


def _restore_pair(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: _legacy_series(v) if _is_series(v) else v for k, v in _restore_fields(value).items()}


def _is_series(value: Any) -> bool:
    return isinstance(value, dict) and set(value) in (
        {"index", "values"},
        {"index", "values", "name"},
    )


def _datetime(value: Any) -> Any:
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _legacy_series(value: dict[str, Any]) -> Any:
    import pandas as pd  # only legacy files with Series need pandas

    index_values = value["index"]
    index: Any = pd.Index(index_values)
    if index_values and all(isinstance(v, str) and _ISO_DATETIME.match(v) for v in index_values):
        stamps = [pd.Timestamp(v) for v in index_values]
        aware = {t.tzinfo is not None for t in stamps}
        if aware == {False}:
            index = pd.DatetimeIndex(stamps)
        elif aware == {True}:
            try:
                index = pd.DatetimeIndex(stamps)
            except (TypeError, ValueError):
                # Several UTC offsets in one index (a broker clock across a DST change): one
                # index holds one time zone, so keep the instants, in UTC.
                index = pd.to_datetime(index_values, utc=True)
        # else: naive and offset stamps mixed; no index type holds both, so keep the text.
    return pd.Series(value["values"], index=index, name=value.get("name"))
