"""What changed between two states: ``diff_states(a, b) -> StateDiff``, a pure function.

Answers "what did the bot change": keys added, removed and changed, each by its path
(``state['pair_states']['EURUSD']['peak']``); for a pandas ``Series`` or ``DataFrame`` the rows
appended or dropped (by index label) and the changed cells; for a numpy array the shape and the
changed elements. Listings are bounded (``limit`` entries each) and always carry the full count,
so a diff of two 100,000-row frames stays small.

What the caller must know:

- Nothing is mutated and nothing is imported: pandas and numpy are looked up in
  ``sys.modules`` (a state holding their objects has loaded them already).
- Two values are the same when they have the same type and compare equal, NaN equal to NaN
  (so a state is never different from a copy of itself), datetimes also in their zone.
- Dicts are compared by key (order ignored), lists and tuples by position (a longer list shows
  its extra items as added, a shorter one its missing items as removed), dataclasses field by
  field (``Field`` in a path); sets and other objects are compared whole.
- Rows are matched by index label when both indexes are unique and of the same dtype, by
  position otherwise (``TableDiff.by``); "appended" means labels of ``b`` not in ``a`` (in
  ``b``'s order), "dropped" labels of ``a`` not in ``b``.

The walk over containers is here; how one Series, DataFrame or array changed (and the value
equality both use) is ``statevault.tablediff``, whose ``Listing``/``Cell``/``TableDiff``
this module re-exports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .tablediff import Cell, Listing, TableDiff, same, table_changed, table_dict, table_diff

__all__ = [
    "Cell",
    "Change",
    "Field",
    "Listing",
    "StateDiff",
    "TableDiff",
    "as_dict",
    "diff_states",
    "path_text",
]

#: The default number of entries each bounded listing keeps.
LIMIT = 20

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One difference at ``path`` (keys and indexes from the root, see ``path_text``).

    ``added``: only in ``b`` (``after`` set); ``removed``: only in ``a`` (``before`` set);
    ``changed``: in both, different (``table`` set for a Series, DataFrame or array of the
    same type on both sides).
    """

    path: tuple[Any, ...]
    kind: ChangeKind
    before: Any = None
    after: Any = None
    table: TableDiff | None = None

    @property
    def where(self) -> str:
        """The path as Python would write it: ``state['pair_states']['EURUSD']``."""
        return path_text(self.path)


@dataclass(frozen=True)
class StateDiff:
    """Every difference between two states, in the order met (``a``'s keys, then ``b``'s).

    Empty (falsy) when the states are the same.
    """

    changes: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def of_kind(self, kind: ChangeKind) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    @property
    def added(self) -> tuple[Change, ...]:
        return self.of_kind("added")

    @property
    def removed(self) -> tuple[Change, ...]:
        return self.of_kind("removed")

    @property
    def changed(self) -> tuple[Change, ...]:
        return self.of_kind("changed")

    def counts(self) -> dict[str, int]:
        return {k: len(self.of_kind(k)) for k in ("added", "removed", "changed")}


@dataclass(frozen=True)
class Field:
    """A dataclass field in a path (``state['position'].entry_price``)."""

    name: str


def path_text(path: Iterable[Any], root: str = "state") -> str:
    """``root['a'][3].field``: the path of a value, each key as its ``repr``."""
    return root + "".join(f".{k.name}" if isinstance(k, Field) else f"[{k!r}]" for k in path)


def diff_states(a: Any, b: Any, *, limit: int = LIMIT) -> StateDiff:
    """What changed from ``a`` to ``b`` (any values; usually two loaded states).

    ``limit`` bounds each listing of rows and cells (counts stay exact). Pure: reads both
    values, changes neither.
    """
    if limit < 0:
        raise ValueError("limit must be 0 or more")
    return StateDiff(tuple(_walk((), a, b, limit)))


# -- walking ------------------------------------------------------------------------------


def _walk(path: tuple[Any, ...], a: Any, b: Any, limit: int) -> Iterator[Change]:
    if type(a) is not type(b):
        yield Change(path, "changed", a, b)
        return
    if isinstance(a, dict):
        for key, value in a.items():
            if key in b:
                yield from _walk((*path, key), value, b[key], limit)
            else:
                yield Change((*path, key), "removed", before=value)
        for key, value in b.items():
            if key not in a:
                yield Change((*path, key), "added", after=value)
        return
    if isinstance(a, list | tuple):
        for i in range(min(len(a), len(b))):
            yield from _walk((*path, i), a[i], b[i], limit)
        for i in range(len(b), len(a)):
            yield Change((*path, i), "removed", before=a[i])
        for i in range(len(a), len(b)):
            yield Change((*path, i), "added", after=b[i])
        return
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            yield from _walk((*path, Field(f.name)), getattr(a, f.name), getattr(b, f.name), limit)
        return
    table = table_diff(a, b, limit)
    if table is not None:
        if table_changed(table):
            yield Change(path, "changed", a, b, table)
        return
    if not same(a, b):
        yield Change(path, "changed", a, b)


def as_dict(diff: StateDiff, convert: Any = None) -> dict[str, Any]:
    """A plain-data form of ``diff``; ``convert(value)`` renders values (default: as they are).

    Shape: ``{"counts": {"added", "removed", "changed"}, "changes": [{"path", "kind",
    "before"?, "after"?, "table"?}]}`` (see docs/cli.md, ``statevault diff --json``).
    """
    conv = convert if convert is not None else (lambda v: v)
    out: list[dict[str, Any]] = []
    for c in diff.changes:
        entry: dict[str, Any] = {"path": c.where, "keys": [conv(k) for k in c.path], "kind": c.kind}
        if c.table is not None:
            entry["table"] = table_dict(c.table, conv)
        else:
            if c.kind != "added":
                entry["before"] = conv(c.before)
            if c.kind != "removed":
                entry["after"] = conv(c.after)
        out.append(entry)
    return {"counts": diff.counts(), "changes": out}
