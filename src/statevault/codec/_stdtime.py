"""Built-in handlers for the standard library's dates, times and time zones.

datetimes keep wall time, microseconds, fold and the tzinfo object itself (zoneinfo keys and
``datetime.timezone`` offsets and names); zone keys are validated before any zone is loaded.
Part of the eager standard-library family (``_builtin`` merges these tables).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import zoneinfo
from collections.abc import Callable
from importlib import resources
from typing import Any

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder, short_repr
from statevault.codec._fields import decode_tzinfo, int_field, list_field, str_field
from statevault.errors import DecodeError

__all__ = ["DECODERS", "ENCODERS", "zone_key"]


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


ENCODERS: dict[type[Any], EncodeFn] = {
    dt.datetime: enc_datetime,
    dt.date: enc_date,
    dt.time: enc_time,
    dt.timedelta: enc_timedelta,
    zoneinfo.ZoneInfo: enc_zoneinfo,
    dt.timezone: enc_timezone,
}

DECODERS: dict[str, DecodeFn] = {
    "datetime": dec_datetime,
    "date": dec_date,
    "time": dec_time,
    "timedelta": dec_timedelta,
    "zoneinfo": dec_zoneinfo,
    "timezone": dec_timezone,
}
