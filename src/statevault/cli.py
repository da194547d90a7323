"""The ``statevault`` command: inspect, check and demonstrate stored states.

Commands: ``info`` (what the header says, without decoding), ``show`` (the state for a person,
or ``--json`` for machines; ``--version`` for a retained version), ``verify`` (decode
everything, check every checksum), ``history`` (the retained versions), ``restore`` (make a
retained version current, as a new save) and ``demo`` (a simulated trader that dies half-way
and resumes exactly). Keys and storage options come from ``--key`` / ``--key-file`` /
``--storage-options`` or from ``STATEVAULT_KEY`` / ``STATEVAULT_STORAGE_OPTIONS``; managers
use the library's ``keep_versions`` unless ``--keep-versions`` says otherwise. Every failure
prints one line on stderr and exits with a status of its own (the table is ``EXIT_CODES``,
documented in docs/cli.md); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ._version import __version__
from .demo import DEFAULT_URL, DemoConfig, run_demo
from .errors import (
    CorruptStateError,
    DecodeError,
    InvalidKeyError,
    MissingKeyError,
    NotAStateFileError,
    StateError,
    StateNotFoundError,
    StorageError,
    UnknownTransformError,
    UnsupportedFormatError,
    WrongKeyError,
)
from .frame import MAGIC, FrameReader
from .history import SIDECAR
from .manager import StateManager
from .storage import Store
from .trading import TradingStateManager
from .transforms import TransformRegistry

__all__ = ["EXIT_CODES", "exit_code", "main", "to_json"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NOT_A_STATE = 4
EXIT_MISSING_KEY = 5
EXIT_WRONG_KEY = 6
EXIT_CORRUPT = 7
EXIT_UNSUPPORTED = 8
EXIT_DECODE = 9
EXIT_STORAGE = 10
EXIT_DEMO_MISMATCH = 11
EXIT_INTERRUPTED = 130

#: Exit status -> meaning; the order of ``_LADDER`` decides which class wins.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (verify: the state is sound)",
    EXIT_ERROR: "any other error (an unexpected one says so and suggests --debug)",
    EXIT_USAGE: (
        "bad command line: unknown flag, bad --storage-options JSON, invalid key, "
        "--keep-versions other than the writer's"
    ),
    EXIT_NOT_FOUND: "no state is stored at the URL, or the version asked for is not retained",
    EXIT_NOT_A_STATE: "the object at the URL is not a statevault state (nor plain JSON)",
    EXIT_MISSING_KEY: "the state is encrypted and no key was given",
    EXIT_WRONG_KEY: "none of the given keys decrypts the state",
    EXIT_CORRUPT: "the state is damaged: checksum mismatch, truncated, malformed",
    EXIT_UNSUPPORTED: "written by a newer statevault, or with a transform not installed here",
    EXIT_DECODE: "intact, but holds a type this process cannot rebuild (register it)",
    EXIT_STORAGE: "the storage failed: unreachable, permission denied, ...",
    EXIT_DEMO_MISMATCH: "demo: the resumed state differs from an uninterrupted run",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

_LADDER: tuple[tuple[type[BaseException], int], ...] = (
    (StateNotFoundError, EXIT_NOT_FOUND),
    (NotAStateFileError, EXIT_NOT_A_STATE),
    (MissingKeyError, EXIT_MISSING_KEY),
    (WrongKeyError, EXIT_WRONG_KEY),
    (InvalidKeyError, EXIT_USAGE),
    (UnsupportedFormatError, EXIT_UNSUPPORTED),
    (UnknownTransformError, EXIT_UNSUPPORTED),
    (CorruptStateError, EXIT_CORRUPT),
    (DecodeError, EXIT_DECODE),
    (StorageError, EXIT_STORAGE),
)

_KEY_HINT = " (statevault: give the key with --key, --key-file or STATEVAULT_KEY)"


class UsageError(Exception):
    """A bad command line the parser could not catch (bad JSON in an option, ...)."""


def exit_code(error: BaseException) -> int:
    """The exit status for ``error`` (see ``EXIT_CODES``)."""
    for cls, code in _LADDER:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


# -- options ------------------------------------------------------------------------------


def _storage_options(args: argparse.Namespace) -> dict[str, Any]:
    raw = args.storage_options
    source = "--storage-options"
    if raw is None:
        raw = os.environ.get("STATEVAULT_STORAGE_OPTIONS", "")
        source = "STATEVAULT_STORAGE_OPTIONS"
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as e:
        raise UsageError(f"{source} is not valid JSON: give a JSON object ({e})") from e
    if not isinstance(parsed, dict):
        raise UsageError(f"{source} must be a JSON object, like '{{\"anon\": true}}'")
    return parsed


def _manager_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for a manager; with no key flags the manager reads STATEVAULT_KEY."""
    options: dict[str, Any] = {"storage_options": _storage_options(args)}
    if args.key:
        options["encryption_key"] = list(args.key)
    if args.key_file:
        options["key_file"] = args.key_file
    keep = getattr(args, "keep_versions", None)
    if keep is not None:
        options["keep_versions"] = keep
    return options


