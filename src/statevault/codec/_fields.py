"""Field readers shared by every handler family: a tagged object's required fields, typed.

A damaged document (a missing field, a field of the wrong JSON type) raises DecodeError here,
and the codec adds the path of the value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from statevault.codec._base import TAG
from statevault.errors import DecodeError

__all__ = ["decode_tzinfo", "field", "int_field", "list_field", "str_field"]


def field(d: dict[str, Any], key: str) -> Any:
    """A required field of a tagged object (KeyError names the field when missing)."""
    try:
        return d[key]
    except KeyError:
        raise DecodeError(f"the {d.get(TAG)!r} value has no {key!r} field") from None


def str_field(d: dict[str, Any], key: str) -> str:
    """A required str field."""
    value = field(d, key)
    if type(value) is not str:
        raise DecodeError(f"field {key!r} of a {d.get(TAG)!r} value must be a str")
    return value


def int_field(d: dict[str, Any], key: str) -> int:
    """A required int field (not bool)."""
    value = field(d, key)
    if type(value) is not int:
        raise DecodeError(f"field {key!r} of a {d.get(TAG)!r} value must be an int")
    return value


def list_field(d: dict[str, Any], key: str) -> list[Any]:
    """A required list field."""
    value = field(d, key)
    if type(value) is not list:
        raise DecodeError(f"field {key!r} of a {d.get(TAG)!r} value must be a list")
    return value


def decode_tzinfo(value: Any) -> dt.tzinfo | None:
    """A decoded ``tz`` field: None or a tzinfo."""
    if value is None or isinstance(value, dt.tzinfo):
        return value
    raise DecodeError(f"a time zone field holds a {type(value).__name__}, not a tzinfo")
