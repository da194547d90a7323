"""The decoder: tagged JSON objects back to values, bottom-up (``hook``) or top-down (``walk``).

``hook`` serves ``json.loads(object_hook=...)`` (no second pass over the document); ``walk``
decodes a parsed document keeping the path for error messages. ``check_nesting`` bounds a
stored document's depth before anything recurses on it.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from statevault.codec._base import MAX_DEPTH, TAG, DecodeFn, family_of_tag, is_loaded, load_family
from statevault.codec._fail import PATH, Fail, HookError, from_state_error, short_repr, type_label
from statevault.errors import CorruptStateError, DecodeError, StateError, UnknownTypeTagError

if TYPE_CHECKING:
    from statevault.codec._core import Codec

__all__ = ["Decoder", "check_nesting"]


class Decoder:
    """One decode call's state: the lookup tables and the buffers the document refers to."""

    __slots__ = ("_codec", "buffers", "decoders", "memo", "tables")

    def __init__(self, codec: Codec, buffers: list[memoryview]) -> None:
        self._codec = codec
        self.buffers = buffers
        self.memo: dict[int, Any] = {}  # ref number -> the shared object already decoded
        self.tables = codec.tables()
        self.decoders = self.tables.decoders

    def buffer(self, index: Any) -> memoryview:
        """The buffer a document field refers to (validated)."""
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise DecodeError(
                f"buffer reference {short_repr(index)} is out of range "
                f"({len(self.buffers)} buffers): the state is damaged"
            )
        return self.buffers[index]

    def resolve(self, tag: Any) -> DecodeFn:
        """The decoder for ``tag``, loading numpy/pandas handlers when their tag is met."""
        fn = self.decoders.get(tag) if type(tag) is str else None
        if fn is not None:
            return fn
        family = family_of_tag(tag) if type(tag) is str else None
        if family is not None and not is_loaded(family):
            try:
                load_family(family)
            except ImportError as exc:
                need = family.hint or f"the package {family.module} needs ({exc.name})"
                raise DecodeError(
                    f"the state holds {short_repr(tag)} values: install {need} to load it"
                ) from exc
            self.tables = self._codec.tables()
            self.decoders = self.tables.decoders
            fn = self.decoders.get(tag)
            if fn is not None:
                return fn
        raise UnknownTypeTagError(
            f"unknown type tag {short_repr(tag)}: the state was written by a newer statevault "
            f"or is not a statevault document (tags never name importable code)",
            tag=str(tag),
        )

    def shared(self, d: dict[str, Any], obj: Any) -> Any:
        """Record ``obj`` under the doc's ``ref`` number, if it has one; returns ``obj``."""
        number = d.get("ref")
        if number is not None:
            if type(number) is not int or number in self.memo:
                raise DecodeError("a shared object's 'ref' number is damaged")
            self.memo[number] = obj
        return obj

    def hook(self, d: dict[str, Any]) -> Any:
        """json object_hook: decode one JSON object whose children are already decoded."""
        tag = d.get(TAG)
        if tag is None:
            return d
        try:
            fn = self.decoders.get(tag)
            if fn is None:
                fn = self.resolve(tag)
            return fn(self, d)
        except Exception as exc:
            raise HookError() from exc

    def walk(self, x: Any) -> Any:
        """Decode a parsed document top-down, keeping the path for error messages."""
        t = type(x)
        if t is list:
            out: list[Any] = []
            append = out.append
            walk = self.walk
            try:
                for v in x:
                    append(walk(v))
            except Fail as f:
                f.segments.append(f"[{len(out)}]")
                raise
            return out
        if t is dict:
            tag = x.get(TAG)
            if tag is None:
                plain: dict[str, Any] = {}
                k: Any = None
                try:
                    for k, v in x.items():
                        plain[k] = self.walk(v)
                except Fail as f:
                    f.segments.append(f"[{short_repr(k)}]")
                    raise
                return plain
            fields: dict[str, Any] = {}
            for k, v in x.items():
                if k == "kv" and type(v) is list:
                    fields[k] = self._walk_kv(v)
                elif k == "v" and type(v) is list:
                    fmt = "<element {}>" if tag in ("set", "frozenset") else "[{}]"
                    fields[k] = self._walk_seq(v, fmt)
                else:
                    try:
                        fields[k] = self.walk(v)
                    except Fail as f:
                        if k != "v":
                            f.segments.append(f".{k}")
                        raise
            try:
                return self.resolve(tag)(self, fields)
            except Fail:
                raise
            except StateError as exc:
                raise from_state_error(exc) from exc
            except Exception as exc:
                raise Fail(
                    DecodeError,
                    f"cannot decode the {short_repr(tag)} value at {PATH}: "
                    f"{type(exc).__name__}: {exc}",
                    cause=exc,
                ) from exc
        if t is str or t is int or t is float or t is bool or x is None:
            return x
        raise Fail(DecodeError, f"the document holds a {type_label(t)} at {PATH}: not JSON")

    def _walk_seq(self, items: list[Any], fmt: str) -> list[Any]:
        out: list[Any] = []
        try:
            for v in items:
                out.append(self.walk(v))
        except Fail as f:
            f.segments.append(fmt.format(len(out)))
            raise
        return out

    def _walk_kv(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        try:
            for v in items:
                out.append(self.walk(v))
        except Fail as f:
            n = len(out)
            f.segments.append(f"<key {n // 2}>" if n % 2 == 0 else f"[{short_repr(out[-1])}]")
            raise
        return out


# A document nests at most one JSON object per container level (tags wrap a value in one
# object) and three JSON levels per container level (an int-keyed dict: object, list, pair),
# plus a few for the root; anything deeper was not written by this codec.
_MAX_OBJECT_DEPTH = MAX_DEPTH + 8
_MAX_JSON_DEPTH = 3 * MAX_DEPTH + 8
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')  # escapes removed first: a quote always delimits a string
_STEP = {ord("{"): 1, ord("}"): -1, ord("["): 1, ord("]"): -1}


def _max_depth(brackets: bytes) -> int:
    """An upper bound (exact or one or two more) of the bracket nesting depth."""
    # One replace removes the innermost pairs of one kind: at most one level on any path.
    # Wide documents (rows of small lists) shrink to almost nothing before the running sum.
    extra = 0
    for pair in (b"[]", b"{}"):
        shorter = brackets.replace(pair, b"")
        if shorter != brackets:
            brackets, extra = shorter, extra + 1
    return extra + max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _brackets(doc: bytes) -> bytes:
    """The document's brackets outside strings, in order (a valid document's structure)."""
    if b"\\" in doc:
        # Escapes pair up left to right in a string, and valid JSON has none elsewhere: with
        # escaped backslashes, then escaped quotes gone, every quote left delimits a string.
        doc = doc.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Quotes and brackets only; then the strings without brackets (almost all: keys, names)
    # are adjacent quotes. Dropping two adjacent quotes keeps every bracket on its side of
    # the string boundaries, so only strings holding brackets are left for the regex.
    kept = doc.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in kept:
        kept = _STRING.sub(b"", kept)
    return kept


def check_nesting(doc: bytes) -> None:
    """Reject a document nested deeper than the encoder writes, before anything recurses on it.

    A forged document 500 objects deep parses, then overflows the stack of whoever walks it
    (RecursionError); this bounds it as damage. C-speed passes only (replace, translate, a
    regex over the strings that hold brackets), none at all for documents with fewer
    brackets than the bound: 0.5 ms for the bench's 80 KB M document (a regex over every
    string, 1.2 ms).
    """
    if doc.count(b"{") + doc.count(b"[") <= _MAX_OBJECT_DEPTH:
        return
    brackets = _brackets(doc)
    depth = _max_depth(brackets)
    object_depth = _max_depth(brackets.translate(None, b"[]"))
    if object_depth > _MAX_OBJECT_DEPTH or depth > _MAX_JSON_DEPTH:
        raise CorruptStateError(
            f"the section document nests {max(depth, object_depth)} levels deep, deeper than "
            "statevault writes: the state is damaged or was not written by statevault"
        )
