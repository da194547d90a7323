"""The delta planner alone: plan time and bytes of new pieces per tick, per buffer workload.

``python -m bench.delta_planner [--size M L] [--ticks N] [--json OUT]``

One buffer of the bench state's shape (``bench/gen_state.py``: a float64 quote series or its
int64 minute index, ``bars`` rows) goes through ``ticks`` saves of each workload: ``same`` (no
change), ``append`` (one row), ``roll`` (drop the oldest row, append one: a rolling window),
``edit`` (one value in the middle changes). Baselines in the same run: the keyed hash of the
whole buffer (the verification floor: every save hashes what it reuses) and zstd level 3 of the
whole buffer (what a full rewrite compresses and writes). ``fresh`` is the first tick planned
by a new planner from extents only (a manager that just loaded: no hints), after the ticks.
The per-state line multiplies by the state's large buffers (6 per pair: 3 series, each a
values and an index buffer; the 5-row stats frames are tiny and rewritten whole).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from statevault.delta.planner import BufferPlan, Planner

from bench.gen_state import SIZES
from bench.run import _loadavg, machine_info

KEY = b"bench key, 32 bytes long ......."
WORKLOADS = ["same", "append", "roll", "edit"]


def buffers(bars: int, ticks: int) -> dict[str, np.ndarray]:
    """The two buffer kinds with ``ticks`` spare rows at the end (appends, rolls)."""
    rng = np.random.default_rng(0)
    quotes = np.round(1.085 * np.exp(np.cumsum(rng.normal(0.0, 1.5e-4, bars + ticks))), 5)
    start = np.datetime64("2024-06-25T00:00", "ns").astype(np.int64)
    index = start + np.arange(bars + ticks, dtype=np.int64) * 60_000_000_000
    return {"quotes": quotes, "index": index}


def tick_data(kind: str, full: np.ndarray, bars: int, t: int) -> bytes:
    if kind == "same":
        return full[:bars].tobytes()
    if kind == "append":
        return full[: bars + t].tobytes()
    if kind == "roll":
        return full[t : bars + t].tobytes()
    edited = full[:bars].copy()
    edited[bars // 2 + t % 100] += 1
    return edited.tobytes()


def timed(fn: Callable[[], Any], repeat: int = 21) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_one(full: np.ndarray, bars: int, ticks: int, workload: str) -> dict[str, Any]:
    planner = Planner(KEY)
    plan, _ = planner.plan(full[:bars].tobytes(), None)
    times, written, extents = [], [], []
    for t in range(1, ticks + 1):
        data = tick_data(workload, full, bars, t)
        t0 = time.perf_counter()
        plan, new = planner.plan(data, plan)
        times.append(time.perf_counter() - t0)
        written.append(sum(len(b) for _, b in new))
        extents.append(len(plan.extents))
    loaded = BufferPlan(plan.extents, plan.size)
    fresh_data = tick_data(workload, full, bars, ticks)
    _, fresh_new = Planner(KEY).plan(fresh_data, loaded)
    return {
        "workload": workload,
        "plan_us_median": statistics.median(times) * 1e6,
        "plan_us_max": max(times) * 1e6,
        "new_bytes_mean": statistics.fmean(written),
        "new_bytes_max": max(written),
        "extents_mean": statistics.fmean(extents),
        "extents_max": max(extents),
        "fresh_new_bytes": sum(len(b) for _, b in fresh_new),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs="+", default=["M", "L"], choices=list(SIZES))
    ap.add_argument("--ticks", type=int, default=0, help="saves per workload (default by size)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    info = machine_info(Path(tempfile.gettempdir()))
    for k, v in info.items():
        if k != "bench dir":
            print(f"{k:13s} {v}")
    print(f"pyfastcdc     {metadata.version('pyfastcdc')}")
    print(f"load average (1/5/15 min) at the start: {_loadavg()}")
    results: list[dict[str, Any]] = []
    for size in args.size:
        pairs, bars = SIZES[size]
        ticks = args.ticks or (1_000 if bars <= 5_000 else 300)
        n = bars * 8
        print(
            f"\nsize {size}: {pairs} pairs x {bars:,} bars, one buffer {n:,} bytes, {ticks} ticks"
        )
        print(
            f"{'buffer':7s} {'workload':8s} {'plan us':>8s} {'max us':>8s} {'new B/tick':>10s}"
            f" {'max new B':>10s} {'extents':>7s} {'max ext':>7s} {'fresh new B':>11s}"
        )
        for kind, full in buffers(bars, ticks).items():
            whole = full[:bars].tobytes()
            planner = Planner(KEY)
            cctx = zstandard.ZstdCompressor(level=3)
            hash_us = timed(lambda whole=whole, p=planner: p.piece_id(whole)) * 1e6
            zstd_us = timed(lambda whole=whole, c=cctx: c.compress(whole)) * 1e6
            zstd_bytes = len(cctx.compress(whole))
            print(
                f"{kind:7s} baseline keyed hash of the buffer {hash_us:.0f} us; zstd-3 of it"
                f" {zstd_us:.0f} us, {zstd_bytes:,} bytes (a full rewrite)"
            )
            for workload in WORKLOADS:
                r = run_one(full, bars, ticks, workload)
                r.update(size=size, buffer=kind, bytes=n, hash_us=hash_us, zstd_us=zstd_us)
                r["zstd_bytes"] = zstd_bytes
                results.append(r)
                print(
                    f"{kind:7s} {workload:8s} {r['plan_us_median']:8.0f} {r['plan_us_max']:8.0f}"
                    f" {r['new_bytes_mean']:10.1f} {r['new_bytes_max']:10,}"
                    f" {r['extents_mean']:7.1f} {r['extents_max']:7} {r['fresh_new_bytes']:11,}"
                )
        per_state = 6 * pairs
        for workload in ("append", "roll"):
            rows = [r for r in results if r["size"] == size and r["workload"] == workload]
            us = statistics.fmean(r["plan_us_median"] for r in rows) * per_state
            new = statistics.fmean(r["new_bytes_mean"] for r in rows) * per_state
            print(
                f"state {size} {workload}: {per_state} large buffers, planning {us / 1000:.1f} ms"
                f" and {new / 1000:.1f} kB of new pieces per tick (before compression)"
            )
    print(f"load average (1/5/15 min) at the end: {_loadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
