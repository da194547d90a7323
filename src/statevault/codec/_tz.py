"""pytz and dateutil time zones (loaded lazily): stored by name or offset, back as the same class.

A trader's code meets tzinfo objects from three libraries: ``zoneinfo``/``datetime.timezone``
(handled with the standard library, codec/_builtin.py), pytz (MetaTrader5 examples, every
named zone of pandas 2.x) and dateutil (``tz.gettz``, ``tz.tzutc``, ``tzoffset``; pandas'
``"dateutil/..."`` zones). Each comes back as the class it went in as: a pytz zone as the
pytz zone of that name, a pytz-*localized* tzinfo (the one ``localize()`` attaches, with its
own offset and abbreviation) as the same localized instance, a dateutil zone as dateutil's.
Neither library is required: this module imports whichever is installed, and a state that
holds a zone of a library missing at load time raises a DecodeError naming the package to
install; it is never swapped for another library's zone silently.

These handlers also cover pandas: the pandas handlers encode ``.tz`` through the codec.

Not stored (refused with the conversion that works): ``dateutil.tz.tzlocal()`` (the local
zone of the writing machine is a different zone on the loading one), ``tzstr``/``tzrange``
rules, and tzinfo objects of other libraries. Zone names read from a state are validated
(``zone_key``) before either library sees them.

pytz builds one class per zone at run time, so its zones are matched by base class
(``SUBCLASS_ENCODERS``), not by exact type. A localized pytz tzinfo is found again through
``_tzinfos``, the per-zone table pytz's own ``localize()``/``normalize()`` use; pytz has kept
that layout since 2004 and no public API returns a localized instance without a datetime.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from typing import Any

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, int_field, str_field
from statevault.codec._stdtime import zone_key
from statevault.errors import DecodeError

__all__ = ["DECODERS", "ENCODERS", "SUBCLASS_ENCODERS"]

_US = dt.timedelta(microseconds=1)


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)  # fixed names only: never a name from stored data
    except ImportError:
        return None


pytz: Any = _optional("pytz")
dateutil_tz: Any = _optional("dateutil.tz")

_HINTS = {
    "pytz": "pytz (pip install 'statevault[pytz]')",
    "dateutil": "python-dateutil (pip install 'statevault[dateutil]')",
}


def _need(lib: Any, name: str) -> Any:
    if lib is None:
        raise DecodeError(
            f"the state holds a {name} time zone and {name} is not installed here: install "
            f"{_HINTS[name]} to load it (statevault never swaps it for another zone class)"
        )
    return lib


def _us(delta: dt.timedelta | None) -> int:
    if delta is None:
        raise ValueError("no offset")
    return delta // _US


# --- pytz ----------------------------------------------------------------------------------


def _pytz_zone(zone: Any) -> Any:
    lib = _need(pytz, "pytz")
    if zone == "UTC":
        return lib.utc
    key = zone_key(zone, "pytz", known=lib.all_timezones_set.__contains__)
    return lib.timezone(key)


def enc_pytz(e: Encoder, tz: Any, depth: int) -> Any:
    if isinstance(tz, pytz._FixedOffset):  # pytz.FixedOffset(minutes): cached per offset
        return {TAG: "tz.pytz.fixed", "min": _us(tz.utcoffset(None)) // 60_000_000}
    zone = tz.zone
    try:
        base = pytz.timezone(zone)
    except (KeyError, ValueError, OSError) as exc:  # UnknownTimeZoneError is a KeyError
        raise e.unsupported(tz, f"pytz does not know its zone {zone!r}") from exc
    out: dict[str, Any] = {TAG: "tz.pytz", "zone": zone}
    if tz is base:
        return out
    tzinfos = getattr(base, "_tzinfos", None)
    key = (getattr(tz, "_utcoffset", None), getattr(tz, "_dst", None), getattr(tz, "_tzname", ""))
    if tzinfos is None or tzinfos.get(key) is not tz:
        raise e.unsupported(
            tz,
            f"it is not a zone pytz.timezone({zone!r}) gives, nor one its localize() attaches: "
            f"use pytz.timezone({zone!r}) or zoneinfo.ZoneInfo({zone!r})",
        )
    # A localized tzinfo: the offset, DST part and abbreviation localize() picked.
    out["loc"] = [_us(key[0]), _us(key[1]), key[2]]
    return out


def dec_pytz(_: Decoder, d: dict[str, Any]) -> Any:
    base = _pytz_zone(str_field(d, "zone"))
    if "loc" not in d:
        return base
    loc = field(d, "loc")
    if (
        type(loc) is not list
        or len(loc) != 3
        or type(loc[0]) is not int
        or type(loc[1]) is not int
        or type(loc[2]) is not str
    ):
        raise DecodeError("a localized pytz zone must hold [offset_us, dst_us, abbreviation]")
    key = (dt.timedelta(microseconds=loc[0]), dt.timedelta(microseconds=loc[1]), loc[2])
    tz = getattr(base, "_tzinfos", {}).get(key)
    if tz is None:
        raise DecodeError(
            f"pytz's data for {base.zone!r} here has no offset {key[0]} ({loc[2]}) that the "
            f"state was written with: install the pytz version the writer had (or newer)"
        )
    return tz


def dec_pytz_fixed(_: Decoder, d: dict[str, Any]) -> Any:
    minutes = int_field(d, "min")
    if not -24 * 60 < minutes < 24 * 60:
        raise DecodeError("a pytz fixed offset must be within a day")
    return _need(pytz, "pytz").FixedOffset(minutes)


# --- dateutil ------------------------------------------------------------------------------


def enc_tzutc(e: Encoder, tz: Any, depth: int) -> Any:
    return {TAG: "tz.dateutil.utc"}


def enc_tzoffset(e: Encoder, tz: Any, depth: int) -> Any:
    out: dict[str, Any] = {TAG: "tz.dateutil.offset", "us": _us(tz.utcoffset(None))}
    name = tz.tzname(None)
    if name is not None:
        out["name"] = name
    return out


def _tzfile_key(tz: Any) -> str | None:
    # dateutil keeps the path it opened (or, for its bundled zones, the zone name) in
    # _filename; its repr shows the same. The key is that path relative to a TZPATH folder.
    name = getattr(tz, "_filename", None)
    if type(name) is not str:
        return None
    if os.path.isabs(name):
        for root in dateutil_tz.TZPATHS:
            prefix = root.rstrip("/") + "/"
            if name.startswith(prefix):
                return name[len(prefix) :]
        return None
    return name


def enc_tzfile(e: Encoder, tz: Any, depth: int) -> Any:
    key = _tzfile_key(tz)
    if key is None or dateutil_tz.gettz(key) != tz:
        raise e.unsupported(
            tz,
            "a dateutil tzfile not opened by name cannot be found again on load: use "
            "dateutil.tz.gettz('Area/City') or zoneinfo.ZoneInfo('Area/City')",
        )
    return {TAG: "tz.dateutil.file", "key": key}


def enc_tzlocal(e: Encoder, tz: Any, depth: int) -> Any:
    raise e.unsupported(
        tz,
        "tzlocal() is whatever zone the machine is set to, so it would load as a different "
        "zone on another machine: store the zone by name, e.g. dateutil.tz.gettz('Europe/"
        "London') or zoneinfo.ZoneInfo('Europe/London')",
    )


def enc_tzrule(e: Encoder, tz: Any, depth: int) -> Any:
    raise e.unsupported(
        tz,
        "dateutil rule zones (tzstr, tzrange) are not stored: use a named zone, "
        "dateutil.tz.gettz('Area/City') or zoneinfo.ZoneInfo('Area/City')",
    )


def dec_tzutc(_: Decoder, d: dict[str, Any]) -> Any:
    return _need(dateutil_tz, "dateutil").tzutc()


def dec_tzoffset(_: Decoder, d: dict[str, Any]) -> Any:
    lib = _need(dateutil_tz, "dateutil")
    us = int_field(d, "us")
    if not -86_400_000_000 < us < 86_400_000_000:
        raise DecodeError("a dateutil tzoffset must be within a day")
    name = str_field(d, "name") if "name" in d else None
    return lib.tzoffset(name, dt.timedelta(microseconds=us))


def dec_tzfile(_: Decoder, d: dict[str, Any]) -> Any:
    lib = _need(dateutil_tz, "dateutil")
    key = zone_key(str_field(d, "key"), "dateutil", known=lambda k: True)
    # The pattern keeps gettz inside its zone folders; a name it resolves to anything but a
    # zone file (a TZ rule string, the local zone) is refused rather than returned.
    tz = lib.gettz(key)
    if not isinstance(tz, lib.tzfile):
        raise DecodeError(
            f"dateutil has no zone file {key!r} on this machine: install or update the "
            f"system tz database (tzdata) or python-dateutil"
        )
    return tz


# --- tables --------------------------------------------------------------------------------

ENCODERS: dict[type[Any], EncodeFn] = {}
SUBCLASS_ENCODERS: dict[type[Any], EncodeFn] = {}
if pytz is not None:
    ENCODERS[type(pytz.utc)] = enc_pytz
    ENCODERS[pytz._FixedOffset] = enc_pytz
    SUBCLASS_ENCODERS[pytz.tzinfo.BaseTzInfo] = enc_pytz  # DstTzInfo, StaticTzInfo per zone
if dateutil_tz is not None:
    ENCODERS[dateutil_tz.tzutc] = enc_tzutc
    ENCODERS[dateutil_tz.tzoffset] = enc_tzoffset
    ENCODERS[dateutil_tz.tzlocal] = enc_tzlocal
    ENCODERS[dateutil_tz.tzstr] = enc_tzrule
    ENCODERS[dateutil_tz.tzrange] = enc_tzrule
    ENCODERS[dateutil_tz.tzfile] = enc_tzfile
    SUBCLASS_ENCODERS[dateutil_tz.tzfile] = enc_tzfile  # dateutil.zoneinfo's bundled zones

DECODERS: dict[str, DecodeFn] = {
    "tz.pytz": dec_pytz,
    "tz.pytz.fixed": dec_pytz_fixed,
    "tz.dateutil.utc": dec_tzutc,
    "tz.dateutil.offset": dec_tzoffset,
    "tz.dateutil.file": dec_tzfile,
}
