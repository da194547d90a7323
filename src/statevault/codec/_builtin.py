"""Built-in handlers for the standard library types (always available, no imports of numpy/pandas).

Each encoder returns a tagged JSON object; each decoder receives that object with its fields
already decoded and rebuilds the value. Field values are validated: a damaged document raises
(and the codec reports a DecodeError with the path) instead of producing a wrong value. This
is the eager family's module: numbers, bytes, containers and other scalars here, dates, times
and zones in ``_stdtime`` (merged into these tables), field readers in ``_fields``.
"""

from __future__ import annotations

import base64
import binascii
import pathlib
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from statevault.codec import _stdtime
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder, short_repr
from statevault.codec._fields import field, list_field, str_field
from statevault.errors import DecodeError, UnknownTypeTagError

__all__ = ["DECODERS", "ENCODERS", "INLINE_BYTES"]

INLINE_BYTES = 512
"""bytes up to this size are stored inline (base64) in the document, larger ones as buffers."""

_INT_LIMIT = 1 << 64  # ints beyond 64 bits are stored as hex (JSON readers and digit limits)


# --- numbers -------------------------------------------------------------------------------


def enc_int(e: Encoder, obj: int, depth: int) -> Any:
    if -_INT_LIMIT <= obj < _INT_LIMIT:
        return obj
    return {TAG: "int", "hex": hex(obj)}


def dec_int(_: Decoder, d: dict[str, Any]) -> int:
    text = str_field(d, "hex")
    if not text.lstrip("-").startswith("0x"):
        raise DecodeError("an 'int' value must hold a hex literal")
    return int(text, 16)  # base 16 is exempt from the int digit limit


def enc_complex(e: Encoder, obj: complex, depth: int) -> Any:
    return {TAG: "complex", "v": [obj.real, obj.imag]}


def dec_complex(_: Decoder, d: dict[str, Any]) -> complex:
    v = list_field(d, "v")
    if len(v) != 2 or not all(type(x) in (float, int) for x in v):
        raise DecodeError("a 'complex' value must hold [real, imag]")
    return complex(float(v[0]), float(v[1]))


def enc_decimal(e: Encoder, obj: Decimal, depth: int) -> Any:
    # str() keeps the exponent ("1.10"), the sign of zero, NaN/sNaN payloads and infinities.
    return {TAG: "decimal", "v": str(obj)}


def dec_decimal(_: Decoder, d: dict[str, Any]) -> Decimal:
    return Decimal(str_field(d, "v"))


# --- bytes ---------------------------------------------------------------------------------


def _enc_binary(e: Encoder, data: bytes, tag: str) -> Any:
    if len(data) <= INLINE_BYTES:
        return {TAG: tag, "b64": base64.b64encode(data).decode("ascii")}
    return {TAG: tag, "buf": e.add_buffer(memoryview(data))}


def _dec_binary(dec: Decoder, d: dict[str, Any]) -> memoryview | bytes:
    if "b64" in d:
        try:
            return base64.b64decode(str_field(d, "b64"), validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"damaged base64 in a {d.get(TAG)!r} value") from exc
    return dec.buffer(field(d, "buf"))


def enc_bytes(e: Encoder, obj: bytes, depth: int) -> Any:
    return _enc_binary(e, obj, "bytes")


def enc_bytearray(e: Encoder, obj: bytearray, depth: int) -> Any:
    # Copied: a memoryview export would stop the caller from resizing their bytearray.
    return _enc_binary(e, bytes(obj), "bytearray")


def dec_bytes(dec: Decoder, d: dict[str, Any]) -> bytes:
    data = _dec_binary(dec, d)
    return data if type(data) is bytes else bytes(data)


def dec_bytearray(dec: Decoder, d: dict[str, Any]) -> bytearray:
    return bytearray(_dec_binary(dec, d))


# --- containers ----------------------------------------------------------------------------


def enc_tuple(e: Encoder, obj: tuple[Any, ...], depth: int) -> Any:
    return {TAG: "tuple", "v": e.enc_seq(obj, depth)}


def enc_set(e: Encoder, obj: set[Any], depth: int) -> Any:
    return {TAG: "set", "v": e.enc_seq(obj, depth, "<element {}>")}


def enc_frozenset(e: Encoder, obj: frozenset[Any], depth: int) -> Any:
    return {TAG: "frozenset", "v": e.enc_seq(obj, depth, "<element {}>")}


def enc_dict(e: Encoder, obj: dict[Any, Any], depth: int) -> Any:
    # Only reached when dict handling is not inlined in Encoder.enc (never for built-ins);
    # kept so the table is complete.
    return e.enc_items(obj.items(), depth, "dict")


def enc_odict(e: Encoder, obj: OrderedDict[Any, Any], depth: int) -> Any:
    return e.enc_items(obj.items(), depth, "odict")


def enc_list(e: Encoder, obj: list[Any], depth: int) -> Any:
    return e.enc_seq(obj, depth)