def _manager(args: argparse.Namespace, cls: type[StateManager] = TradingStateManager) -> Any:
    return cls(args.url, **_manager_options(args))


# -- reading ------------------------------------------------------------------------------


def _is_frame(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def _looks_trading(obj: Mapping[str, Any]) -> bool:
    return "active_positions" in obj or "pair_states" in obj


def _load_everything(mgr: TradingStateManager) -> tuple[dict[str, Any], str]:
    """Read and decode the whole state; return it and a description of its format.

    A plain JSON file (the specification's hand-written format, or any other JSON object)
    loads as the managers would load it: with datetimes and Series restored when it looks like
    a trading state, as it is otherwise. Nothing is written.
    """
    data, _info = mgr.store.read()
    if not _is_frame(bytes(memoryview(data)[: len(MAGIC)])):
        legacy = _parse_json(data)
        if legacy is not None:
            if _looks_trading(legacy):
                return mgr._from_legacy(legacy), "plain JSON (trading state)"
            return legacy, "plain JSON"
    reader = mgr._reader(data)
    return mgr._join(reader), f"statevault frame v{reader.header.version}"


def _parse_json(data: Any) -> dict[str, Any] | None:
    if not bytes(data[:64]).lstrip().startswith(b"{"):
        return None
    try:
        obj = json.loads(bytes(data))
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _load_section(mgr: TradingStateManager, name: str) -> Any:
    """One top-level key, or one pair under ``pair_states``, reading as little as possible.

    For a statevault frame this reads the header, the root section and only the sections the
    value refers to (one pair: its own section), through the manager's reader helpers. Plain
    JSON has no sections, so it is read whole.
    """
    opened = mgr._open_reader()
    if opened is None:
        raise StateNotFoundError(f"No state is stored at {mgr.url}: check the URL.")
    reader, _info = opened
    if reader is None:
        whole, _ = _load_everything(mgr)
        return _pick(whole, name, lambda v: v)
    return _section_of(mgr, reader, name)


def _section_of(mgr: StateManager, reader: FrameReader, name: str) -> Any:
    """``name`` from a frame: the root section, then only the sections the value refers to."""
    root = mgr._load_root(reader)
    state = root.get("state") if isinstance(root, dict) else None
    if not isinstance(state, dict):
        raise CorruptStateError(f"the root section of {mgr.url} holds no state dict")
    return _pick(state, name, lambda v: mgr._resolve(v, reader))


def _pick(state: Mapping[str, Any], name: str, resolve: Callable[[Any], Any]) -> Any:
    if name in state:
        return resolve(state[name])
    pairs = state.get("pair_states")
    if isinstance(pairs, dict) and name in pairs:
        return resolve(pairs[name])
    keys = ", ".join(repr(k) for k in state)
    pair_names = ", ".join(repr(k) for k in pairs) if isinstance(pairs, dict) else ""
    raise UsageError(
        f"no section {name!r}: top-level keys are {keys or 'none'}"
        + (f"; pairs are {pair_names}" if pair_names else "")
    )


# -- retained versions --------------------------------------------------------------------


def _check_ring(mgr: StateManager) -> list[dict[str, Any]]:
    """``list_versions()``, after checking the versions were kept with this ``keep_versions``.

    A version lives in slot ``generation % (keep_versions + 1)``, so the command line must use
    the writer's setting: with another one it would miss versions, and a restore would write
    its copy over a slot the writer still counts on. Two signs of a mismatch: a version in the
    wrong slot, or a recent version in the slot just past the ring (one more header read). A
    slot past the ring that holds an older generation than every listed version was left by an
    earlier, larger setting and is ignored.
    """
    keep = mgr._history.keep
    versions = mgr.list_versions()
    ring = keep + 1
    sign = next(
        (
            f"generation {v['generation']} is in slot {v['slot']}"
            for v in versions
            if v["generation"] % ring != v["slot"]
        ),
        None,
    )
    if sign is None and keep:
        try:
            beyond: int | None = mgr._header_of(mgr.store.sibling(f"{SIDECAR}/{ring}")).generation
        except StateError:
            beyond = None
        oldest = min((v["generation"] for v in versions), default=0)
        if beyond is not None and beyond > oldest:
            sign = f"slot {ring} holds generation {beyond}"
    if sign is not None:
        raise UsageError(
            f"the versions of {mgr.url} were kept with a keep_versions other than {keep} "
            f"({sign}): give the value the application uses with --keep-versions N"
        )
    return versions


def _current_generation(mgr: StateManager) -> int | None:
    """The generation stored at the URL now; None if nothing is, or it is not a frame."""
    try:
        return mgr._read_header().generation
    except (StateNotFoundError, CorruptStateError, UnsupportedFormatError):
        return None


def _not_retained(mgr: StateManager, version: int, url: str) -> StateError:
    """The error for a version that cannot be read: no state at all, or not (any more) kept.

    Raises ``UsageError`` instead when the cause is a ``--keep-versions`` mismatch.
    """
    versions = _check_ring(mgr)
    if not versions and mgr.store.info() is None:
        return StateNotFoundError(f"No state is stored at {mgr.url}: check the URL.")
    kept = ", ".join(str(v["generation"]) for v in versions) or "none"
    return StateNotFoundError(
        f"version {version} of {mgr.url} is not retained (retained: {kept}): run "
        f"`statevault history {url}` to see the versions kept"
    )


def _version_slot(mgr: StateManager, version: int, url: str) -> Store:
    """Where retained ``version`` is; raises ``StateNotFoundError`` (exit 3) if nowhere."""
    slot = mgr._history.find(version, mgr._header_of)
    if slot is None:
        raise _not_retained(mgr, version, url)
    return slot


# -- rendering: JSON ----------------------------------------------------------------------

_HEAD = 5


def _pandas() -> Any:
    return sys.modules.get("pandas")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, datetime | date | time):
        return key.isoformat()
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return repr(key)


