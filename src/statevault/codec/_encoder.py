"""The encoder: one walk over a value, building the JSON document and collecting buffers.

JSON-native values are stored as themselves, everything else through the handler found by
exact type (then by base class for run-time classes, then the registry's named hooks). A
value of a library whose family is not loaded yet loads it on first sight.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any

from statevault.codec._base import (
    BASE_SUBCLASS_ENCODERS,
    MAX_DEPTH,
    TAG,
    Tables,
    families_of_root,
    is_loaded,
    load_family,
)
from statevault.codec._fail import PATH, Fail, short_repr, type_label, unsupported
from statevault.errors import SerializationError, UnsupportedTypeError

if TYPE_CHECKING:
    from statevault.codec._core import Codec

__all__ = ["Encoder"]


class Encoder:
    """One encode call's state: the lookup tables and the buffers collected so far."""

    __slots__ = (
        "_codec",
        "_keep",
        "buffers",
        "docs",
        "encoders",
        "inline_dict",
        "inline_list",
        "memo",
        "plain",
        "refs",
        "tables",
    )

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self.buffers: list[memoryview] = []
        # id(obj) -> (ref number or -1, its doc) for immutable objects met more than once
        self.memo: dict[int, tuple[int, dict[str, Any]]] = {}
        self._keep: list[Any] = []  # keeps memoised objects alive so their ids stay unique
        # id(obj) -> (obj, its doc) for immutable scalars met again (a Timestamp shared by
        # many overviews): the same doc again, no ref (the bytes are those of encoding each)
        self.docs: dict[int, tuple[Any, Any]] = {}
        self.refs = 0  # ref numbers handed out
        self._use(codec.tables())

    def _use(self, tables: Tables) -> None:
        self.tables = tables
        self.encoders = tables.encoders
        self.plain = tables.plain
        self.inline_list = tables.inline_list
        self.inline_dict = tables.inline_dict

    def add_buffer(self, buf: memoryview) -> int:
        """Store a 1-D byte buffer; returns its index for the document."""
        self.buffers.append(buf)
        return len(self.buffers) - 1

    def enc(self, obj: Any, depth: int) -> Any:
        """Encode ``obj`` (nested ``depth`` containers deep) into a JSON-able document."""
        t = type(obj)
        if t in self.plain:
            return obj
        if depth >= MAX_DEPTH:
            raise Fail(
                SerializationError,
                f"the state nests deeper than {MAX_DEPTH} levels at {PATH} (or contains a "
                f"reference cycle, e.g. a list that contains itself): flatten it",
            )
        if t is list and self.inline_list:
            return self.enc_seq(obj, depth)
        if t is dict and self.inline_dict:
            if TAG in obj:
                return self.enc_items(obj.items(), depth, "dict")
            result: dict[str, Any] = {}
            enc = self.enc
            d1 = depth + 1
            items = iter(obj.items())
            k: Any = None
            try:
                for k, v in items:
                    if type(k) is not str:
                        break
                    result[k] = enc(v, d1)
                else:
                    return result
            except Fail as f:
                f.segments.append(f"[{short_repr(k)}]")
                raise
            # A non-str key: continue in the key/value list form, keeping the work done so far
            # (re-encoding would duplicate buffers and shared-object records).
            done = [x for pair in result.items() for x in pair]
            return self.enc_items(chain(((k, v),), items), depth, "dict", done)
        fn = self.encoders.get(t)
        if fn is None:
            return self._miss(obj, depth)
        return fn(self, obj, depth)

    def shared(self, obj: Any) -> dict[str, Any] | None:
        """A ``{"$t": "ref"}`` doc if ``obj`` was encoded before in this call, else None.

        For immutable objects (pandas indexes) that several values share: they are stored once
        and decode to one shared object again, as with pickle. The first doc gets a ``ref``
        number only when a second use appears.
        """
        entry = self.memo.get(id(obj))
        if entry is None:
            return None
        number, doc = entry
        if number < 0:
            number = self.refs
            self.refs += 1
            doc["ref"] = number
            self.memo[id(obj)] = (number, doc)
        return {TAG: "ref", "id": number}

    def remember(self, obj: Any, doc: dict[str, Any]) -> dict[str, Any]:
        """Record ``doc`` as the encoding of ``obj`` for later ``shared`` lookups; returns doc."""
        self.memo[id(obj)] = (-1, doc)
        self._keep.append(obj)
        return doc

    def child(self, value: Any, depth: int, segment: str) -> Any:
        """Encode a field of ``depth``'s value, naming it ``segment`` in error paths."""
        try:
            return self.enc(value, depth + 1)
        except Fail as f:
            f.segments.append(segment)
            raise

    def enc_seq(self, values: Any, depth: int, fmt: str = "[{}]") -> list[Any]:
        """Encode the items of an iterable as a list (error path segment ``fmt`` with the index)."""
        out: list[Any] = []
        append = out.append
        enc = self.enc
        d1 = depth + 1
        try:
            for v in values:
                append(enc(v, d1))
        except Fail as f:
            f.segments.append(fmt.format(len(out)))
            raise
        return out

    def enc_items(
        self, items: Iterable[tuple[Any, Any]], depth: int, tag: str, kv: list[Any] | None = None
    ) -> dict[str, Any]:
        """Encode key/value pairs as ``{"$t": tag, "kv": [k0, v0, k1, v1, ...]}`` (any keys).

        ``kv`` holds pairs already encoded (their count offsets the indexes in error paths).
        """
        kv = [] if kv is None else kv
        append = kv.append
        enc = self.enc
        d1 = depth + 1
        k: Any = None
        try:
            for i, (k, v) in enumerate(items, len(kv) // 2):
                try:
                    append(enc(k, d1))
                except Fail as f:
                    f.segments.append(f"<key {i}>")
                    raise
                append(enc(v, d1))
        except Fail as f:
            if len(kv) % 2:  # the key was encoded: the value failed
                f.segments.append(f"[{short_repr(k)}]")
            raise
        return {TAG: tag, "kv": kv}

    def unsupported(self, obj: Any, detail: str = "") -> Fail:
        """The UnsupportedTypeError to raise for ``obj`` (with an optional specific reason)."""
        if not detail:
            return unsupported(obj)
        label = type_label(type(obj))
        return Fail(
            UnsupportedTypeError,
            f"cannot encode a value of type {label} at {PATH}: {detail}",
            type_name=label,
        )

    def _miss(self, obj: Any, depth: int) -> Any:
        t = type(obj)
        root = (getattr(t, "__module__", "") or "").partition(".")[0]
        pending = [f for f in families_of_root(root) if not is_loaded(f)]
        if pending:
            for family in pending:
                try:
                    load_family(family)
                except ImportError:
                    # A family that needs another optional library (e.g. pyarrow for some
                    # pandas types): not installed, so this value is none of its types.
                    continue
            self._use(self._codec.tables())
            fn = self.encoders.get(t)
            if fn is not None:
                return fn(self, obj, depth)
        for base, sub in BASE_SUBCLASS_ENCODERS.items():
            if issubclass(t, base):
                return sub(self, obj, depth)
        for name, serializer in self.tables.serializers:
            try:
                replacement = serializer(obj)
            except Exception as exc:
                raise Fail(
                    SerializationError,
                    f"serializer {name!r} raised on a {type_label(t)} at {PATH}: "
                    f"{type(exc).__name__}: {exc}",
                    cause=exc,
                ) from exc
            if replacement is not obj:
                return {TAG: "hook", "n": name, "v": self.enc(replacement, depth + 1)}
        raise unsupported(obj)
