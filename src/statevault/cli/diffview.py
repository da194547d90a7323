"""``statevault diff`` output: a ``StateDiff`` as lines for a person or as JSON. Pure functions.

One line per change, ``~`` changed, ``+`` added, ``-`` removed, the path as Python writes it;
a Series, DataFrame or array that changed gets indented lines for its rows appended and
dropped and its changed cells (bounded by the diff's ``limit``, with the full counts).
"""

from __future__ import annotations

from typing import Any

from ..diff import Change, Listing, StateDiff, TableDiff, as_dict
from .render import render_entry, to_json

__all__ = ["diff_json", "render_diff"]

_MARK = {"changed": "~", "added": "+", "removed": "-"}


def diff_json(diff: StateDiff, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{"url"?, "from", "to", "counts", "changes"}``: see docs/cli.md (``diff --json``)."""
    return {"from": before, "to": after, **as_dict(diff, to_json)}


def _text(value: Any) -> str:
    """A value on one line: itself when short, else its kind (``dict, 3 items``)."""
    return render_entry("", "v", value, 0)[0][3:]


def _labels(listing: Listing) -> str:
    shown = ", ".join(_text(v) for v in listing.items)
    more = f", ... {listing.count - len(listing.items)} more" if listing.truncated else ""
    return shown + more


def _rows_word(t: TableDiff) -> str:
    return "element" if t.type == "ndarray" and not t.shape[0][1:] else "row"


def _table_lines(t: TableDiff, pad: str) -> list[str]:
    lines: list[str] = []
    word = _rows_word(t)
    for name, listing in (("appended", t.appended), ("dropped", t.dropped)):
        if listing.count:
            plural = "s" if listing.count != 1 else ""
            lines.append(f"{pad}{name} {listing.count:,} {word}{plural}: {_labels(listing)}")
    if t.columns_added:
        lines.append(f"{pad}columns added: {', '.join(map(repr, t.columns_added))}")
    if t.columns_removed:
        lines.append(f"{pad}columns removed: {', '.join(map(repr, t.columns_removed))}")
    for name, (x, y) in t.attributes.items():
        lines.append(f"{pad}{name}: {_text(x)} -> {_text(y)}")
    if t.cells.count:
        plural = "s" if t.cells.count != 1 else ""
        lines.append(f"{pad}changed {t.cells.count:,} cell{plural}:")
        for c in t.cells.items:
            at = _text(c.row) + (f", {c.column!r}" if t.type == "DataFrame" else "")
            lines.append(f"{pad}  [{at}]: {_text(c.before)} -> {_text(c.after)}")
        if t.cells.truncated:
            lines.append(f"{pad}  ... {t.cells.count - len(t.cells.items):,} more")
    return lines


def _shape(t: TableDiff) -> str:
    a, b = t.shape
    if t.type == "ndarray":
        return f"ndarray {a} -> {b}" if a != b else f"ndarray {a}"
    rows = f"{a[0]:,} -> {b[0]:,} rows" if a[0] != b[0] else f"{a[0]:,} rows"
    return f"{t.type}, {rows}"


def _change_line(c: Change) -> list[str]:
    mark = _MARK[c.kind]
    if c.table is not None:
        return [f"{mark} {c.where}: {_shape(c.table)}", *_table_lines(c.table, "    ")]
    if c.kind == "added":
        return [f"{mark} {c.where}: {_text(c.after)}"]
    if c.kind == "removed":
        return [f"{mark} {c.where}: {_text(c.before)}"]
    return [f"{mark} {c.where}: {_text(c.before)} -> {_text(c.after)}"]


def render_diff(diff: StateDiff, title: str) -> list[str]:
    """Lines for a person: ``title``, the counts, then one entry per change."""
    counts = diff.counts()
    lines = [f"# {title}"]
    if not diff:
        lines.append("no differences")
        return lines
    lines.append(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    for change in diff.changes:
        lines.extend(_change_line(change))
    return lines
