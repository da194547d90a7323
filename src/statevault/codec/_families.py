"""The one table of built-in codec type families: which module handles which values and tags.

Every row names a handler module that defines two plain dicts, ``ENCODERS`` (exact type ->
encode function) and ``DECODERS`` (tag -> decode function), and does nothing else when it is
imported (no registration calls: the codec reads the dicts). The codec loads a family:

- ``eager`` families the first time any codec builds its lookup tables (the standard library);
- the others lazily, the first time a value is met whose type's top-level module is listed in
  ``roots`` (so ``import statevault`` never imports numpy, pandas, pytz or dateutil), or a tag
  starting with ``prefix`` is decoded.

Tags of different families never overlap (each lazy family owns its prefix; the eager family's
tags contain no ``.``) and neither do their types: the merged tables are therefore the same
whatever order the families load in (a test checks this). Stored tags are looked up in these
fixed dicts; nothing named by stored data is ever imported.

To add a family: write the module (``ENCODERS``/``DECODERS``, optionally
``SUBCLASS_ENCODERS`` for classes made at run time; no import-time side effects), add one row
here with a tag prefix of its own (a narrower prefix inside another family's, such as
``"pd.arrow."``, is fine: a tag belongs to the longest prefix it starts with), and list its tags
in docs/types.md. Several families may share a root (all of them load when a value of that
library is met; one whose import fails, for a missing optional library, is skipped on encode).
``hint`` is shown when the module cannot be imported while decoding (``install ...``); leave it
empty for a module that always imports and names a missing optional library itself, per tag.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FAMILIES", "Family"]


class Family(NamedTuple):
    """One row of the table: handler module, what triggers loading it, and the install hint."""

    module: str
    roots: tuple[str, ...]
    prefix: str
    hint: str
    eager: bool = False


FAMILIES: tuple[Family, ...] = (
    Family("statevault.codec._builtin", (), "", "", eager=True),
    Family(
        "statevault.codec._numpy", ("numpy",), "np.", "numpy (pip install 'statevault[pandas]')"
    ),
    Family(
        "statevault.codec._pandas", ("pandas",), "pd.", "pandas (pip install 'statevault[pandas]')"
    ),
    Family("statevault.codec._tz", ("pytz", "dateutil"), "tz.", ""),
)
"""Every built-in family; rows are independent, their order does not matter."""
