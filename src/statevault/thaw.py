"""The pandas values ``freeze`` took apart, and ``Frozen``: the tree that puts them together.

``freeze`` copies a Series' or a one-dtype DataFrame's values on the caller's thread and keeps
the rest (index, columns, name, attrs, flags); building the pandas object again costs more
than the copy, so it happens in ``Frozen.thaw()``, in the thread that encodes. The rebuilt
objects use the original Index objects, so an index several values share stays shared (the
codec stores it once, by identity).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any

__all__ = ["FrameCopy", "Frozen", "SeriesCopy", "thaw"]


class SeriesCopy:
    """A Series taken apart: its copied values and the rest, put together again by ``thaw``."""

    __slots__ = ("attrs", "dtype", "index", "name", "nodup", "values")

    def __init__(
        self, values: Any, index: Any, name: Any, dtype: Any, *, attrs: Any, nodup: bool
    ) -> None:
        self.values = values
        self.index = index
        self.name = name
        self.dtype = dtype
        self.attrs = attrs
        self.nodup = nodup

    def build(self) -> Any:
        pd = sys.modules["pandas"]
        s = pd.Series(self.values, index=self.index, name=self.name, dtype=self.dtype, copy=False)
        if self.attrs is not None:
            s.attrs = self.attrs
        if self.nodup:
            s = s.set_flags(allows_duplicate_labels=False)
            s.index = self.index  # set_flags gave a new Index object; the codec shares by identity
        return s


class FrameCopy:
    """A one-dtype DataFrame taken apart: its copied 2-D values and its axes."""

    __slots__ = ("attrs", "columns", "index", "nodup", "values")

    def __init__(self, values: Any, index: Any, columns: Any, *, attrs: Any, nodup: bool) -> None:
        self.values = values
        self.index = index
        self.columns = columns
        self.attrs = attrs
        self.nodup = nodup

    def build(self) -> Any:
        pd = sys.modules["pandas"]
        df = pd.DataFrame(self.values, index=self.index, columns=self.columns, copy=False)
        if self.attrs is not None:
            df.attrs = self.attrs
        if self.nodup:
            df = df.set_flags(allows_duplicate_labels=False)
            df.index, df.columns = self.index, self.columns  # set_flags gave new axis objects
        return df


def thaw(obj: Any) -> Any:
    t = type(obj)
    if t is SeriesCopy or t is FrameCopy:
        return obj.build()
    if t is dict or t is OrderedDict:
        for k, v in obj.items():  # the copy's own dicts: assigning existing keys is safe
            new = thaw(v)
            if new is not v:
                obj[k] = new
    elif t is list:
        for i, v in enumerate(obj):
            new = thaw(v)
            if new is not v:
                obj[i] = new
    elif t is tuple:
        items = tuple(thaw(v) for v in obj)
        if any(a is not b for a, b in zip(items, obj, strict=True)):
            return items
    return obj


class Frozen:
    """A frozen state. ``thaw()`` gives the state to encode (call it once, in any thread):
    the copied Series are rebuilt there, off the caller's thread."""

    def __init__(self, tree: dict[str, Any], series: int) -> None:
        self._tree = tree
        self._series = series

    def thaw(self) -> dict[str, Any]:
        """The state to encode: the frozen tree with its Series rebuilt (done once)."""
        if self._series:
            self._tree = thaw(self._tree)
            self._series = 0
        return self._tree
