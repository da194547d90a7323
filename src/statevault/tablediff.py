"""How a pandas ``Series``/``DataFrame`` or a numpy array changed, for ``statevault.diff``.

``table_diff(a, b, limit)`` gives the rows appended and dropped (matched by index label when
both indexes are unique and of one dtype, by position otherwise), the changed cells and the
other attributes that changed (dtype, name, index kind, column order), each listing bounded
to ``limit`` entries with the full count kept. ``same`` is the value equality the whole diff
uses (NaN equal to NaN, zones count for times). Nothing is imported: pandas and numpy are
looked up in ``sys.modules``; a table that cannot be compared row by row gives ``None`` and
is compared whole by the caller.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal

__all__ = ["Cell", "Listing", "TableDiff", "same", "table_changed", "table_diff", "table_dict"]


@dataclass(frozen=True)
class Listing:
    """A bounded listing: the first ``limit`` ``items`` and the ``count`` of all of them."""

    count: int = 0
    items: tuple[Any, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.count > len(self.items)


@dataclass(frozen=True)
class Cell:
    """One changed cell: the row (index label, or position), the column (None for a Series
    or an array, whose ``row`` is then the element's index tuple) and both values."""

    row: Any
    column: Any
    before: Any
    after: Any


@dataclass(frozen=True)
class TableDiff:
    """How a Series, DataFrame or numpy array changed (see the module docstring)."""

    type: str
    shape: tuple[tuple[int, ...], tuple[int, ...]]
    by: Literal["label", "position"]
    appended: Listing = field(default_factory=Listing)
    dropped: Listing = field(default_factory=Listing)
    cells: Listing = field(default_factory=Listing)
    columns_added: tuple[Any, ...] = ()
    columns_removed: tuple[Any, ...] = ()
    #: What else changed: ``{"dtype": (before, after), "name": (...), ...}``.
    attributes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def same(a: Any, b: Any) -> bool:
    """Same type (checked by the caller) and equal; NaN equals NaN; zones count for times."""
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, datetime | time) and str(a.tzinfo) != str(b.tzinfo):
        return False
    if isinstance(a, set | frozenset) and a != b:
        # NaN members are unequal to each other: the same set may not compare equal.
        return len(a) == len(b) and sorted(map(repr, a)) == sorted(map(repr, b))
    equals = getattr(a, "equals", None)
    if callable(equals) and _is_pandas(a):
        try:
            return bool(equals(b))
        except Exception:  # noqa: BLE001 - an odd extension type: fall back to repr
            return repr(a) == repr(b)
    try:
        return bool(a == b) or _both_nan(a, b)
    except Exception:  # noqa: BLE001 - no usable ==: compare what a person would see
        return repr(a) == repr(b)


def _both_nan(a: Any, b: Any) -> bool:
    # NaN-like values (Decimal('NaN'), numpy floats) are the ones unequal to themselves.
    try:
        return bool(a != a and b != b)  # noqa: PLR0124
    except Exception:  # noqa: BLE001
        return False


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas"


def table_changed(t: TableDiff) -> bool:
    return bool(
        t.appended.count
        or t.dropped.count
        or t.cells.count
        or t.columns_added
        or t.columns_removed
        or t.attributes
    )


# -- tables -------------------------------------------------------------------------------


def table_diff(a: Any, b: Any, limit: int) -> TableDiff | None:
    """A ``TableDiff`` for two Series, two DataFrames or two arrays; None for anything else
    (or when they cannot be compared row by row: the caller compares them whole)."""
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    try:
        if pd is not None and isinstance(a, pd.Series):
            return _series(pd, np, a, b, limit)
        if pd is not None and isinstance(a, pd.DataFrame):
            return _frame(pd, np, a, b, limit)
        if np is not None and isinstance(a, np.ndarray):
            return _array(np, a, b, limit)
    except Exception:  # noqa: BLE001 - an exotic dtype or index: compared whole instead
        return None
    return None


