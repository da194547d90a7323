"""Benchmark statevault against its baselines, side by side, in one process and one run.

``python -m bench.run [--size S|M|L ...] [--repeat N] [--dir DIR] [--only NAME ...] [--json OUT]``

For each size it prints one table: save and load time (medians of N timed runs after one
discarded warm-up), stored bytes, peak extra memory while saving and while loading (tracemalloc,
one separate traced run), and whether the loaded state equals the saved one. Every method writes
real files to a temporary directory on disk. See bench/README.md for the columns and targets.

This is a measuring tool, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import gc
import json
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import zstandard
from cryptography.fernet import Fernet

from .gen_state import SIZES, make_state, make_trading_parts, raw_array_bytes

MiB = 1024 * 1024

# A fixed Fernet key (32 bytes, url-safe base64) so runs are comparable; it protects nothing.
KEY = base64.urlsafe_b64encode(b"statevault-bench-fixed-key-32by!")

ZSTD_LEVEL = 3

# The methods, in table order. Comparators for the ratios column are looked up by these names.
JSON = "json-handwritten"
P5 = "pickle5"
P5_FSYNC = "pickle5+fsync"
P5_ZSTD = "pickle5+zstd"
P5_ZSTD_FERNET = "pickle5+zstd+fernet"
SV = "statevault"
SV_ZSTD = "statevault+zstd"
SV_ZSTD_FERNET = "statevault+zstd+fernet"
SV_TRADING = "statevault-trading full"
SV_SUMMARY = "statevault-trading summary"

METHOD_NAMES = [
    JSON,
    P5,
    P5_FSYNC,
    P5_ZSTD,
    P5_ZSTD_FERNET,
    SV,
    SV_ZSTD,
    SV_ZSTD_FERNET,
    SV_TRADING,
    SV_SUMMARY,
]


class Unavailable(Exception):
    """The library part a method needs is not there yet (import error, NotImplementedError)."""


class WrongResult(Exception):
    """A method loaded something other than what was saved."""


# --------------------------------------------------------------------------------------------
# Baseline 1: the specification's "Before" code, and the loader that goes with it.
# --------------------------------------------------------------------------------------------


def _series_to_json(s: pd.Series) -> dict[str, Any]:
    return {"index": [t.isoformat() for t in s.index], "values": s.values.tolist()}


def json_handwritten_save(state: dict[str, Any], path: Path) -> None:
    """The spec's "Before" _save_state: ISO strings, Series as index/values lists, indent=4.

    Not atomic and not fsynced, exactly as the original (the file is written in place).
    """
    positions_to_save = {}
    for pair, pos_data in state["active_positions"].items():
        pos_copy = pos_data.copy()
        if "entry_time" in pos_copy:
            pos_copy["entry_time"] = pos_copy["entry_time"].isoformat()
        positions_to_save[pair] = pos_copy

    pair_states_to_save = {}
    for pair, data in state["pair_states"].items():
        stats = data["stats"]
        pair_states_to_save[pair] = {
            "price1": _series_to_json(data["price1"]),
            "price2": _series_to_json(data["price2"]),
            "spread": _series_to_json(data["spread"]),
            # "... more manual serialization" in the spec: the stats frame the same way.
            "stats": {
                "index": [t.isoformat() for t in stats.index],
                "columns": list(stats.columns),
                "values": stats.values.tolist(),
            },
            "last_update": data["last_update"].isoformat(),
            "hedge_ratio": data["hedge_ratio"],
        }

    out = {
        "active_positions": positions_to_save,
        "pair_states": pair_states_to_save,
        "portfolio_peak_value": state["portfolio_peak_value"],
        "pair_peak_values": state["pair_peak_values"],
        "suspended_pairs": list(state["suspended_pairs"]),
        "portfolio_trading_suspended": state["portfolio_trading_suspended"],
        "cash": str(state["cash"]),
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=4)


def _series_from_json(d: dict[str, Any]) -> pd.Series:
    return pd.Series(d["values"], index=pd.to_datetime(d["index"]))


def json_handwritten_load(path: Path) -> dict[str, Any]:
    """The hand-written loader matching the "Before" save: pd.to_datetime, rebuild Series.

    What the JSON does not carry is lost: Series and index names and the index freq.
    """
    with open(path) as f:
        raw = json.load(f)

    positions = {}
    for pair, pos in raw["active_positions"].items():
        restored = dict(pos)
        restored["entry_time"] = datetime.fromisoformat(pos["entry_time"])
        restored["lots"] = tuple(pos["lots"])
        restored["entry_prices"] = tuple(pos["entry_prices"])
        positions[pair] = restored

    pair_states = {}
    for pair, data in raw["pair_states"].items():
        stats = data["stats"]
        pair_states[pair] = {
            "price1": _series_from_json(data["price1"]),
            "price2": _series_from_json(data["price2"]),
            "spread": _series_from_json(data["spread"]),
            "stats": pd.DataFrame(
                stats["values"], index=pd.to_datetime(stats["index"]), columns=stats["columns"]
            ),
            "last_update": datetime.fromisoformat(data["last_update"]),
            "hedge_ratio": data["hedge_ratio"],
        }

    return {
        "active_positions": positions,
        "pair_states": pair_states,
        "portfolio_peak_value": raw["portfolio_peak_value"],
        "pair_peak_values": raw["pair_peak_values"],
        "suspended_pairs": set(raw["suspended_pairs"]),
        "portfolio_trading_suspended": raw["portfolio_trading_suspended"],
        "cash": Decimal(raw["cash"]),
    }


# --------------------------------------------------------------------------------------------
# Baselines 2-4: pickle protocol 5, plain and durable, then with zstd and Fernet.
# (pickle is fine here: the bench reads back only the files it has just written itself.)
# --------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: Path, write: Callable[[Any], object]) -> None:
    """Atomic, durable replace: temp file beside ``path``, fsync, os.replace, fsync the dir.

    The same guarantees statevault gives for a local save, so its cost is compared fairly.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def pickle5_save(state: dict[str, Any], path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=5)