def _label(value: Any) -> Any:
    """An index label or scalar as JSON: ISO strings for time stamps."""
    return to_json(value)


def to_json(obj: Any) -> Any:
    """A JSON-ready rendering of a loaded state, for machines reading ``show --json``.

    Datetimes become ISO strings, ``Decimal`` a string, sets and tuples lists, non-finite
    floats the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``. pandas and numpy objects
    become previews: ``{"type", "dtype", "shape", "start", "end", "head", ...}``; other
    objects ``{"type", "fields"}`` (dataclasses) or ``{"type", "repr"}``.
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    pd = _pandas()
    np = _numpy()
    if pd is not None and obj is pd.NaT:
        return None
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return {"type": type(obj).__name__, "seconds": obj.total_seconds()}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj)
        return {"type": type(obj).__name__, "length": len(raw), "head": raw[:16].hex()}
    if isinstance(obj, dict):
        return {_json_key(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, set | frozenset):
        items = list(obj)
        try:
            items.sort()
        except TypeError:
            items.sort(key=repr)
        return [to_json(v) for v in items]
    if pd is not None:
        if isinstance(obj, pd.Series):
            return _series_json(obj)
        if isinstance(obj, pd.DataFrame):
            return _frame_json(obj)
        if isinstance(obj, pd.Index):
            out = {"type": type(obj).__name__, "dtype": str(obj.dtype), "shape": [len(obj)]}
            if len(obj):
                out.update(start=_label(obj[0]), end=_label(obj[-1]))
            out["head"] = [_label(v) for v in obj[:_HEAD]]
            return out
    if np is not None:
        if isinstance(obj, np.ndarray):
            flat = obj.reshape(-1)[:_HEAD]
            return {
                "type": "ndarray",
                "dtype": str(obj.dtype),
                "shape": list(obj.shape),
                "head": [to_json(v) for v in flat.tolist()],
            }
        if isinstance(obj, np.generic):
            return to_json(obj.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "type": type(obj).__qualname__,
            "fields": {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    return {"type": type(obj).__qualname__, "repr": _short(repr(obj), 200)}


def _series_json(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Series",
        "name": to_json(s.name),
        "dtype": str(s.dtype),
        "shape": [len(s)],
        "index": type(s.index).__name__,
    }
    if len(s):
        out.update(start=_label(s.index[0]), end=_label(s.index[-1]))
        out["head"] = [[_label(i), to_json(v)] for i, v in s.iloc[:_HEAD].items()]
        out["last"] = to_json(s.iloc[-1])
    else:
        out["head"] = []
    return out


def _frame_json(df: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "DataFrame",
        "shape": list(df.shape),
        "columns": [_json_key(c) for c in df.columns],
        "dtypes": {_json_key(c): str(t) for c, t in df.dtypes.items()},
        "index": type(df.index).__name__,
    }
    if len(df):
        out.update(start=_label(df.index[0]), end=_label(df.index[-1]))
    out["head"] = [
        {"index": _label(i), **{_json_key(c): to_json(v) for c, v in row.items()}}
        for i, row in df.iloc[:_HEAD].iterrows()
    ]
    return out


# -- rendering: for a person --------------------------------------------------------------

_MAX_ITEMS = 50
_INLINE = 90


def _short(text: str, limit: int = _INLINE) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar_text(obj: Any) -> str | None:
    """One-line text for a scalar, or None for a container / pandas object."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return _short(repr(obj))
    if isinstance(obj, datetime | date | time):
        return f"{obj.isoformat(sep=' ') if isinstance(obj, datetime) else obj.isoformat()}" + (
            f"  ({type(obj).__name__})"
        )
    if isinstance(obj, timedelta | Decimal):
        return f"{obj}  ({type(obj).__name__})"
    np = _numpy()
    if np is not None and isinstance(obj, np.generic):
        return f"{obj.item()!r}  ({obj.dtype})"
    return None