def dec_tuple(_: Decoder, d: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(list_field(d, "v"))


def dec_set(_: Decoder, d: dict[str, Any]) -> set[Any]:
    return set(list_field(d, "v"))


def dec_frozenset(_: Decoder, d: dict[str, Any]) -> frozenset[Any]:
    return frozenset(list_field(d, "v"))


def _pairs(d: dict[str, Any]) -> Any:
    kv = list_field(d, "kv")
    if len(kv) % 2:
        raise DecodeError(f"a {d.get(TAG)!r} value must hold key/value pairs")
    it = iter(kv)
    return zip(it, it, strict=True)


def dec_dict(_: Decoder, d: dict[str, Any]) -> dict[Any, Any]:
    return dict(_pairs(d))


def dec_odict(_: Decoder, d: dict[str, Any]) -> OrderedDict[Any, Any]:
    return OrderedDict(_pairs(d))


def enc_range(e: Encoder, obj: range, depth: int) -> Any:
    return {TAG: "range", "v": [obj.start, obj.stop, obj.step]}


def dec_range(_: Decoder, d: dict[str, Any]) -> range:
    v = list_field(d, "v")
    if len(v) != 3 or not all(type(x) is int for x in v):  # range bounds are always ints
        raise DecodeError("a 'range' value must hold [start, stop, step] ints")
    return range(v[0], v[1], v[2])


# --- other scalars -------------------------------------------------------------------------


def enc_uuid(e: Encoder, obj: uuid.UUID, depth: int) -> Any:
    return {TAG: "uuid", "v": str(obj)}


def dec_uuid(_: Decoder, d: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(str_field(d, "v"))


_PATH_KINDS: dict[str, type[pathlib.PurePath]] = {
    "PurePosixPath": pathlib.PurePosixPath,
    "PureWindowsPath": pathlib.PureWindowsPath,
    "PosixPath": pathlib.PosixPath,
    "WindowsPath": pathlib.WindowsPath,
}


def enc_path(e: Encoder, obj: pathlib.PurePath, depth: int) -> Any:
    return {TAG: "path", "kind": type(obj).__name__, "v": str(obj)}


def dec_path(_: Decoder, d: dict[str, Any]) -> pathlib.PurePath:
    kind = str_field(d, "kind")
    cls = _PATH_KINDS.get(kind)
    if cls is None:
        raise DecodeError(f"unknown path kind {kind!r}")
    try:
        return cls(str_field(d, "v"))
    except NotImplementedError as exc:  # e.g. a WindowsPath loaded on Linux
        raise DecodeError(
            f"a {kind} cannot be created on this system: store a Pure{kind} instead"
        ) from exc


# --- registry-driven tags ------------------------------------------------------------------


def dec_user(dec: Decoder, d: dict[str, Any]) -> Any:
    name = str_field(d, "n")
    entry = dec.tables.user_types.get(name)
    if entry is None:
        raise UnknownTypeTagError(
            f"the state holds a value of the registered type {name!r}, which is not registered "
            f"here: call register_type(YourClass, {name!r}, encode=..., decode=...) before "
            f"loading",
            tag=name,
        )
    try:
        return entry.decode(field(d, "v"))
    except Exception as exc:
        raise DecodeError(
            f"the decode function registered as {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def dec_hook(dec: Decoder, d: dict[str, Any]) -> Any:
    name = str_field(d, "n")
    fn = dec.tables.deserializers.get(name)
    if fn is None:
        raise UnknownTypeTagError(
            f"the state holds a value written by serializer {name!r}: call "
            f"register_deserializer({name!r}, fn) before loading",
            tag=name,
        )
    try:
        return fn(field(d, "v"))
    except Exception as exc:
        raise DecodeError(f"deserializer {name!r} failed: {type(exc).__name__}: {exc}") from exc


def dec_ref(dec: Decoder, d: dict[str, Any]) -> Any:
    number = field(d, "id")
    if type(number) is not int or number not in dec.memo:
        raise DecodeError(f"reference to shared object {short_repr(number)} that was not stored")
    return dec.memo[number]


ENCODERS: dict[type[Any], EncodeFn] = {
    int: enc_int,
    complex: enc_complex,
    Decimal: enc_decimal,
    bytes: enc_bytes,
    bytearray: enc_bytearray,
    list: enc_list,
    dict: enc_dict,
    tuple: enc_tuple,
    set: enc_set,
    frozenset: enc_frozenset,
    OrderedDict: enc_odict,
    range: enc_range,
    uuid.UUID: enc_uuid,
    pathlib.PurePosixPath: enc_path,
    pathlib.PureWindowsPath: enc_path,
    pathlib.PosixPath: enc_path,
    pathlib.WindowsPath: enc_path,
}

DECODERS: dict[str, DecodeFn] = {
    "int": dec_int,
    "complex": dec_complex,
    "decimal": dec_decimal,
    "bytes": dec_bytes,
    "bytearray": dec_bytearray,
    "tuple": dec_tuple,
    "set": dec_set,
    "frozenset": dec_frozenset,
    "dict": dec_dict,
    "odict": dec_odict,
    "range": dec_range,
    "uuid": dec_uuid,
    "path": dec_path,
    "user": dec_user,
    "hook": dec_hook,
    "ref": dec_ref,
}

for _module in (_stdtime,):
    _clash = set(ENCODERS) & set(_module.ENCODERS) or set(DECODERS) & set(_module.DECODERS)
    if _clash:  # a programming error in statevault itself: fail at import, loudly
        raise RuntimeError(f"{_module.__name__} handles {_clash} again")
    ENCODERS.update(_module.ENCODERS)
    DECODERS.update(_module.DECODERS)