def pickle5_fsync_save(state: dict[str, Any], path: Path) -> None:
    durable_write(path, lambda f: pickle.dump(state, f, protocol=5))


def pickle5_load(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def pickle5_zstd_save(state: dict[str, Any], path: Path) -> None:
    data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pickle.dumps(state, protocol=5))
    durable_write(path, lambda f: f.write(data))


def pickle5_zstd_load(path: Path) -> Any:
    data = path.read_bytes()
    return pickle.loads(zstandard.ZstdDecompressor().decompress(data))


def pickle5_zstd_fernet_save(state: dict[str, Any], path: Path) -> None:
    data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pickle.dumps(state, protocol=5))
    token = Fernet(KEY).encrypt(data)
    durable_write(path, lambda f: f.write(token))


def pickle5_zstd_fernet_load(path: Path) -> Any:
    token = path.read_bytes()
    return pickle.loads(zstandard.ZstdDecompressor().decompress(Fernet(KEY).decrypt(token)))


# --------------------------------------------------------------------------------------------
# statevault, guarded: while the library is being written, its rows say "unavailable".
# --------------------------------------------------------------------------------------------


def _import_statevault(name: str) -> Any:
    try:
        import statevault
    except Exception as e:  # ImportError, or any error raised while the package initialises
        raise Unavailable(f"import statevault failed: {type(e).__name__}: {e}") from e
    try:
        return getattr(statevault, name)
    except AttributeError as e:
        raise Unavailable(f"statevault has no {name} yet") from e


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except NotImplementedError as e:
        raise Unavailable(f"NotImplementedError: {e}") from e


# --------------------------------------------------------------------------------------------
# Checking that what was loaded equals what was saved (a cheap spot check, not a full diff).
# --------------------------------------------------------------------------------------------