def _pandas_text(obj: Any) -> str | None:
    pd = _pandas()
    np = _numpy()
    if pd is not None:
        if obj is pd.NaT:
            return "NaT"
        if isinstance(obj, pd.Series):
            name = f" {obj.name!r}" if obj.name is not None else ""
            text = f"Series{name} {obj.dtype}, {len(obj):,} rows{_range(obj.index)}"
            if len(obj):
                text += f", last {_short(str(obj.iloc[-1]), 30)}"
            return text
        if isinstance(obj, pd.DataFrame):
            cols = _short(", ".join(str(c) for c in obj.columns), 60)
            return (
                f"DataFrame {obj.shape[0]:,} rows x {obj.shape[1]} cols ({cols}){_range(obj.index)}"
            )
        if isinstance(obj, pd.Index):
            return f"{type(obj).__name__} {obj.dtype}, {len(obj):,} entries{_range(obj)}"
    if np is not None and isinstance(obj, np.ndarray):
        head = ", ".join(repr(v) for v in obj.reshape(-1)[:_HEAD].tolist())
        more = ", ..." if obj.size > _HEAD else ""
        return f"ndarray {obj.dtype} shape {tuple(obj.shape)}: [{_short(head, 60)}{more}]"
    return None


def _range(index: Any) -> str:
    if not len(index):
        return ""
    return f", {index[0]} .. {index[-1]}"


