"""How codec failures travel and read: the path-collecting error, labels, conversion hints.

``Fail`` carries an error up the encoder/decoder while each level adds its path segment;
``error(root)`` turns it into the public ``StateError`` subclass with the full path. The hints
for unsupported values (``unsupported``) suggest the conversion that works for that kind of
value. Nothing here knows the type tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import is_dataclass
from enum import Enum
from typing import Any

from statevault.errors import (
    DecodeError,
    SerializationError,
    StateError,
    UnknownTypeTagError,
    UnsupportedTypeError,
)

__all__ = [
    "PATH",
    "Fail",
    "HookError",
    "from_state_error",
    "short_repr",
    "type_label",
    "unsupported",
]

PATH = "\x00PATH\x00"  # placeholder replaced by the value's path when the error surfaces


def type_label(cls: type[Any]) -> str:
    """``module.QualName`` of a class (just ``QualName`` for builtins), for messages."""
    module = getattr(cls, "__module__", "") or ""
    qual = getattr(cls, "__qualname__", None) or repr(cls)
    return qual if module == "builtins" else f"{module}.{qual}"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, for paths inside messages."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 (a broken __repr__ must not hide the real error)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Fail(Exception):
    """Internal: an error travelling up the encoder/decoder, collecting path segments."""

    def __init__(
        self,
        kind: type[StateError],
        message: str,
        *,
        type_name: str = "",
        tag: str = "",
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.type_name = type_name
        self.tag = tag
        self.cause = cause
        self.segments: list[str] = []

    def error(self, root: str) -> StateError:
        path = root + "".join(reversed(self.segments))
        shown = path if len(path) <= 240 else f"{path[:100]}...{path[-120:]}"
        message = self.message.replace(PATH, shown)
        if issubclass(self.kind, UnsupportedTypeError):
            return self.kind(message, type_name=self.type_name, path=path)
        if issubclass(self.kind, UnknownTypeTagError):
            return self.kind(message, tag=self.tag, path=path)
        if issubclass(self.kind, DecodeError | SerializationError):
            return self.kind(message, path=path)
        return self.kind(message)


class HookError(Exception):
    """Internal: any failure inside the json object_hook (kept apart from JSON syntax errors)."""


def unsupported(obj: Any) -> Fail:
    cls = type(obj)
    label = type_label(cls)
    qual = cls.__name__  # what the caller would type in the suggested registration
    if isinstance(obj, tuple) and hasattr(cls, "_fields"):
        hint = (
            f"namedtuples are not stored as plain tuples (that would lose the type): register "
            f"it, e.g. register_type({qual}, {qual!r}, encode=lambda t: t._asdict(), "
            f"decode=lambda d: {qual}(**d))"
        )
    elif isinstance(obj, Enum):
        hint = f"register the enum with register_type({qual}) (members are stored by name)"
    elif is_dataclass(obj):
        hint = f"register the dataclass with register_type({qual}) (stored as its fields)"
    else:
        base = next(
            (
                b
                for b in (dict, list, tuple, set, frozenset, str, int, float, bytes, bytearray)
                if isinstance(obj, b)
            ),
            None,
        )
        module = getattr(cls, "__module__", "") or ""
        if base is not None:
            hint = (
                f"it is a subclass of {base.__name__}, and storing it as a plain "
                f"{base.__name__} would lose its type: register it with register_type("
                f"{qual}, {qual!r}, encode=..., decode=...) or convert it to {base.__name__}"
            )
        elif isinstance(obj, dt.tzinfo):
            hint = (
                "time zones of this class are not supported: use zoneinfo.ZoneInfo('Area/City') "
                "(or datetime.timezone(offset) for a fixed offset; pytz and dateutil zones work "
                "too), e.g. value.astimezone(zoneinfo.ZoneInfo('Europe/London'))"
            )
        elif module.startswith("numpy"):
            hint = (
                "this numpy type is not supported: convert it, e.g. np.asarray(value) for an "
                "ndarray subclass or value.astype(<a numeric, str or datetime64 dtype>)"
            )
        elif module.startswith("pandas"):
            hint = (
                "this pandas type is not supported: convert it, e.g. pd.Series(value) / "
                "pd.DataFrame(value) for a subclass, or .astype(<a supported dtype>)"
            )
        else:
            hint = (
                f"register it with register_type({qual}, {qual!r}, encode=..., decode=...) "
                f"or convert it to a supported type"
            )
    return Fail(
        UnsupportedTypeError,
        f"cannot encode a value of type {label} at {PATH}: {hint}",
        type_name=label,
    )


def from_state_error(exc: StateError) -> Fail:
    if isinstance(exc, UnknownTypeTagError):
        return Fail(UnknownTypeTagError, f"{exc} (at {PATH})", tag=exc.tag, cause=exc.__cause__)
    kind: type[StateError] = DecodeError
    return Fail(kind, f"{exc} (at {PATH})", cause=exc.__cause__ or exc)