def _spot_pairs(pair_states: dict[str, Any]) -> list[str]:
    names = list(pair_states)
    return sorted({names[0], names[len(names) // 2], names[-1]}, key=names.index)


def _lossy_diffs(expected: pd.Series | pd.DataFrame, got: pd.Series | pd.DataFrame) -> list[str]:
    """What differs between two objects whose data and timestamps are equal."""
    diffs = []
    if isinstance(expected, pd.Series) and expected.name != got.name:
        diffs.append("Series name")
    if expected.index.name != got.index.name:
        diffs.append("index name")
    if getattr(expected.index, "freq", None) != getattr(got.index, "freq", None):
        diffs.append("index freq")
    if expected.index.dtype != got.index.dtype:
        diffs.append(f"index dtype {got.index.dtype}")
    return diffs


def _compare_frame(expected: Any, got: Any, where: str) -> list[str]:
    """Exact pandas comparison; if it fails, a lenient one that says what was lost."""
    if type(got) is not type(expected):
        raise WrongResult(f"{where}: expected {type(expected).__name__}, got {type(got).__name__}")
    try:
        if isinstance(expected, pd.Series):
            pdt.assert_series_equal(got, expected, check_exact=True)
        else:
            pdt.assert_frame_equal(got, expected, check_exact=True)
        return []
    except AssertionError:
        pass
    same_values = np.array_equal(np.asarray(got), np.asarray(expected))
    same_times = len(got.index) == len(expected.index) and bool((got.index == expected.index).all())
    same_dtypes = list(np.atleast_1d(got.dtypes)) == list(np.atleast_1d(expected.dtypes))
    if not (same_values and same_times and same_dtypes):
        raise WrongResult(f"{where}: values, dtypes or timestamps differ")
    return _lossy_diffs(expected, got)


def verify(expected: dict[str, Any], got: Any) -> str:
    """Spot-check ``got`` against ``expected``: "exact", "lossy: ..." or raise WrongResult."""
    if not isinstance(got, dict):
        raise WrongResult(f"loaded a {type(got).__name__}, not a dict")
    missing = [k for k in expected if k not in got]
    if missing:
        raise WrongResult(f"missing keys {missing}")
    for key, value in expected.items():
        if key == "pair_states":
            continue
        if got[key] != value or type(got[key]) is not type(value):
            raise WrongResult(f"{key!r} differs")
    lost: set[str] = set()
    exp_pairs, got_pairs = expected["pair_states"], got["pair_states"]
    if list(got_pairs) != list(exp_pairs):
        raise WrongResult("pair_states has other pairs or another order")
    for pair in _spot_pairs(exp_pairs):
        for name, value in exp_pairs[pair].items():
            where = f"pair_states[{pair!r}][{name!r}]"
            if isinstance(value, pd.Series | pd.DataFrame):
                lost.update(_compare_frame(value, got_pairs[pair][name], where))
            elif got_pairs[pair][name] != value or type(got_pairs[pair][name]) is not type(value):
                raise WrongResult(f"{where} differs")
    return "exact" if not lost else "lossy: " + ", ".join(sorted(lost))


# --------------------------------------------------------------------------------------------
# Cases: one method bound to one state and one file.
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One row: how to save and load, where, and how to check the result."""

    name: str
    path: Path
    save: Callable[[], object] | None
    load: Callable[[], Any]
    expected: dict[str, Any]
    prepare: Callable[[], None] = lambda: None
    check: Callable[[dict[str, Any], Any], str] = verify
    # Untimed, before every save: a statevault case moves to a fresh path here, so each
    # timed save is a first save (every piece new), not a delta over the previous run.
    before_save: Callable[[], None] = lambda: None
    # A second save of the same state right after the full one: a no-change delta tick.
    tick: Callable[[], object] | None = None


@dataclass
class Row:
    """Measured figures of one method at one size (times in seconds, sizes in bytes)."""

    name: str
    status: str = "ok"  # "ok", "unavailable: ...", "error: ..."
    check: str = ""
    runs: int = 0
    save_s: float | None = None
    tick_s: float | None = None
    load_s: float | None = None
    stored_bytes: int | None = None
    beside_bytes: int = 0
    warmup_s: float = 0.0
    memory_skipped: bool = False
    save_peak: int | None = None
    load_peak: int | None = None
    save_times: list[float] = field(default_factory=list)
    tick_times: list[float] = field(default_factory=list)
    load_times: list[float] = field(default_factory=list)


def build_cases(
    size: str, state: dict[str, Any], root: Path, wanted: Callable[[str], bool]
) -> list[Case]:
    """The cases of ``METHOD_NAMES`` that ``wanted`` selects, each in its own directory."""
    cases: list[Case] = []

    def place(name: str, filename: str) -> Path:
        d = root / size / name.replace("+", "_").replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        return d / filename

    def simple(
        name: str,
        filename: str,
        save: Callable[[dict[str, Any], Path], None],
        load: Callable[[Path], Any],
    ) -> None:
        if wanted(name):
            p = place(name, filename)
            cases.append(Case(name, p, lambda: save(state, p), lambda: load(p), state))

    simple(JSON, "state.json", json_handwritten_save, json_handwritten_load)
    simple(P5, "state.pkl", pickle5_save, pickle5_load)
    simple(P5_FSYNC, "state.pkl", pickle5_fsync_save, pickle5_load)
    simple(P5_ZSTD, "state.pkl.zst", pickle5_zstd_save, pickle5_zstd_load)
    simple(
        P5_ZSTD_FERNET, "state.pkl.zst.fernet", pickle5_zstd_fernet_save, pickle5_zstd_fernet_load
    )

    def fresh_paths(case: Case, make: Callable[[Path], None]) -> None:
        """Give ``case`` a new directory before every save (the previous run's is removed
        first, untimed), and ``make(path)`` its manager there: every timed save is then a
        first save, which writes the whole state (the delta store has nothing to share)."""
        base = case.path.parent
        runs = iter(range(1, 1 << 30))

        def before_save() -> None:
            shutil.rmtree(case.path.parent, ignore_errors=True)
            d = base / f"run-{next(runs)}"
            d.mkdir(parents=True)
            case.path = d / case.path.name
            make(case.path)

        case.before_save = before_save

    def statevault_case(name: str, **options: Any) -> None:
        if not wanted(name):
            return
        holder: dict[str, Any] = {}

        def make(path: Path) -> None:
            cls = _import_statevault("StateManager")
            holder["sm"] = _guard(lambda: cls(str(path), **options))

        case = Case(
            name,
            place(name, "state.sv").parent / "run-0" / "state.sv",
            lambda: _guard(lambda: holder["sm"].save(state)),
            lambda: _guard(holder["sm"].load),
            state,
            tick=lambda: _guard(lambda: holder["sm"].save(state)),
        )
        fresh_paths(case, make)
        cases.append(case)

    statevault_case(SV, compression=None)
    statevault_case(SV_ZSTD, compression="zstd", compression_level=ZSTD_LEVEL)
    statevault_case(
        SV_ZSTD_FERNET, compression="zstd", compression_level=ZSTD_LEVEL, encryption_key=KEY
    )

    if wanted(SV_TRADING) or wanted(SV_SUMMARY):
        # Its own copy of the same data, split the way save_trading_state takes it.
        positions, pair_states, portfolio = make_trading_parts(size)
        expected = {"active_positions": positions, "pair_states": pair_states, **portfolio}
        p = place("statevault-trading", "trading_state.sv")
        holder: dict[str, Any] = {}

        def open_trading(path: Path) -> None:
            cls = _import_statevault("TradingStateManager")
            holder["tsm"] = _guard(lambda: cls(str(path), compression=None))

        def save_trading() -> None:
            if not _guard(
                lambda: holder["tsm"].save_trading_state(positions, pair_states, portfolio)
            ):
                raise WrongResult("save_trading_state returned False (see the statevault log)")

        def load_trading() -> Any:
            loaded = _guard(holder["tsm"].load_trading_state)
            if not loaded:
                raise WrongResult("load_trading_state returned an empty state")
            return loaded

        # The summary reads its own state, saved once (the full row moves to fresh paths).
        summary_path = place("statevault-trading-summary", "trading_state.sv")
        summary_holder: dict[str, Any] = {}

        def prepare_summary() -> None:
            if "tsm" not in summary_holder:
                cls = _import_statevault("TradingStateManager")
                tsm = _guard(lambda: cls(str(summary_path), compression=None))
                if not tsm.save_trading_state(positions, pair_states, portfolio):
                    raise WrongResult("save_trading_state returned False")
                summary_holder["tsm"] = tsm

        def check_summary(expected: dict[str, Any], got: Any) -> str:
            if not isinstance(got, dict) or not got:
                raise WrongResult(f"summary is {got!r}, expected a non-empty dict")
            for key in ("portfolio_peak_value", "portfolio_trading_suspended"):
                if key in got and got[key] != expected[key]:
                    raise WrongResult(f"summary {key!r} differs")
            return "summary ok"

        if wanted(SV_TRADING):
            trading = Case(
                SV_TRADING, p.parent / "run-0" / p.name, save_trading, load_trading, expected
            )
            trading.tick = save_trading
            fresh_paths(trading, open_trading)
            cases.append(trading)
        if wanted(SV_SUMMARY):
            summary = lambda: _guard(summary_holder["tsm"].get_portfolio_summary)  # noqa: E731
            cases.append(
                Case(SV_SUMMARY, p, None, summary, expected, prepare_summary, check_summary)
            )
    return cases


# --------------------------------------------------------------------------------------------
# Measuring.
# --------------------------------------------------------------------------------------------


def _settle() -> None:
    """Start each operation from the same state: no garbage, no pending disk writeback.

    os.sync() matters: without it a method that writes without fsync (pickle5) leaves dirty
    pages whose writeback the next method's fsync would wait for and be charged with.
    """
    gc.collect()
    os.sync()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    _settle()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stored_bytes(path: Path) -> int:
    """The bytes of the state at ``path``: the file, plus the packs of a delta save (the
    ``.packs`` sidecar its HEAD references); version slots are counted as beside it."""
    packs = path.with_name(path.name + ".packs")
    extra = sum(f.stat().st_size for f in packs.rglob("*") if f.is_file()) if packs.exists() else 0
    return path.stat().st_size + extra


def _traced_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes tracemalloc sees allocated during ``fn()`` beyond what was live before.

    numpy (and so pandas) report their data buffers to tracemalloc; memory that C libraries
    allocate with plain malloc (zstd's and OpenSSL's work buffers) is not seen.
    """
    _settle()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return max(0, peak - before)


def _failure(e: BaseException) -> str:
    if isinstance(e, Unavailable):
        return f"unavailable: {e}"
    if isinstance(e, WrongResult):
        return f"WRONG: {e}"
    return f"error: {type(e).__name__}: {e}"


def measure(
    cases: Sequence[Case],
    repeat: int,
    budget: float,
    memory_limit: float | None,
    log: Callable[[str], None],
) -> list[Row]:
    """Warm up and check every case, then time them round-robin, then trace memory.

    ``memory_limit``: trace only methods whose untraced warm-up save + load took at most this
    many seconds (tracemalloc slows methods that allocate millions of objects, JSON on L, by far
    more than the time they take); ``None`` traces nothing.
    """
    rows = {c.name: Row(c.name) for c in cases}
    live: list[Case] = []
    runs: dict[str, int] = {}
    for case in cases:
        row = rows[case.name]
        log(f"  warm-up {case.name}")
        try:
            case.prepare()
            case.before_save()
            t_save, _ = _timed(case.save) if case.save else (0.0, None)
            if case.tick:
                case.tick()
            t_load, loaded = _timed(case.load)
            row.check = case.check(case.expected, loaded)
            del loaded
        except Exception as e:
            row.status = _failure(e)
            if not isinstance(e, Unavailable):
                traceback.print_exc(file=sys.stderr)
            continue
        row.warmup_s = t_save + t_load
        log(f"    save {t_save * 1000:.1f} ms, load {t_load * 1000:.1f} ms, {row.check}")
        live.append(case)
        # A slow method (JSON on L) gets fewer runs so the whole bench stays within reach.
        runs[case.name] = max(1, min(repeat, int(budget // max(t_save + t_load, 1e-9))))

    for i in range(max(runs.values(), default=0)):
        log(f"  timed run {i + 1}")
        # Round-robin over methods so a slow drift of the machine affects them all alike.
        for case in live:
            if i >= runs[case.name] or rows[case.name].status != "ok":
                continue
            row = rows[case.name]
            try:
                if case.save:
                    case.before_save()
                    row.save_times.append(_timed(case.save)[0])
                if case.tick:
                    row.tick_times.append(_timed(case.tick)[0])
                t_load, loaded = _timed(case.load)
                row.load_times.append(t_load)
                del loaded
            except Exception as e:
                row.status = _failure(e)
                traceback.print_exc(file=sys.stderr)

    for case in live:
        row = rows[case.name]
        if row.status != "ok":
            continue
        row.runs = len(row.load_times)
        row.save_s = statistics.median(row.save_times) if row.save_times else None
        row.tick_s = statistics.median(row.tick_times) if row.tick_times else None
        row.load_s = statistics.median(row.load_times)
        if case.save:
            row.stored_bytes = stored_bytes(case.path)
            row.beside_bytes = (
                sum(f.stat().st_size for f in case.path.parent.rglob("*") if f.is_file())
                - row.stored_bytes
            )
        if memory_limit is not None and row.warmup_s > memory_limit:
            row.memory_skipped = True
        elif memory_limit is not None:
            log(f"  memory {case.name}")
            try:
                if case.save:
                    case.before_save()
                    row.save_peak = _traced_peak(case.save)
                row.load_peak = _traced_peak(case.load)
            except Exception as e:
                row.status = _failure(e)
    return [rows[c.name] for c in cases]


# --------------------------------------------------------------------------------------------
# Reporting.
# --------------------------------------------------------------------------------------------


def _ver(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fs_type(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (from /proc/mounts), if known."""
    best, fstype = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if (
                len(parts) > 2
                and str(path.resolve()).startswith(parts[1])
                and len(parts[1]) > len(best)
            ):
                best, fstype = parts[1], f"{parts[2]} on {parts[0]}"
    except OSError:
        pass
    return fstype


def _loadavg() -> str:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info(workdir: Path) -> dict[str, str]:
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        usable = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        usable = "?"
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "memory": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "zstandard": zstandard.__version__,
        "cryptography": _ver("cryptography"),
        "statevault": _ver("statevault"),
        "bench dir": f"{workdir} ({_fs_type(workdir)})",
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x" if v < 10 else f"{v:.0f}x"


# Which baseline each statevault row is held against (besides the JSON speed-up).
COMPARATORS: dict[str, list[str]] = {
    SV: [P5, P5_FSYNC],
    SV_ZSTD: [P5_ZSTD],
    SV_ZSTD_FERNET: [P5_ZSTD_FERNET],
    SV_TRADING: [P5, P5_FSYNC],
}


def ratios(row: Row, by_name: dict[str, Row]) -> str:
    """The ratios column: time relative to the comparator baselines, and the JSON speed-up."""
    if row.status != "ok":
        return ""
    parts = []
    if row.name == SV_SUMMARY:
        full = by_name.get(SV_TRADING)
        share = _ratio(row.load_s, full.load_s if full else None)
        return "-" if share is None else f"{share:.1%} of full load"
    for base in COMPARATORS.get(row.name, []):
        b = by_name.get(base)
        if b and b.status == "ok":
            parts.append(
                f"vs {base}: save {_x(_ratio(row.save_s, b.save_s))}"
                f" load {_x(_ratio(row.load_s, b.load_s))}"
            )
    j = by_name.get(JSON)
    if j and j.status == "ok" and row.name != JSON:
        parts.append(
            f"JSON/this: save {_x(_ratio(j.save_s, row.save_s))}"
            f" load {_x(_ratio(j.load_s, row.load_s))}"
        )
    return "; ".join(parts)


#: Issue 16's targets, judged on M and L: (row, baseline, largest ratio of times).
SPEED_TARGETS: list[tuple[str, str, float]] = [
    (SV, P5, 1.0),
    (SV_ZSTD, P5_ZSTD, 0.7),
    (SV_ZSTD_FERNET, P5_ZSTD_FERNET, 0.6),
]


def targets(rows: list[Row], raw: int, size: str) -> list[tuple[str, str, bool]]:
    """The README's targets for ``size`` that the rows allow to judge: (target, figures, met).

    Speed and size (issue 16) on M and L, the JSON speed-ups and the save peak on M, the
    summary on L; other sizes are shown but not judged.
    """
    by = {r.name: r for r in rows if r.status == "ok"}
    out: list[tuple[str, str, bool]] = []
    if size not in ("M", "L"):
        return out
    for name, base, limit in SPEED_TARGETS:
        if name not in by or base not in by:
            continue
        r, b = by[name], by[base]
        for what, a, c in (("save", r.save_s, b.save_s), ("load", r.load_s, b.load_s)):
            v = _ratio(a, c)
            if v is not None:
                out.append((f"{name} {what} <= {limit}x {base}", _x(v), v <= limit))
        if name != SV and r.stored_bytes is not None and b.stored_bytes is not None:
            out.append(
                (
                    f"{name} stored bytes <= {base}",
                    f"{r.stored_bytes:,} vs {b.stored_bytes:,}",
                    r.stored_bytes <= b.stored_bytes,
                )
            )
    if size == "L":
        if SV_SUMMARY in by and SV_TRADING in by:
            v = _ratio(by[SV_SUMMARY].load_s, by[SV_TRADING].load_s)
            if v is not None:
                out.append((f"{SV_SUMMARY} <= 5% of a full load", f"{v:.1%}", v <= 0.05))
        return out
    if SV in by and JSON in by:
        r, j = by[SV], by[JSON]
        for what, a, c, need in (
            ("save", j.save_s, r.save_s, 100),
            ("load", j.load_s, r.load_s, 40),
        ):
            v = _ratio(a, c)
            if v is not None:
                out.append((f"{SV} {what} >= {need}x faster than {JSON}", _x(v), v >= need))
    sv_peak = by[SV].save_peak if SV in by else None
    if sv_peak is not None and raw:
        v = sv_peak / raw
        out.append((f"{SV} save peak <= 2x raw array bytes", f"{v:.2f}x", v <= 2))
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f}" if v < 0.1 else f"{v * 1000:.1f}"


def _mib(v: int | None) -> str:
    return "-" if v is None else f"{v / MiB:.2f}"


def format_table(rows: list[Row], raw: int) -> str:
    by_name = {r.name: r for r in rows}
    header = [
        "method",
        "n",
        "save ms",
        "tick ms",
        "load ms",
        "stored bytes",
        "save peak MiB",
        "peak/raw",
        "load peak MiB",
        "check",
        "ratios",
    ]
    lines: list[list[str]] = [header]
    failed: list[tuple[str, str]] = []
    notes = []
    for r in rows:
        if r.status != "ok":
            failed.append((r.name, r.status))
            continue
        lines.append(
            [
                r.name,
                str(r.runs),
                _ms(r.save_s),
                _ms(r.tick_s),
                _ms(r.load_s),
                "-" if r.stored_bytes is None else f"{r.stored_bytes:,}",
                _mib(r.save_peak),
                "-" if r.save_peak is None or not raw else f"{r.save_peak / raw:.2f}",
                _mib(r.load_peak),
                r.check,
                ratios(r, by_name),
            ]
        )
        if r.memory_skipped:
            notes.append(
                f"  note: {r.name} memory not traced: its warm-up took {r.warmup_s:.1f} s, "
                "more than --memory-limit"
            )
        if r.beside_bytes > 0:
            notes.append(f"  note: {r.name} also keeps {r.beside_bytes:,} bytes beside its file")
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    widths[0] = max([widths[0]] + [len(name) for name, _ in failed])
    right = {1, 2, 3, 4, 5, 6, 7, 8}
    out = []
    for k, line in enumerate(lines):
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    # Rows that could not be measured: name and reason, outside the column widths.
    out.extend(f"{name.ljust(widths[0])}  {status}" for name, status in failed)
    return "\n".join(out + notes)


def _row_json(r: Row) -> dict[str, Any]:
    return {
        "method": r.name,
        "status": r.status,
        "check": r.check,
        "runs": r.runs,
        "save_s": r.save_s,
        "tick_s": r.tick_s,
        "load_s": r.load_s,
        "save_times_s": r.save_times,
        "tick_times_s": r.tick_times,
        "load_times_s": r.load_times,
        "stored_bytes": r.stored_bytes,
        "beside_bytes": r.beside_bytes,
        "save_peak_bytes": r.save_peak,
        "load_peak_bytes": r.load_peak,
        "warmup_s": r.warmup_s,
        "memory_skipped": r.memory_skipped,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="statevault vs baselines: save/load time, stored size, peak memory.",
    )
    parser.add_argument(
        "--size",
        nargs="+",
        action="extend",
        choices=list(SIZES),
        help="state sizes to run (default: S M)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per method, after one warm-up (default 5)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="parent of the temporary work dir (default: system temp)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"methods to run, shell-style patterns allowed; names: {', '.join(METHOD_NAMES)}",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write results as JSON"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds of timed runs per method and size; slower ones get fewer runs (default 120)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the traced memory runs")
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="trace memory only for methods whose warm-up save+load took at most this (default 30)",
    )
    parser.add_argument("--seed", type=int, default=0, help="state generator seed (default 0)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sizes = args.size or ["S", "M"]
    patterns = args.only or ["*"]
    unknown = [p for p in patterns if not fnmatch.filter(METHOD_NAMES, p)]
    if unknown:
        parser.error(f"--only {unknown} matches no method; names: {', '.join(METHOD_NAMES)}")

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="statevault-bench-", dir=args.dir))
    result: dict[str, Any] = {"machine": machine_info(workdir), "sizes": {}}
    try:
        print("machine")
        for k, v in result["machine"].items():
            print(f"  {k:<13} {v}")
        print(
            f"  settings      repeat={args.repeat} (+1 warm-up), budget={args.budget:g}s, "
            f"zstd level {ZSTD_LEVEL}, memory="
            + ("off" if args.no_memory else f"tracemalloc (limit {args.memory_limit:g}s)")
        )
        for size in sizes:
            n_pairs, bars = SIZES[size]
            log(f"size {size}: generating state")
            load_before = _loadavg()
            state = make_state(size, args.seed)
            raw = raw_array_bytes(state)
            cases = build_cases(size, state, workdir, wanted)
            memory_limit = None if args.no_memory else args.memory_limit
            rows = measure(cases, args.repeat, args.budget, memory_limit, log)
            print()
            print(
                f"size {size}: {n_pairs} pairs x {bars:,} one-minute bars; "
                f"raw array bytes {raw:,} ({raw / MiB:.2f} MiB)"
            )
            print(format_table(rows, raw))
            load_after = _loadavg()
            print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}")
            judged = targets(rows, raw, size)
            if judged:
                print(f"targets judged on {size} (see bench/README.md, Targets):")
                for what, figure, met in judged:
                    print(f"  {'met ' if met else 'MISS'}  {what}: {figure}")
            result["sizes"][size] = {
                "pairs": n_pairs,
                "bars": bars,
                "raw_array_bytes": raw,
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "rows": [_row_json(r) for r in rows],
                "targets": [{"target": w, "figure": f, "met": m} for w, f, m in judged],
            }
            del state, cases, rows
            shutil.rmtree(workdir / size, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