def _plural(n: int) -> str:
    return f"{n:,} item{'s' if n != 1 else ''}"


def _items(obj: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> list[Any]:
    items = list(obj)
    if isinstance(obj, set | frozenset):
        try:
            items.sort()
        except TypeError:
            items.sort(key=repr)
    return items


def _one_line(obj: Any) -> str | None:
    """The whole of ``obj`` on one line, or None if it needs lines of its own."""
    text = _scalar_text(obj) or _pandas_text(obj)
    if text is not None:
        return text
    if isinstance(obj, dict) and not obj:
        return "{}"
    if isinstance(obj, list | tuple | set | frozenset):
        items = _items(obj)
        if all(_scalar_text(v) is not None for v in items):
            inline = repr(items) if type(obj) is list else repr(obj)
            if isinstance(obj, set | frozenset) and items:
                inline = "{" + repr(items)[1:-1] + "}"
                if type(obj) is frozenset:
                    inline = f"frozenset({inline})"
            if len(inline) <= _INLINE:
                return inline
    if not isinstance(obj, dict | list | tuple | set | frozenset) and not (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        return f"{_short(repr(obj))}  ({type(obj).__qualname__})"
    return None


def _header(obj: Any) -> str:
    if isinstance(obj, dict | list | tuple | set | frozenset):
        return f"{type(obj).__name__}, {_plural(len(obj))}"
    return type(obj).__qualname__


def render(obj: Any, indent: int = 0) -> list[str]:
    """Lines that show ``obj`` to a person: nested structure, previews for bulky values.

    The children of a container are rendered at ``indent``; a caller that labels the
    container (``_entry``) puts its header line one level up.
    """
    pad = "  " * indent
    one = _one_line(obj)
    if one is not None:
        return [pad + one]
    children: list[tuple[str, Any]]
    if isinstance(obj, dict):
        children = [(_short(str(k), 60), v) for k, v in obj.items()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children = [(f"[{n}]", v) for n, v in enumerate(_items(obj))]
    else:  # a dataclass
        children = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    lines: list[str] = []
    for n, (label, value) in enumerate(children):
        if n == _MAX_ITEMS:
            lines.append(f"{pad}... {len(children) - n} more (show one with --section NAME)")
            break
        lines.extend(_entry(pad, label, value, indent))
    return lines


def _entry(pad: str, label: str, value: Any, indent: int) -> list[str]:
    """``label: value`` on one line when it fits, else ``label: <kind>`` and the value below."""
    one = _one_line(value)
    if one is not None:
        return [f"{pad}{label}: {one}"]
    return [f"{pad}{label}: {_header(value)}", *render(value, indent + 1)]


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({n:,} bytes)"
        size /= 1024
    return f"{n:,} bytes"  # pragma: no cover - the loop always returns


# -- commands -----------------------------------------------------------------------------


def _describe(mgr: TradingStateManager) -> dict[str, Any]:
    """``get_state_info()`` plus ``format``; raises the header's error for a bad object."""
    info = mgr.get_state_info()
    if not info["exists"]:
        raise StateNotFoundError(f"No state is stored at {mgr.url}: check the URL.")
    if info["readable"]:
        info["format"] = f"statevault frame, format version {info['format_version']}"
        return info
    data, _ = mgr.store.read()
    legacy = _parse_json(data)
    if legacy is None:
        mgr._reader(data)  # raises the precise error: not a state file, truncated, newer, ...
        raise CorruptStateError(f"{mgr.url}: {info.get('error', 'the header cannot be read')}")
    info.pop("error", None)
    info["format"] = "plain JSON (not converted yet: the next save writes a statevault frame)"
    info["kind"] = "trading" if _looks_trading(legacy) else "json"
    info["sections"] = len(legacy)
    return info


def cmd_info(args: argparse.Namespace) -> int:
    """``statevault info URL``: what the header and the storage say; nothing is decoded."""
    info = _describe(_manager(args))
    if args.json:
        print(json.dumps(to_json(info), indent=2))
        return EXIT_OK
    modified = info["last_modified"]
    created = info.get("created")
    transforms = ", ".join(info["transforms"]) or "none"
    rows = [
        ("url", info["url"]),
        ("format", info["format"]),
        ("kind", info.get("kind") or "-"),
        ("size", _human_size(info["size"])),
        ("generation", info["generation"] if info["generation"] is not None else "-"),
        ("transforms", transforms + ("  (encrypted)" if info.get("encrypted") else "")),
        ("sections", info["sections"]),
        ("created", created.isoformat(sep=" ", timespec="seconds") if created else "-"),
        ("last modified", modified.isoformat(sep=" ", timespec="seconds") if modified else "-"),
        (
            "storage",
            f"{info['protocol']} (atomic replace: {'yes' if info['atomic'] else 'no'}, "
            f"conditional writes: {'yes' if info['conditional_writes'] else 'no'})",
        ),
    ]
    for name, value in rows:
        print(f"{name + ':':<15}{value}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """``statevault show URL``: the state (or one section) for a person, or as JSON."""
    mgr = _manager(args)
    if args.at_version is not None:
        return _show_version(args, mgr, args.at_version)
    if args.section is not None:
        value = _load_section(mgr, args.section)
        if args.json:
            print(json.dumps(to_json(value), indent=2))
        else:
            print("\n".join(_entry("", args.section, value, 0)))
        return EXIT_OK
    state, fmt = _load_everything(mgr)
    if args.json:
        print(json.dumps(to_json(state), indent=2))
        return EXIT_OK
    print(f"# {mgr.url}  ({fmt})")
    print("\n".join(render(state)))
    return EXIT_OK


def _show_version(args: argparse.Namespace, mgr: TradingStateManager, version: int) -> int:
    """``show --version V``: like ``show``, from the retained copy of generation ``V``.

    As for the current state, nothing is migrated and nothing is written; ``--section`` reads
    the header, the root and the value's own sections of the copy with ranged reads.
    """
    slot = _version_slot(mgr, version, args.url)
    try:
        if args.section is not None:
            reader = mgr._ranged_reader(slot)[0]
        else:
            reader = mgr._reader(slot.read()[0])
    except StateNotFoundError as e:  # pruned by a save since the lookup
        raise _not_retained(mgr, version, args.url) from e
    if reader.header.generation != version:  # replaced by a save since the lookup
        raise _not_retained(mgr, version, args.url)
    if args.section is not None:
        value = _section_of(mgr, reader, args.section)
        if args.json:
            print(json.dumps(to_json(value), indent=2))
        else:
            print("\n".join(_entry("", args.section, value, 0)))
        return EXIT_OK
    state = mgr._join(reader)
    if args.json:
        print(json.dumps(to_json(state), indent=2))
        return EXIT_OK
    print(f"# {mgr.url}  (retained version {version}, statevault frame v{reader.header.version})")
    print("\n".join(render(state)))
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """``statevault history URL``: the retained versions, newest first; nothing is decoded."""
    mgr = _manager(args)
    exists = mgr.store.info() is not None  # asked first: a storage failure is exit 10, not []
    versions = _check_ring(mgr)
    if not versions and not exists:
        raise StateNotFoundError(f"No state is stored at {mgr.url}: check the URL.")
    current = _current_generation(mgr)
    keep = mgr._history.keep
    if args.json:
        out = {
            "url": mgr.url,
            "keep_versions": keep,
            "current_generation": current,
            "versions": versions,
        }
        print(json.dumps(to_json(out), indent=2))
        return EXIT_OK
    if not versions:
        print(
            f"no retained versions of {mgr.url}: it was saved with keep_versions=0, or before "
            "statevault kept versions"
        )
        return EXIT_OK
    rows = [
        (
            str(v["generation"]),
            v["created"].isoformat(sep=" ", timespec="seconds"),
            f"{v['size']:,} bytes",
            "current" if v["current"] else "",
        )
        for v in versions
    ]
    width = [max(len(title), *(len(r[i]) for r in rows)) for i, title in enumerate(_COLUMNS)]
    count = f"{len(versions)} retained version{'s' if len(versions) != 1 else ''}"
    print(f"# {mgr.url}: {count} (keep_versions={keep})")
    print(f"{_COLUMNS[0]:>{width[0]}}  {_COLUMNS[1]:<{width[1]}}  {_COLUMNS[2]}")
    for generation, created, size, marker in rows:
        line = f"{generation:>{width[0]}}  {created:<{width[1]}}  {size:>{width[2]}}  {marker}"
        print(line.rstrip())
    if current is not None and not any(v["current"] for v in versions):
        print(f"(the current state, generation {current}, has no retained copy)")
    print(f"restore one with: statevault restore {args.url} GENERATION")
    return EXIT_OK


_COLUMNS = ("generation", "created (UTC)", "size")


def cmd_restore(args: argparse.Namespace) -> int:
    """``statevault restore URL VERSION``: make a retained version current, as a new save.

    The copy is re-saved as its writer wrote it: same manager kind, schema version (so the
    application's migrations do not run again) and compression; encrypted with the first
    given key, if any. No local spool: the restore is written to the URL or fails. The
    application's manager gets ``ConflictError`` on its next save (it must load again).
    """
    probe = _manager(args)
    _check_ring(probe)  # before writing: a copy in the wrong slot would evict a kept version
    header = probe._header_of(_version_slot(probe, args.version, args.url))
    schema = header.meta.get("schema_version", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise CorruptStateError(
            f"version {args.version} of {probe.url} has schema_version {schema!r}, not an int"
        )
    cls = (
        TradingStateManager if header.meta.get("kind") == TradingStateManager.kind else StateManager
    )
    names = [str(t.get("name")) for t in header.transforms]
    compressor = next((n for n in names if _compresses(probe.transform_registry, n)), None)
    mgr = cls(
        args.url,
        spool_dir=False,
        schema_version=schema,
        compression=compressor,
        **_manager_options(args),
    )
    try:
        generation = mgr.restore(args.version)
    except StateNotFoundError as e:  # pruned by a save between the lookup and the read
        raise _not_retained(mgr, args.version, args.url) from e
    print(f"restored version {args.version} of {mgr.url} as generation {generation}")
    return EXIT_OK


def _compresses(registry: TransformRegistry, name: str) -> bool:
    props = registry.properties(name)
    return props is not None and props.compresses


def _count(obj: Any) -> int:
    if isinstance(obj, dict):
        return 1 + sum(_count(v) for v in obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return 1 + sum(_count(v) for v in obj)
    return 1


def cmd_verify(args: argparse.Namespace) -> int:
    """``statevault verify URL``: read everything, check every checksum, decode every value."""
    mgr = _manager(args)
    data, info = mgr.store.read()
    if not _is_frame(bytes(memoryview(data)[: len(MAGIC)])):
        legacy = _parse_json(data)
        if legacy is not None:
            state = mgr._from_legacy(legacy) if _looks_trading(legacy) else legacy
            print(
                f"OK {mgr.url}: plain JSON, {len(state)} top-level keys, {_count(state):,} "
                "values parse; it has no checksums (the next save writes a statevault frame "
                "that has)"
            )
            return EXIT_OK
    reader = mgr._reader(data)
    sections = len(reader.header.sections)
    for index in range(sections):
        reader.section(index)  # undoes the transforms and checks this section's checksum
    state = mgr._join(reader)
    print(
        f"OK {mgr.url}: generation {reader.header.generation}, {sections} section"
        f"{'s' if sections != 1 else ''}, {info.size:,} bytes; every checksum matches and "
        f"all {_count(state):,} values decode"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``statevault demo``: the simulated trader that is killed half-way and resumes."""
    try:
        config = DemoConfig(bars=args.bars, seed=args.seed, pairs=args.pairs)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return run_demo(
        args.url,
        config,
        storage_options=_storage_options(args),
        encryption_key=args.key,
        key_file=args.key_file,
        in_process=args.in_process,
    )


# -- parser -------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("keys and storage")
    group.add_argument(
        "--key",
        action="append",
        metavar="KEY",
        help="Fernet key (repeat for several, newest first); default: STATEVAULT_KEY",
    )
    group.add_argument("--key-file", metavar="PATH", help="file holding the key(s)")
    group.add_argument(
        "--storage-options",
        metavar="JSON",
        help="fsspec storage options as a JSON object; default: STATEVAULT_STORAGE_OPTIONS",
    )
    group.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    return common


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _keep_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-versions",
        type=_positive,
        metavar="N",
        help="the keep_versions the state is saved with (default: the library's, 3)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``statevault`` command."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="statevault",
        description="Inspect, verify and demonstrate statevault states.",
        epilog="Exit statuses: " + "; ".join(f"{c} {m}" for c, m in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"statevault {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "info", parents=[common], help="format, size, generation, transforms, sections"
    )
    p.add_argument("url", help="path or fsspec URL of the state")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("show", parents=[common], help="the state, readable (or --json)")
    p.add_argument("url", help="path or fsspec URL of the state")
    p.add_argument(
        "--section",
        metavar="NAME",
        help="one top-level key, or one pair of a trading state (reads only that pair)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON rendering")
    p.add_argument(
        "--version",
        dest="at_version",
        type=_positive,
        metavar="GENERATION",
        help="show a retained version (see `statevault history`) instead of the current state",
    )
    _keep_option(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("verify", parents=[common], help="decode everything; exit 0 if sound")
    p.add_argument("url", help="path or fsspec URL of the state")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("history", parents=[common], help="the retained versions, newest first")
    p.add_argument("url", help="path or fsspec URL of the state")
    p.add_argument("--json", action="store_true", help="print JSON")
    _keep_option(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "restore", parents=[common], help="make a retained version current (as a new save)"
    )
    p.add_argument("url", help="path or fsspec URL of the state")
    p.add_argument("version", type=_positive, metavar="VERSION", help="the generation to restore")
    _keep_option(p)
    p.set_defaults(func=cmd_restore)

    defaults = DemoConfig()
    p = sub.add_parser(
        "demo", parents=[common], help="a simulated trader killed half-way that resumes exactly"
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"where to keep the state ({DEFAULT_URL})")
    p.add_argument("--bars", type=int, default=defaults.bars, help="bars to trade")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed of the feed")
    p.add_argument("--pairs", type=int, default=defaults.pairs, help="pairs traded (1-8)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run both halves in this process (automatic for memory://)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def _error_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``statevault`` command; return its exit status (see ``EXIT_CODES``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("statevault: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (| head): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except UsageError as e:
        _report(args, e, f"statevault {args.command}: {_error_line(e)}")
        return EXIT_USAGE
    except StateError as e:
        code = exit_code(e)
        hint = _KEY_HINT if code in (EXIT_MISSING_KEY, EXIT_WRONG_KEY) else ""
        _report(args, e, f"statevault {args.command}: {_error_line(e)}{hint}")
        return code
    except Exception as e:  # noqa: BLE001 - a bug or an unexpected library error: one line
        _report(
            args,
            e,
            f"statevault {args.command}: unexpected error: {type(e).__name__}: {_error_line(e)} "
            "(run again with --debug for the traceback)",
        )
        return EXIT_ERROR


def _report(args: argparse.Namespace, error: BaseException, line: str) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(error, file=sys.stderr)
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
