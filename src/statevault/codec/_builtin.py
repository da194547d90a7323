"""Built-in handlers for the standard library types (always available, no imports of numpy/pandas).

Each encoder returns a tagged JSON object; each decoder receives that object with its fields
already decoded and rebuilds the value. Field values are validated: a damaged document raises
(and the codec reports a DecodeError with the path) instead of producing a wrong value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import os
import pathlib
import re
import uuid
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from typing import Any

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder, short_repr
from statevault.errors import DecodeError, UnknownTypeTagError

__all__ = [
    "INLINE_BYTES",
    "decode_tzinfo",
    "field",
    "int_field",
    "list_field",
    "str_field",
    "zone_key",
]

INLINE_BYTES = 512
"""bytes up to this size are stored inline (base64) in the document, larger ones as buffers."""

_INT_LIMIT = 1 << 64  # ints beyond 64 bits are stored as hex (JSON readers and digit limits)


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


# --- dates and times -------------------------------------------------------------------------


def enc_datetime(e: Encoder, obj: dt.datetime, depth: int) -> Any:
    tz = obj.tzinfo
    if tz is None:
        out: dict[str, Any] = {TAG: "datetime", "v": obj.isoformat()}
    else:
        # Wall time plus the tzinfo object itself (not just an offset), so ZoneInfo keys and
        # timezone names survive; fold disambiguates repeated wall times.
        out = {TAG: "datetime", "v": obj.replace(tzinfo=None).isoformat()}
        out["tz"] = e.child(tz, depth, ".tzinfo")
    if obj.fold:
        out["fold"] = 1
    return out


def _fold(d: dict[str, Any]) -> int:
    fold = d.get("fold", 0)
    if fold not in (0, 1) or type(fold) is not int:
        raise DecodeError("'fold' must be 0 or 1")
    return fold


def dec_datetime(_: Decoder, d: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(str_field(d, "v"))
    if value.tzinfo is not None:
        raise DecodeError("a 'datetime' value must hold a wall time without offset")
    tz = decode_tzinfo(d.get("tz"))
    fold = _fold(d)
    if tz is None and not fold:
        return value
    return value.replace(tzinfo=tz, fold=fold)


def enc_date(e: Encoder, obj: dt.date, depth: int) -> Any:
    return {TAG: "date", "v": obj.isoformat()}


def dec_date(_: Decoder, d: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str_field(d, "v"))


def enc_time(e: Encoder, obj: dt.time, depth: int) -> Any:
    out: dict[str, Any] = {TAG: "time", "v": obj.replace(tzinfo=None).isoformat()}
    if obj.tzinfo is not None:
        out["tz"] = e.child(obj.tzinfo, depth, ".tzinfo")
    if obj.fold:
        out["fold"] = 1
    return out


def dec_time(_: Decoder, d: dict[str, Any]) -> dt.time:
    value = dt.time.fromisoformat(str_field(d, "v"))
    if value.tzinfo is not None:
        raise DecodeError("a 'time' value must hold a time without offset")
    return value.replace(tzinfo=decode_tzinfo(d.get("tz")), fold=_fold(d))


def enc_timedelta(e: Encoder, obj: dt.timedelta, depth: int) -> Any:
    return {TAG: "timedelta", "v": [obj.days, obj.seconds, obj.microseconds]}


def dec_timedelta(_: Decoder, d: dict[str, Any]) -> dt.timedelta:
    v = list_field(d, "v")
    if len(v) != 3 or not all(type(x) is int for x in v):
        raise DecodeError("a 'timedelta' value must hold [days, seconds, microseconds]")
    return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])


def enc_zoneinfo(e: Encoder, obj: zoneinfo.ZoneInfo, depth: int) -> Any:
    if obj.key is None:
        raise e.unsupported(
            obj, "a ZoneInfo loaded from a file has no key to store: use ZoneInfo('Area/City')"
        )
    return {TAG: "zoneinfo", "key": obj.key}


_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]{1,64}(?:/[A-Za-z0-9_+-]{1,64}){0,3}")


@functools.cache
def _tzdata_zones() -> frozenset[str]:
    # The zone list the tzdata package ships (what zoneinfo falls back to without TZPATH files).
    try:
        text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ImportError, OSError):
        return frozenset()
    return frozenset(text.split())


@functools.lru_cache(maxsize=1024)
def _zone_known(key: str) -> bool:
    # zoneinfo's own lookup, without opening anything: a file under a TZPATH folder, else a
    # name on tzdata's list. (available_timezones() does the same for every zone: ~1 s cold.)
    if any(os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH):
        return True
    return key in _tzdata_zones()


def zone_key(
    key: Any, library: str = "zoneinfo", known: Callable[[str], bool] | None = None
) -> str:
    """A stored IANA zone name, checked before any zone library sees it.

    Only names of the tz database that this machine knows pass: a strict pattern (letters,
    digits, ``_+-`` in at most four ``/``-separated parts, so no ``..``, no leading ``/``, no
    dots at all) and the rule ``zoneinfo`` itself uses: a file of that name under a
    ``zoneinfo.TZPATH`` folder, else a name on the tzdata package's list. Zone libraries turn a
    name into a file path or an import of ``tzdata.zoneinfo.<Area>``; a name from stored data
    must never choose what is opened or imported. ``known`` replaces the membership rule for
    a library with its own zone list (pytz).
    """
    if type(key) is not str or not _ZONE_KEY.fullmatch(key):
        raise DecodeError(f"{short_repr(key)} is not a valid time zone name: the state is damaged")
    if not (_zone_known if known is None else known)(key):
        raise DecodeError(
            f"time zone {key!r} ({library}) is not known on this machine: install or update "
            f"the tzdata package (pip install tzdata)"
        )
    return key


def dec_zoneinfo(_: Decoder, d: dict[str, Any]) -> zoneinfo.ZoneInfo:
    key = zone_key(str_field(d, "key"))
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise DecodeError(
            f"time zone {key!r} cannot be read on this machine: install the tzdata package"
        ) from exc


def enc_timezone(e: Encoder, obj: dt.timezone, depth: int) -> Any:
    if obj is dt.UTC:
        return {TAG: "timezone", "us": 0}
    offset = obj.utcoffset(None)
    out: dict[str, Any] = {TAG: "timezone", "us": offset // dt.timedelta(microseconds=1)}
    # repr() shows a name only if one was given: timezone(timedelta(0), "UTC") is not the
    # timezone.utc singleton (pandas tells them apart), so its name is kept.
    if repr(obj) != repr(dt.timezone(offset)):
        out["name"] = obj.tzname(None)
    return out


_timezones: dict[tuple[int, str | None], dt.timezone] = {}


def dec_timezone(_: Decoder, d: dict[str, Any]) -> dt.timezone:
    us = int_field(d, "us")
    name = str_field(d, "name") if "name" in d else None
    key = (us, name)
    tz = _timezones.get(key)
    if tz is None:
        offset = dt.timedelta(microseconds=us)
        # offset 0 without a name gives the timezone.utc singleton
        tz = dt.timezone(offset) if name is None else dt.timezone(offset, name)
        if len(_timezones) < 1024:  # immutable objects; the bound keeps hostile data in check
            _timezones[key] = tz
    return tz


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
    dt.datetime: enc_datetime,
    dt.date: enc_date,
    dt.time: enc_time,
    dt.timedelta: enc_timedelta,
    zoneinfo.ZoneInfo: enc_zoneinfo,
    dt.timezone: enc_timezone,
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
    "datetime": dec_datetime,
    "date": dec_date,
    "time": dec_time,
    "timedelta": dec_timedelta,
    "zoneinfo": dec_zoneinfo,
    "timezone": dec_timezone,
    "uuid": dec_uuid,
    "path": dec_path,
    "user": dec_user,
    "hook": dec_hook,
    "ref": dec_ref,
}
