"""The codec engine: Python objects <-> a JSON document plus raw binary buffers.

Encoding walks the value once. JSON-native values (str, finite or not float, bool, None, ints
up to 64 bits, lists, str-keyed dicts) are stored as themselves; everything else becomes a
tagged object ``{"$t": tag, ...fields}``. Tags are fixed names in this package; a tag is never
used to import anything. Numeric arrays travel as buffers referenced from the document by index.

Decoding is bottom-up: every field of a tagged object is itself an encoded value, so a JSON
object can be decoded as soon as its children are. ``loads`` exploits that with
``json.loads(object_hook=...)`` (no second walk over the document); ``decode`` of an already
parsed document walks it. Errors carry the path of the failing value inside the state.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, is_dataclass
from enum import Enum
from itertools import accumulate, chain
from types import NoneType
from typing import Any

from statevault.codec._families import FAMILIES, Family
from statevault.codec._payload import Buffer, pack, unpack
from statevault.codec._registry import (
    TypeRegistry,
    UserType,
    bump_generation,
    default_registry,
    generation,
)
from statevault.errors import (
    CorruptStateError,
    DecodeError,
    SerializationError,
    StateError,
    UnknownTypeTagError,
    UnsupportedTypeError,
)

__all__ = ["MAX_DEPTH", "Codec", "Decoder", "Encoded", "Encoder", "TAG"]

TAG = "$t"
"""The key that marks a JSON object as a tagged value; plain dicts holding it are escaped."""

MAX_DEPTH = 300
"""Deepest container nesting the codec accepts; deeper values (or cycles) raise a clear error."""

_PATH = "\x00PATH\x00"  # placeholder replaced by the value's path when the error surfaces

EncodeFn = Callable[["Encoder", Any, int], Any]
DecodeFn = Callable[["Decoder", dict[str, Any]], Any]

# The base the user cannot break: built-in handlers by exact type and by tag, merged from the
# handler modules of the family table (codec/_families.py) as each family is loaded.
BASE_ENCODERS: dict[type[Any], EncodeFn] = {}
BASE_DECODERS: dict[str, DecodeFn] = {}
# Base class -> encoder for types built at run time (pytz makes one class per zone), consulted
# only after the exact lookup missed.
BASE_SUBCLASS_ENCODERS: dict[type[Any], EncodeFn] = {}
_EAGER = tuple(f for f in FAMILIES if f.eager)
_BY_ROOT: dict[str, tuple[Family, ...]] = {}
for _family in FAMILIES:
    for _root in _family.roots:
        _BY_ROOT[_root] = (*_BY_ROOT.get(_root, ()), _family)
# Longest prefix first, so a family may own a narrower prefix inside another's ("pd.x." in "pd.").
_BY_PREFIX = sorted((f for f in FAMILIES if not f.eager), key=lambda f: -len(f.prefix))
_loaded: set[str] = set()
_load_lock = threading.Lock()
_base_ready = False


def family_of_tag(tag: str) -> Family | None:
    """The lazy family whose prefix a tag starts with (the longest such prefix), if any."""
    return next((f for f in _BY_PREFIX if tag.startswith(f.prefix)), None)


def load_family(family: Family) -> bool:
    """Import a family's handler module once and merge its tables; True if newly loaded.

    Raises ImportError when the module (or the library it needs) cannot be imported, and
    RuntimeError for a handler module that breaks the table's rules (a type or tag another
    family already handles, a tag outside its prefix): either would make results depend on
    which family happened to load first.
    """
    if family.module in _loaded:
        return False
    with _load_lock:
        if family.module in _loaded:
            return False
        module = importlib.import_module(family.module)
        encoders: dict[type[Any], EncodeFn] = module.ENCODERS
        decoders: dict[str, DecodeFn] = module.DECODERS
        subclass: dict[type[Any], EncodeFn] = getattr(module, "SUBCLASS_ENCODERS", {})
        clash = [type_label(t) for t in encoders if t in BASE_ENCODERS]
        clash += [type_label(t) for t in subclass if t in BASE_SUBCLASS_ENCODERS]
        clash += [t for t in decoders if t in BASE_DECODERS]
        clash += [t for t in decoders if family_of_tag(t) is not (None if family.eager else family)]
        if clash:
            raise RuntimeError(f"codec family {family.module} breaks the family table: {clash}")
        BASE_ENCODERS.update(encoders)
        BASE_DECODERS.update(decoders)
        BASE_SUBCLASS_ENCODERS.update(subclass)
        _loaded.add(family.module)
        bump_generation()  # codecs rebuild their tables with the new handlers
        return True


def _ensure_base() -> None:
    global _base_ready  # noqa: PLW0603 (a one-way flag: the eager families are loaded once)
    if not _base_ready:
        for family in _EAGER:
            load_family(family)
        _base_ready = True


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


@dataclass
class Encoded:
    """An encoded value: a JSON-serialisable ``doc`` and the raw ``buffers`` it refers to by index.

    ``json.dumps(doc, allow_nan=True)`` works on ``doc`` (pass ``ensure_ascii=False`` and encode
    with ``surrogatepass`` to keep adjacent lone surrogates apart, as ``dumps`` does). Buffers are
    1-D byte memoryviews that may share memory with the encoded objects (numpy arrays are not
    copied): write them out before mutating those objects.
    """

    doc: Any
    buffers: list[memoryview] = field(default_factory=list)


class _Fail(Exception):
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
        message = self.message.replace(_PATH, shown)
        if issubclass(self.kind, UnsupportedTypeError):
            return self.kind(message, type_name=self.type_name, path=path)
        if issubclass(self.kind, UnknownTypeTagError):
            return self.kind(message, tag=self.tag, path=path)
        if issubclass(self.kind, DecodeError | SerializationError):
            return self.kind(message, path=path)
        return self.kind(message)


class _HookError(Exception):
    """Internal: any failure inside the json object_hook (kept apart from JSON syntax errors)."""


class _Tables:
    """Merged lookup tables for one registry at one registry generation."""

    def __init__(self, registry: TypeRegistry, gen: int) -> None:
        by_type, by_name, serializers, deserializers = registry.merged()
        self.gen = gen
        encoders = dict(BASE_ENCODERS)
        for cls, entry in by_type.items():
            encoders[cls] = _user_encoder(entry)
        self.encoders = encoders
        self.plain = frozenset(t for t in (str, float, bool, NoneType) if t not in by_type)
        self.inline_list = list not in by_type
        self.inline_dict = dict not in by_type
        self.decoders = dict(BASE_DECODERS)
        self.user_types = by_name
        self.serializers = serializers
        self.deserializers = deserializers


def _user_encoder(entry: UserType) -> EncodeFn:
    name, encode, label = entry.name, entry.encode, type_label(entry.cls)

    def encode_user(e: Encoder, obj: Any, depth: int) -> Any:
        try:
            value = encode(obj)
        except Exception as exc:
            raise _Fail(
                SerializationError,
                f"the encode function registered as {name!r} failed on a {label} at {_PATH}: "
                f"{type(exc).__name__}: {exc}",
                cause=exc,
            ) from exc
        if value is obj:
            raise _Fail(
                SerializationError,
                f"the encode function registered as {name!r} returned the {label} itself at "
                f"{_PATH}: it must return a value the codec can store (e.g. a dict)",
            )
        return {TAG: "user", "n": name, "v": e.enc(value, depth + 1)}

    return encode_user


def _unsupported(obj: Any) -> _Fail:
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
    return _Fail(
        UnsupportedTypeError,
        f"cannot encode a value of type {label} at {_PATH}: {hint}",
        type_name=label,
    )


class Encoder:
    """One encode call's state: the lookup tables and the buffers collected so far."""

    __slots__ = (
        "_codec",
        "_keep",
        "buffers",
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
        self.refs = 0  # ref numbers handed out
        self._use(codec.tables())

    def _use(self, tables: _Tables) -> None:
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
            raise _Fail(
                SerializationError,
                f"the state nests deeper than {MAX_DEPTH} levels at {_PATH} (or contains a "
                f"reference cycle, e.g. a list that contains itself): flatten it",
            )
        if t is list and self.inline_list:
            out: list[Any] = []
            append = out.append
            enc = self.enc
            d1 = depth + 1
            try:
                for v in obj:
                    append(enc(v, d1))
            except _Fail as f:
                f.segments.append(f"[{len(out)}]")
                raise
            return out
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
            except _Fail as f:
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
        except _Fail as f:
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
        except _Fail as f:
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
                except _Fail as f:
                    f.segments.append(f"<key {i}>")
                    raise
                append(enc(v, d1))
        except _Fail as f:
            if len(kv) % 2:  # the key was encoded: the value failed
                f.segments.append(f"[{short_repr(k)}]")
            raise
        return {TAG: tag, "kv": kv}

    def unsupported(self, obj: Any, detail: str = "") -> _Fail:
        """The UnsupportedTypeError to raise for ``obj`` (with an optional specific reason)."""
        if not detail:
            return _unsupported(obj)
        label = type_label(type(obj))
        return _Fail(
            UnsupportedTypeError,
            f"cannot encode a value of type {label} at {_PATH}: {detail}",
            type_name=label,
        )

    def _miss(self, obj: Any, depth: int) -> Any:
        t = type(obj)
        root = (getattr(t, "__module__", "") or "").partition(".")[0]
        pending = [f for f in _BY_ROOT.get(root, ()) if f.module not in _loaded]
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
                raise _Fail(
                    SerializationError,
                    f"serializer {name!r} raised on a {type_label(t)} at {_PATH}: "
                    f"{type(exc).__name__}: {exc}",
                    cause=exc,
                ) from exc
            if replacement is not obj:
                return {TAG: "hook", "n": name, "v": self.enc(replacement, depth + 1)}
        raise _unsupported(obj)


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
        if family is not None and family.module not in _loaded:
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
            raise _HookError() from exc

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
            except _Fail as f:
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
                except _Fail as f:
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
                    except _Fail as f:
                        if k != "v":
                            f.segments.append(f".{k}")
                        raise
            try:
                return self.resolve(tag)(self, fields)
            except _Fail:
                raise
            except StateError as exc:
                raise _from_state_error(exc) from exc
            except Exception as exc:
                raise _Fail(
                    DecodeError,
                    f"cannot decode the {short_repr(tag)} value at {_PATH}: "
                    f"{type(exc).__name__}: {exc}",
                    cause=exc,
                ) from exc
        if t is str or t is int or t is float or t is bool or x is None:
            return x
        raise _Fail(DecodeError, f"the document holds a {type_label(t)} at {_PATH}: not JSON")

    def _walk_seq(self, items: list[Any], fmt: str) -> list[Any]:
        out: list[Any] = []
        try:
            for v in items:
                out.append(self.walk(v))
        except _Fail as f:
            f.segments.append(fmt.format(len(out)))
            raise
        return out

    def _walk_kv(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        try:
            for v in items:
                out.append(self.walk(v))
        except _Fail as f:
            n = len(out)
            f.segments.append(f"<key {n // 2}>" if n % 2 == 0 else f"[{short_repr(out[-1])}]")
            raise
        return out


def _from_state_error(exc: StateError) -> _Fail:
    if isinstance(exc, UnknownTypeTagError):
        return _Fail(UnknownTypeTagError, f"{exc} (at {_PATH})", tag=exc.tag, cause=exc.__cause__)
    kind: type[StateError] = DecodeError
    return _Fail(kind, f"{exc} (at {_PATH})", cause=exc.__cause__ or exc)


# ensure_ascii=False + surrogatepass: str values keep lone surrogates and adjacent surrogate
# code points exactly (an ASCII \ud800\udc00 escape pair would be merged by json.loads).
_JSON_ENCODER = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, allow_nan=True, separators=(",", ":")
)


class Codec:
    """Turns values into an ``Encoded`` document + buffers (or one section payload) and back.

    Uses ``registry`` (default: ``default_registry``) for user types and named hooks; built-in
    types always work. Never pickles, evals, or imports anything named by stored data. A Codec
    is thread-safe and cheap to keep: it caches merged lookup tables and rebuilds them when any
    registry changes.
    """

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry
        self._tables: _Tables | None = None

    def __repr__(self) -> str:
        return f"Codec(registry={self.registry!r})"

    def tables(self) -> _Tables:
        """Current merged lookup tables (rebuilt when any registry changed)."""
        _ensure_base()
        gen = generation()
        tables = self._tables
        if tables is None or tables.gen != gen:
            tables = self._tables = _Tables(self.registry, gen)
        return tables

    def encode(self, obj: object, *, root: str = "state") -> Encoded:
        """Encode ``obj``; raises UnsupportedTypeError (type_name, path) or SerializationError.

        ``root`` names the value in error paths, e.g. ``state['pairs']['EURUSD']['model']``.
        """
        encoder = Encoder(self)
        try:
            doc = encoder.enc(obj, 0)
        except _Fail as f:
            raise f.error(root) from f.cause
        except RecursionError as exc:
            raise SerializationError(
                f"{root} nests too deeply for Python's recursion limit (or a registered encode "
                f"function recurses): flatten the state",
                path=root,
            ) from exc
        return Encoded(doc, encoder.buffers)

    def decode(self, encoded: Encoded) -> Any:
        """Turn an ``Encoded`` back into objects; raises DecodeError/UnknownTypeTagError (``path``).

        Buffers may be read-only: numpy arrays are then copied so results are always writable;
        writable buffers are used without copying.
        """
        buffers = [b if type(b) is memoryview else memoryview(b) for b in encoded.buffers]
        decoder = Decoder(self, buffers)
        try:
            return decoder.walk(encoded.doc)
        except _Fail as f:
            raise f.error("state") from f.cause
        except RecursionError as exc:
            raise DecodeError("the document nests too deeply to decode", path="state") from exc

    def dumps(self, obj: object, *, root: str = "state") -> list[Buffer]:
        """Encode ``obj`` as one section payload: chunks to write back to back (zero copy).

        Layout in docs/types.md ("Section payload layout"): header, buffer table, JSON
        document, then each buffer at a 64-byte aligned offset.
        """
        encoded = self.encode(obj, root=root)
        try:
            text = _JSON_ENCODER.encode(encoded.doc)
        except (ValueError, TypeError, RecursionError) as exc:
            raise SerializationError(
                f"cannot write the document of {root}: {exc}", path=root
            ) from exc
        return pack(text.encode("utf-8", "surrogatepass"), encoded.buffers)

    def loads(self, data: Buffer) -> Any:
        """Inverse of ``dumps``. ``data`` may be a memoryview slice of a larger buffer.

        Writable input (bytearray, or a memoryview of one) is used without copying: arrays in
        the result share its memory. Read-only input (bytes) is copied per array. A damaged
        payload raises a CorruptStateError subclass, a bad document a DecodeError.
        """
        doc, buffers = unpack(data)
        try:
            text = str(doc, "utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise CorruptStateError(
                "the section document is not valid UTF-8: the state is damaged"
            ) from exc
        _check_nesting(bytes(doc))
        decoder = Decoder(self, buffers)
        try:
            return json.loads(text, object_hook=decoder.hook)
        except _HookError:
            pass  # decode again top-down below, to report the error with its path
        except RecursionError as exc:
            raise DecodeError("the document nests too deeply to decode", path="state") from exc
        except ValueError as exc:
            raise CorruptStateError(
                f"the section document is not valid JSON ({exc}): the state is damaged"
            ) from exc
        try:
            parsed = json.loads(text)
        except RecursionError as exc:
            raise DecodeError("the document nests too deeply to decode", path="state") from exc
        except ValueError as exc:  # the hook failed before the parser reached a syntax error
            raise CorruptStateError(
                f"the section document is not valid JSON ({exc}): the state is damaged"
            ) from exc
        return self.decode(Encoded(parsed, buffers))


# A document nests at most one JSON object per container level (tags wrap a value in one
# object) and three JSON levels per container level (an int-keyed dict: object, list, pair),
# plus a few for the root; anything deeper was not written by this codec.
_MAX_OBJECT_DEPTH = MAX_DEPTH + 8
_MAX_JSON_DEPTH = 3 * MAX_DEPTH + 8
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
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


def _check_nesting(doc: bytes) -> None:
    """Reject a document nested deeper than the encoder writes, before anything recurses on it.

    A forged document 500 objects deep parses, then overflows the stack of whoever walks it
    (RecursionError); this bounds it as damage. C-speed passes only (regex, translate,
    replace), and none at all for documents with fewer brackets than the bound.
    """
    if doc.count(b"{") + doc.count(b"[") <= _MAX_OBJECT_DEPTH:
        return
    brackets = _JSON_STRING.sub(b"", doc).translate(None, _NOT_BRACKETS)
    depth = _max_depth(brackets)
    object_depth = _max_depth(brackets.translate(None, b"[]"))
    if object_depth > _MAX_OBJECT_DEPTH or depth > _MAX_JSON_DEPTH:
        raise CorruptStateError(
            f"the section document nests {max(depth, object_depth)} levels deep, deeper than "
            "statevault writes: the state is damaged or was not written by statevault"
        )
