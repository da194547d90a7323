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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from statevault.codec._base import MAX_DEPTH, TAG, DecodeFn, EncodeFn, Tables, ensure_base
from statevault.codec._decoder import Decoder, check_nesting
from statevault.codec._encoder import Encoder
from statevault.codec._fail import Fail, HookError, short_repr, type_label
from statevault.codec._payload import Buffer, pack, unpack, unpack_parts
from statevault.codec._registry import TypeRegistry, default_registry, generation
from statevault.errors import CorruptStateError, DecodeError, SerializationError

# Handler modules import the engine's names from here (TAG, Encoder, Decoder, the function types).
__all__ = [
    "MAX_DEPTH",
    "TAG",
    "Codec",
    "DecodeFn",
    "Decoder",
    "EncodeFn",
    "Encoded",
    "Encoder",
    "short_repr",
    "type_label",
]


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
        self._tables: Tables | None = None

    def __repr__(self) -> str:
        return f"Codec(registry={self.registry!r})"

    def tables(self) -> Tables:
        """Current merged lookup tables (rebuilt when any registry changed)."""
        ensure_base()
        gen = generation()
        tables = self._tables
        if tables is None or tables.gen != gen:
            tables = self._tables = Tables(self.registry, gen)
        return tables

    def encode(self, obj: object, *, root: str = "state") -> Encoded:
        """Encode ``obj``; raises UnsupportedTypeError (type_name, path) or SerializationError.

        ``root`` names the value in error paths, e.g. ``state['pairs']['EURUSD']['model']``.
        """
        encoder = Encoder(self)
        try:
            doc = encoder.enc(obj, 0)
        except Fail as f:
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
        except Fail as f:
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
        return self._load(*unpack(data))

    def loads_parts(self, parts: Sequence[Buffer]) -> Any:
        """``loads`` of the concatenation of ``parts``, without joining them (a delta load).

        An array whose bytes lie inside one writable part is built on that memory (no copy),
        so give only parts nothing else uses (``FrameReader.section_parts`` does); those
        spread over several parts are assembled once, each into its own slice of one fresh
        allocation (``unpack_parts``); read-only parts
        are copied per array. Errors as ``loads``.
        """
        return self._load(*unpack_parts(parts))

    def _load(self, doc: memoryview, buffers: list[memoryview]) -> Any:
        raw = bytes(doc)  # one copy of the document, for the nesting check and the parser
        try:
            text = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise CorruptStateError(
                "the section document is not valid UTF-8: the state is damaged"
            ) from exc
        check_nesting(raw)
        decoder = Decoder(self, buffers)
        try:
            return json.loads(text, object_hook=decoder.hook)
        except HookError:
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
