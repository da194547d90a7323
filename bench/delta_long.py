"""Delta saves over a long run: 1,000 tick saves, then load time, storage and the worst save.

The state builder and the tick come from ``bench.delta_ticks`` (M: 50 pairs x 5,000 bars;
every series grows by one bar, every stats frame rolls by one row). On real files, with
``keep_versions=3`` as there, side by side in one run:

1. load: a fresh process loads the ticked state and a freshly compacted copy of it
   (``statevault.delta.compact.compact_state`` on a copy of the files), interleaved, medians
   of ``--loads`` loads each (the time of ``load_trading_state()`` inside the process).
   Target: ticked <= 1.3x compacted.
2. storage: bytes on disk of the state file, its version slots and ``.packs/`` (hard links
   counted once) against the compacted size (its HEAD plus the pack it references) plus the
   retained versions' real differences: for each retained version, the rows and values it
   holds that the current state does not (stats rows rolled away since, changed scalars),
   pickled and zstd-compressed, summed. Target: storage <= 2x compacted + differences.
3. worst save: the slowest single tick save (delta) against a full save (``delta=False``)
   of the same state, timed every ``--full-every`` ticks in the same run (median). Target:
   worst <= 1.5x full.

Garbage collection runs as shipped (every 16 saves) with the grace period of ``--grace``
seconds (default 0): the run squeezes 1,000 one-minute bars into minutes, so with the
library's 600 s no retired pack would be past its grace yet, where a real bot on one-minute
bars is past it after 10 bars. ``--grace 600`` measures the squeezed run as it is.

    python -m bench.delta_long --ticks 1000
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zstandard

from bench.delta_ticks import _wchar, make_trading_parts, tick

__all__ = ["main", "real_difference", "storage_bytes"]

_LOAD = """
import sys, time
from statevault import TradingStateManager
m = TradingStateManager(sys.argv[1], spool_dir=False, keep_versions=3)
t = time.perf_counter()
m.load_trading_state()
print(time.perf_counter() - t)
"""


def storage_bytes(state: Path) -> dict[str, int]:
    """Bytes on disk of ``state``, its ``.versions/`` and ``.packs/`` (each inode once)."""
    seen: set[tuple[int, int]] = set()
    out = {"head": 0, "versions": 0, "packs": 0}
    places = [("head", [state])]
    for part, suffix in (("versions", ".versions"), ("packs", ".packs")):
        folder = state.with_name(state.name + suffix)
        places.append((part, sorted(folder.iterdir()) if folder.is_dir() else []))
    for part, files in places:
        for f in files:
            st = f.stat()
            if (st.st_dev, st.st_ino) not in seen and f.is_file():
                seen.add((st.st_dev, st.st_ino))
                out[part] += st.st_size
    return out


def _missing(old: Any, new: Any) -> Any:
    """What ``old`` holds that ``new`` does not (None: nothing)."""
    if isinstance(old, dict) and isinstance(new, dict):
        parts = {k: _missing(v, new.get(k)) for k, v in old.items()}
        parts = {k: v for k, v in parts.items() if v is not None}
        return parts or None
    if isinstance(old, pd.Series | pd.DataFrame) and isinstance(new, type(old)):
        gone = old[~old.index.isin(new.index)]
        common = old.index.intersection(new.index)
        same = (old.loc[common] == new.loc[common]).to_numpy().reshape(len(common), -1)
        changed = old.loc[common][~same.all(axis=1)]
        rows = pd.concat([gone, changed]) if len(changed) else gone
        return rows if len(rows) else None
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        same = old.shape == new.shape and np.array_equal(old, new)
        return None if same else old
    try:
        return None if type(old) is type(new) and bool(old == new) else old
    except (TypeError, ValueError):
        return old


def real_difference(old: dict[str, Any], new: dict[str, Any]) -> int:
    """The retained version ``old``'s real difference from the current ``new``: what ``old``
    holds that ``new`` does not, as pickle 5 + zstd (level 3) bytes (0: nothing)."""
    gone = _missing(old, new)
    if gone is None:
        return 0
    return len(zstandard.ZstdCompressor(level=3).compress(pickle.dumps(gone, protocol=5)))


def _load_seconds(path: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(proc.stdout.strip().splitlines()[-1])


def run(ticks: int, workdir: Path, *, grace: float, loads: int, full_every: int) -> dict[str, Any]:
    from statevault import TradingStateManager
    from statevault.delta.compact import compact_state
    from statevault.delta.reader import DeltaReader

    positions, pairs, portfolio = make_trading_parts("M")
    path = workdir / "delta.sv"
    delta = TradingStateManager(path, spool_dir=False, keep_versions=3)
    store = delta.layers.commit.delta
    assert store is not None
    store.grace = grace
    full = TradingStateManager(workdir / "full.sv", spool_dir=False, keep_versions=3, delta=False)
    delta.save_trading(positions, pairs, portfolio)  # the first (full) saves, not counted
    full.save_trading(positions, pairs, portfolio)
    # (seconds, CPU seconds, bytes written) of every tick save; CPU time tells a save that
    # worked long from one that waited for the two cores shared with other jobs.
    saves: list[tuple[float, float, int]] = []
    fulls: list[tuple[float, float]] = []
    # Seconds in Python's cyclic garbage collector during each save (gc.callbacks): a full
    # collection walks every object of the process, so it costs what the heap holds, not what
    # the save does, and lands in whichever code allocates when its threshold is crossed.
    collector = _Collector()
    gc.callbacks.append(collector)
    save_gc: list[float] = []
    full_gc: list[float] = []
    started = time.perf_counter()
    for i in range(1, ticks + 1):
        pairs = tick(pairs)
        collector.seconds = 0.0
        w, t, c = _wchar(), time.perf_counter(), time.process_time()
        delta.save_trading(positions, pairs, portfolio)
        saves.append((time.perf_counter() - t, time.process_time() - c, _wchar() - w))
        save_gc.append(collector.seconds)
        if i % full_every == 0 or i == ticks:
            collector.seconds = 0.0
            t, c = time.perf_counter(), time.process_time()
            full.save_trading(positions, pairs, portfolio)
            fulls.append((time.perf_counter() - t, time.process_time() - c))
            full_gc.append(collector.seconds)
        if i % max(1, ticks // 10) == 0:
            print(f"  tick {i}/{ticks} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    gc.callbacks.remove(collector)
    ticked = storage_bytes(path)
    info = delta.get_state_info()

    # The compacted copy: the files copied as they are, then compacted (one fresh pack).
    copy = workdir / "compacted" / "delta.sv"
    copy.parent.mkdir()
    for suffix in ("", ".versions", ".packs"):
        src = path.with_name(path.name + suffix)
        dst = copy.with_name(copy.name + suffix)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    t = time.perf_counter()
    compact_state(TradingStateManager(copy, spool_dir=False, keep_versions=3))
    compact_seconds = time.perf_counter() - t
    head = copy.stat().st_size
    mgr = TradingStateManager(copy, spool_dir=False, keep_versions=3)
    data, _ = mgr.layers.frames.read()
    reader = mgr.layers.frames.reader(data)
    assert isinstance(reader, DeltaReader)
    compacted = head + sum(p.size for p in reader.index().packs.values())

    # The retained versions' real differences from the current state.
    current = delta.load()
    differences = {
        v["generation"]: real_difference(delta.load(v["generation"]), current)
        for v in delta.list_versions()
        if not v["current"]
    }

    ticked_loads, compacted_loads = [], []
    for _ in range(loads):  # interleaved: a drift in the machine's load hits both alike
        ticked_loads.append(_load_seconds(path))
        compacted_loads.append(_load_seconds(copy))
    worst = max(range(len(saves)), key=lambda j: saves[j][0])
    median_bytes = statistics.median(b for *_, b in saves)
    # Each save by what else it did: a merge of packs (compaction: far more bytes than a
    # tick's), garbage collection (every gc_every-th save of the manager), neither.
    kinds: dict[str, list[tuple[float, float, int]]] = {"compaction": [], "gc": [], "plain": []}
    for j, save in enumerate(saves):
        gc_save = (j + 2) % store.gc_every == 0  # the first save was the manager's first
        kind = "compaction" if save[2] > 3 * median_bytes else "gc" if gc_save else "plain"
        kinds[kind].append(save)
    return {
        "ticks": ticks,
        "load_ticked": statistics.median(ticked_loads),
        "load_compacted": statistics.median(compacted_loads),
        "loads": loads,
        "storage": ticked,
        "compacted": compacted,
        "differences": differences,
        "median_save": statistics.median(s for s, *_ in saves),
        "worst_save": saves[worst][0],
        "worst_tick": worst + 1,
        "worst_cpu": saves[worst][1],
        "worst_bytes": saves[worst][2],
        # The save that worked longest (CPU), to tell work from waiting for a shared disk.
        "cpu_worst": max(c for _, c, _ in saves),
        "cpu_worst_tick": 1 + max(range(len(saves)), key=lambda j: saves[j][1]),
        "cpu_worst_gc": save_gc[max(range(len(saves)), key=lambda j: saves[j][1])],
        "median_bytes": median_bytes,
        "max_bytes": max(b for *_, b in saves),
        "kinds": kinds,
        "p99_save": sorted(s for s, *_ in saves)[int(0.99 * (len(saves) - 1))],
        "full_save": statistics.median(s for s, _ in fulls),
        "full_worst": max(s for s, _ in fulls),
        "full_cpu": statistics.median(c for _, c in fulls),
        "full_saves": len(fulls),
        "compact_seconds": compact_seconds,
        "gc_worst": save_gc[worst],
        "gc_saves": sum(1 for g in save_gc if g > 0.01),
        "gc_total": sum(save_gc),
        "gc_full_worst": max(full_gc),
        # The worst save with the collector's time taken out, and the save it was.
        "worst_less_gc": max(s - g for (s, *_), g in zip(saves, save_gc, strict=True)),
        "delta_info": info.get("delta"),
        "grace": grace,
    }


class _Collector:
    """A ``gc.callbacks`` hook: seconds spent in collections since ``seconds`` was reset."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, load average {load}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=5, help="loads of each state (median)")
    parser.add_argument("--full-every", type=int, default=50, help="ticks between full saves")
    parser.add_argument("--grace", type=float, default=0.0, help="GC grace period, seconds")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep the files")
    args = parser.parse_args(argv)
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=False)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="sv-delta-long-"))
    print(f"machine: {_machine()}", file=sys.stderr)
    try:
        r = run(
            args.ticks,
            workdir,
            grace=args.grace,
            loads=args.loads,
            full_every=args.full_every,
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    s = r["storage"]
    used = sum(s.values())
    diff = sum(r["differences"].values())
    bound = 2 * r["compacted"] + diff
    load_ratio = r["load_ticked"] / r["load_compacted"]
    save_ratio = r["worst_save"] / r["full_save"]
    print(f"M state, {r['ticks']} tick saves, keep_versions=3, GC grace {r['grace']:g} s")
    print(f"machine: {_machine()}")
    print(
        f"(1) fresh-process load, median of {r['loads']}: ticked {1000 * r['load_ticked']:.0f} ms"
        f", compacted {1000 * r['load_compacted']:.0f} ms -> {load_ratio:.2f}x (target <= 1.3x)"
    )
    print(
        f"(2) storage {used:,} bytes (HEAD {s['head']:,}, versions {s['versions']:,}, packs "
        f"{s['packs']:,}); compacted {r['compacted']:,}; retained versions' real differences "
        f"{diff:,} ({', '.join(f'v{g}: {b:,}' for g, b in r['differences'].items())}); "
        f"bound 2 x compacted + differences = {bound:,} -> {used / bound:.2f} of it (target <= 1)"
    )
    print(
        f"(3) worst tick save {1000 * r['worst_save']:.0f} ms (tick {r['worst_tick']}, "
        f"{r['worst_bytes']:,} bytes written, {1000 * r['worst_cpu']:.0f} ms CPU), p99 "
        f"{1000 * r['p99_save']:.0f} ms, median {1000 * r['median_save']:.0f} ms; full save "
        f"(delta=False) median of {r['full_saves']}: {1000 * r['full_save']:.0f} ms "
        f"({1000 * r['full_cpu']:.0f} ms CPU, worst {1000 * r['full_worst']:.0f} ms) -> "
        f"{save_ratio:.2f}x (target <= 1.5x)"
    )
    print(
        f"    of it in Python's cyclic GC: {1000 * r['gc_worst']:.0f} ms; saves with > 10 ms "
        f"of GC: "
        f"{r['gc_saves']}, GC in all saves {r['gc_total']:.2f} s; worst save less its GC "
        f"{1000 * r['worst_less_gc']:.0f} ms -> {r['worst_less_gc'] / r['full_save']:.2f}x a full "
        f"save (worst GC in a timed full save: {1000 * r['gc_full_worst']:.0f} ms)"
    )
    print(
        f"    most CPU in one tick save: {1000 * r['cpu_worst']:.0f} ms (tick "
        f"{r['cpu_worst_tick']}, {1000 * r['cpu_worst_gc']:.0f} ms of it in the cyclic GC) -> "
        f"{r['cpu_worst'] / r['full_cpu']:.2f}x a full save's CPU (median)"
    )
    for kind, group in r["kinds"].items():
        if group:
            slow = max(group)
            middle = statistics.median(g[0] for g in group)
            print(
                f"    {kind} saves: {len(group)}, median {1000 * middle:.0f} ms, worst "
                f"{1000 * slow[0]:.0f} ms ({1000 * slow[1]:.0f} ms CPU, "
                f"{slow[2]:,} bytes)"
            )
    print(
        f"bytes written per tick: median {r['median_bytes']:,.0f}, max {r['max_bytes']:,}; "
        f"compact of the ticked copy: {r['compact_seconds']:.2f} s"
    )
    print(f"delta info after the ticks: {r['delta_info']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