def _attributes(pairs: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    return {k: (x, y) for k, (x, y) in pairs.items() if not _same_attr(x, y)}


def _same_attr(x: Any, y: Any) -> bool:
    if type(x) is not type(y):
        return False
    return same(x, y)


def _rows(
    a_index: Any, b_index: Any
) -> tuple[str, list[Any], list[Any], list[tuple[Any, int, int]]]:
    """How rows match: ``(by, appended labels, dropped labels, [(label, i in a, j in b)])``."""
    if (
        a_index.is_unique
        and b_index.is_unique
        and str(a_index.dtype) == str(b_index.dtype)
        and a_index.nlevels == b_index.nlevels
    ):
        a_pos = {label: i for i, label in enumerate(a_index)}
        b_labels = list(b_index)
        b_set = set(b_labels)
        appended = [label for label in b_labels if label not in a_pos]
        dropped = [label for label in a_index if label not in b_set]
        common = [(label, a_pos[label], j) for j, label in enumerate(b_labels) if label in a_pos]
        return "label", appended, dropped, common
    n = min(len(a_index), len(b_index))
    appended = list(range(len(a_index), len(b_index)))
    dropped = list(range(len(b_index), len(a_index)))
    return "position", appended, dropped, [(i, i, i) for i in range(n)]


def _listing(items: list[Any], limit: int) -> Listing:
    return Listing(len(items), tuple(items[:limit]))


def _unequal(np: Any, pd: Any, x: Any, y: Any) -> Any:
    """A boolean mask: where two aligned 1-D value arrays differ (NaN equal to NaN)."""
    try:
        ne = np.asarray(x != y, dtype=bool)
    except Exception:  # noqa: BLE001 - elementwise != refused (mixed objects): one by one
        ne = np.array([not _same_attr(p, q) for p, q in zip(x, y, strict=True)], dtype=bool)
    if ne.shape != (len(x),):
        ne = np.array([not _same_attr(p, q) for p, q in zip(x, y, strict=True)], dtype=bool)
    both_na = np.asarray(pd.isna(x), dtype=bool) & np.asarray(pd.isna(y), dtype=bool)
    return ne & ~both_na


def _scalar(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _series(pd: Any, np: Any, a: Any, b: Any, limit: int) -> TableDiff:
    by, appended, dropped, common = _rows(a.index, b.index)
    xi = [i for _, i, _ in common]
    yj = [j for _, _, j in common]
    x = a.iloc[xi].to_numpy(dtype=object)
    y = b.iloc[yj].to_numpy(dtype=object)
    mask = _unequal(np, pd, x, y) if len(common) else np.zeros(0, dtype=bool)
    where = np.flatnonzero(mask)
    cells = [Cell(common[k][0], None, _scalar(x[k]), _scalar(y[k])) for k in where[:limit].tolist()]
    attributes = _attributes(
        {
            "dtype": (str(a.dtype), str(b.dtype)),
            "name": (a.name, b.name),
            "index": (_index_kind(a.index), _index_kind(b.index)),
        }
    )
    return TableDiff(
        "Series",
        ((len(a),), (len(b),)),
        by,  # type: ignore[arg-type]
        _listing(appended, limit),
        _listing(dropped, limit),
        Listing(len(where), tuple(cells)),
        attributes=attributes,
    )


def _index_kind(index: Any) -> str:
    tz = getattr(index, "tz", None)
    return f"{type(index).__name__} {index.dtype}" + (f" {tz}" if tz is not None else "")


def _frame(pd: Any, np: Any, a: Any, b: Any, limit: int) -> TableDiff:
    if not (a.columns.is_unique and b.columns.is_unique):
        raise ValueError("duplicate column labels: compared whole")
    by, appended, dropped, common = _rows(a.index, b.index)
    xi = [i for _, i, _ in common]
    yj = [j for _, _, j in common]
    b_columns = set(b.columns)
    a_columns = set(a.columns)
    shared = [c for c in a.columns if c in b_columns]
    total = 0
    # Row-major order in the listing, as a person reads a table: collect per column, then sort.
    found: list[tuple[int, int, Cell]] = []
    for ci, column in enumerate(shared):
        x = a[column].iloc[xi].to_numpy(dtype=object)
        y = b[column].iloc[yj].to_numpy(dtype=object)
        if not len(common):
            continue
        where = np.flatnonzero(_unequal(np, pd, x, y))
        total += len(where)
        found.extend(
            (k, ci, Cell(common[k][0], column, _scalar(x[k]), _scalar(y[k])))
            for k in where[:limit].tolist()
        )
    found.sort(key=lambda t: (t[0], t[1]))
    cells = [c for _, _, c in found[:limit]]
    dtypes = {
        f"dtype[{c!r}]": (str(a[c].dtype), str(b[c].dtype))
        for c in shared
        if str(a[c].dtype) != str(b[c].dtype)
    }
    attributes = _attributes({"index": (_index_kind(a.index), _index_kind(b.index)), **dtypes})
    if [c for c in a.columns if c in b_columns] != [c for c in b.columns if c in a_columns]:
        attributes["column order"] = (list(a.columns), list(b.columns))
    return TableDiff(
        "DataFrame",
        (tuple(a.shape), tuple(b.shape)),
        by,  # type: ignore[arg-type]
        _listing(appended, limit),
        _listing(dropped, limit),
        Listing(total, tuple(cells)),
        tuple(c for c in b.columns if c not in a_columns),
        tuple(c for c in a.columns if c not in b_columns),
        attributes,
    )


def _array(np: Any, a: Any, b: Any, limit: int) -> TableDiff:
    attributes = _attributes({"dtype": (str(a.dtype), str(b.dtype))})
    shape = (tuple(a.shape), tuple(b.shape))
    if a.ndim == 0 or a.ndim != b.ndim or a.shape[1:] != b.shape[1:]:
        if a.shape != b.shape:
            attributes["shape"] = shape
        if a.shape == b.shape and a.ndim == 0 and not _same_attr(a.item(), b.item()):
            return TableDiff(
                "ndarray",
                shape,
                "position",
                cells=Listing(1, (Cell((), None, a.item(), b.item()),)),
                attributes=attributes,
            )
        return TableDiff("ndarray", shape, "position", attributes=attributes)
    n = min(len(a), len(b))
    x, y = a[:n], b[:n]
    try:
        ne = np.asarray(x != y, dtype=bool)
        if ne.shape != x.shape:
            raise ValueError("structured or object comparison")
        if x.dtype.kind in "fc" and y.dtype.kind in "fc":
            ne &= ~(np.isnan(x) & np.isnan(y))
    except (TypeError, ValueError):
        ne = np.array([not _same_attr(p, q) for p, q in zip(x.flat, y.flat, strict=True)])
        ne = ne.reshape(x.shape) if ne.size else np.zeros(x.shape, dtype=bool)
    where = np.argwhere(ne)
    cells = [
        Cell(tuple(int(i) for i in idx), None, _scalar(x[tuple(idx)]), _scalar(y[tuple(idx)]))
        for idx in where[:limit]
    ]
    return TableDiff(
        "ndarray",
        shape,
        "position",
        _listing(list(range(len(a), len(b))), limit),
        _listing(list(range(len(b), len(a))), limit),
        Listing(len(where), tuple(cells)),
        attributes=attributes,
    )


def table_dict(t: TableDiff, conv: Any) -> dict[str, Any]:
    """The plain-data form of ``t`` (``as_dict``'s ``"table"``); ``conv`` renders values."""

    def listing(x: Listing) -> dict[str, Any]:
        return {"count": x.count, "labels": [conv(v) for v in x.items]}

    return {
        "type": t.type,
        "shape": {"before": list(t.shape[0]), "after": list(t.shape[1])},
        "rows_by": t.by,
        "appended": listing(t.appended),
        "dropped": listing(t.dropped),
        "cells": {
            "count": t.cells.count,
            "changed": [
                {
                    "row": conv(c.row),
                    **({"column": conv(c.column)} if t.type == "DataFrame" else {}),
                    "before": conv(c.before),
                    "after": conv(c.after),
                }
                for c in t.cells.items
            ],
        },
        "columns_added": [conv(c) for c in t.columns_added],
        "columns_removed": [conv(c) for c in t.columns_removed],
        "attributes": {
            k: {"before": conv(x), "after": conv(y)} for k, (x, y) in t.attributes.items()
        },
    }
