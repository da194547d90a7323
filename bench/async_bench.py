"""Async and background saving of the M state: time in the save call, event-loop lag.

``python -m bench.async_bench [--size M] [--rounds 3] [--iterations N] [--lag-saves N]
[--only local|s3] [--json OUT]``

On a local directory and on a moto S3 server (started in its own process on 127.0.0.1 with
backends/s3/serve.py, so its CPU does not share this process's GIL), it measures, in
``--rounds`` rounds so that a drift of the machine's load hits every figure alike:

- sync: median time of ``StateManager.save`` and ``load`` of the state (5 runs a round);
- background: a bot loop that saves the state every iteration through a ``BackgroundSaver``
  (and does 20 ms of "trading" between saves): median time spent in the ``save()`` call, and
  its ratio to that round's synchronous save (target <= 10 %), and the calling thread's CPU
  time in the call (the rest of the call is waiting: for the GIL, or for a core of a loaded
  machine); how many saves landed or were coalesced; side by side for the default
  (``snapshot="copy"``), ``snapshot="encode"``, ``encode_in_worker=True``, and a bar loop
  (``background_bar_loop``: twice a synchronous save of work between saves, so the worker is
  idle at each call);
- loop_lag: an asyncio bot whose ticker wakes every 1 ms records how late it woke while the
  state is saved from inside the loop: ``sm.save`` called in the loop, ``AsyncStateManager.save``
  awaited, ``BackgroundSaver.save`` called and its handle awaited (median, p99, max: the max
  is the longest stall of the loop);
- costs: encoding the state, copying its aliased buffers, ``freeze`` (the default snapshot),
  and the metrics hooks.

This is a measuring tool, not a test: nothing asserts on time. Figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from statevault import StateManager
from statevault.aio import AsyncStateManager
from statevault.background import BackgroundSaver, copy_aliased
from statevault.freeze import freeze
from statevault.pool import CopyPool

from .gen_state import make_state, raw_array_bytes

MS = 1000.0


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * MS, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_moto() -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """backends/s3/serve.py in a child process; returns it and the storage options."""
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [
            sys.executable,
            str(root / "backends/s3/serve.py"),
            "--port",
            str(port),
            "--bucket",
            "bench",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{endpoint}/bench", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return child, options


def measure_sync(sm: StateManager, state: dict[str, Any], n: int) -> dict[str, Any]:
    saves, loads = [], []
    sm.save(state)  # warm-up
    for _ in range(n):
        t = time.perf_counter()
        sm.save(state)
        saves.append(time.perf_counter() - t)
        t = time.perf_counter()
        sm.load()
        loads.append(time.perf_counter() - t)
    last = sm.last_save
    assert last is not None
    return {
        "save_ms": _median_ms(saves),
        "load_ms": _median_ms(loads),
        "last_save": {k: v for k, v in last.as_dict().items() if k not in ("url", "error")},
    }


def measure_background(
    sm: StateManager,
    state: dict[str, Any],
    n: int,
    sync_save_ms: float,
    work: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    calls, cpus, handles = [], [], []
    pause = 2 * sync_save_ms / 1000 if work == "2x sync" else 0.02
    with BackgroundSaver(sm, flush_at_exit=False, **options) as saver:
        for _ in range(n):
            t, cpu = time.perf_counter(), time.thread_time()
            handles.append(saver.save(state))
            calls.append(time.perf_counter() - t)
            cpus.append(time.thread_time() - cpu)  # this thread's own work in the call
            time.sleep(pause)  # the bot's own work between saves
        saver.flush()
    call_ms = _median_ms(calls)
    return {
        "save_call_ms": call_ms,
        "ratio_to_sync": round(call_ms / sync_save_ms, 3),
        "save_call_cpu_ms": _median_ms(cpus),
        "landed": sum(h.landed for h in handles),
        "superseded": sum(h.status == "superseded" for h in handles),
        "failed": sum(h.failed for h in handles),
    }


async def _lag_during(save: Any, n: int) -> list[float]:
    """A 1 ms ticker's lateness while ``save()`` (a coroutine function) runs, ``n`` times."""
    lags: list[float] = []
    saving = False

    async def ticker() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            if saving:
                lags.append(time.perf_counter() - t - 0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    for _ in range(n):
        saving = True
        await save()
        await asyncio.sleep(0)  # the ticker's wake-up that the save delayed is counted
        saving = False
        await asyncio.sleep(0.01)
    task.cancel()
    return lags


def _lag_figures(lags: list[float]) -> dict[str, Any]:
    lags = sorted(lags) or [0.0]
    return {
        "lag_median_ms": _median_ms(lags),
        "lag_p99_ms": round(lags[int(len(lags) * 0.99)] * MS, 2),
        "lag_max_ms": round(lags[-1] * MS, 2),
        "ticks": len(lags),
    }


def measure_async(sm: StateManager, state: dict[str, Any], n: int) -> dict[str, Any]:
    """The loop's lag while the state is saved three ways from inside it: ``sm.save`` called
    in the loop (it blocks the loop for the whole save), ``AsyncStateManager.save`` awaited,
    and ``BackgroundSaver.save`` called then its handle awaited (polled every ms)."""

    async def blocking() -> None:
        sm.save(state)

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"sync_in_loop": await _lag_during(blocking, n)}
        async with AsyncStateManager(manager=sm) as am:
            out["async"] = await _lag_during(lambda: am.save(state), n)
        with BackgroundSaver(sm, flush_at_exit=False) as saver:

            async def background() -> None:
                handle = saver.save(state)
                while not handle.done:
                    await asyncio.sleep(0.001)

            out["background"] = await _lag_during(background, n)
        return out

    return {name: _lag_figures(lags) for name, lags in asyncio.run(run()).items()}


def measure_costs(state: dict[str, Any], n: int) -> dict[str, Any]:
    sm = StateManager("memory://bench-costs/s.bin", keep_versions=0, spool_dir=False)
    codec = sm.layers.codec.layout.codec
    encodes, copies, freezes, pooled = [], [], [], []
    pool = CopyPool()
    for _ in range(n):
        t = time.perf_counter()
        snapshot = sm.encode(state)
        encodes.append(time.perf_counter() - t)
        t = time.perf_counter()
        copy_aliased(snapshot)
        copies.append(time.perf_counter() - t)
        t = time.perf_counter()
        freeze(state, codec)
        freezes.append(time.perf_counter() - t)
        t = time.perf_counter()
        freeze(state, codec, pool)  # what BackgroundSaver does (the pool reuses the last copy)
        pooled.append(time.perf_counter() - t)
    # The metrics hooks: a tiny state on memory://, where the save is nearly all overhead,
    # with the counting layer and without it (its inner store put back).
    tiny = {"n": 1}
    frames = sm.layers.frames
    counting = frames.store

    def per_save(repeat: int = 2000) -> float:
        t = time.perf_counter()
        for _ in range(repeat):
            sm.save(tiny)
        return (time.perf_counter() - t) / repeat

    with_hooks = min(per_save() for _ in range(3))
    frames.store = counting.inner  # type: ignore[attr-defined]
    without = min(per_save() for _ in range(3))
    frames.store = counting
    return {
        "encode_ms": _median_ms(encodes),
        "copy_aliased_ms": _median_ms(copies),
        "freeze_ms": _median_ms(freezes),
        "freeze_pooled_ms": _median_ms(pooled),
        "tiny_save_us_with_counting_layer": round(with_hooks * 1e6, 1),
        "tiny_save_us_without": round(without * 1e6, 1),
    }


MODES: dict[str, dict[str, Any]] = {
    "background": {},
    "background_snapshot_encode": {"snapshot": "encode"},
    "background_encode_in_worker": {"encode_in_worker": True},
    # A bar loop: the bot's work between saves outlasts a save, so the worker is idle at each
    # call (above, 20 ms of work keeps it always busy and its encode holds the GIL the
    # caller's copy then waits for).
    "background_bar_loop": {"work": "2x sync"},
}


def measure_rounds(sm: StateManager, state: dict[str, Any], args: Any) -> dict[str, Any]:
    """``--rounds`` rounds of: the sync save (5 runs), then each background mode's loop, so
    that a drift of the machine's load hits every figure alike; each round's ratio is its
    mode's median call over that round's sync save, and the figures are medians of rounds."""
    rounds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        sync = measure_sync(sm, state, 5)
        one = {"sync": sync}
        for mode, options in MODES.items():
            one[mode] = measure_background(sm, state, args.iterations, sync["save_ms"], **options)
        rounds.append(one)
    out: dict[str, Any] = {
        "sync": {
            "save_ms": statistics.median(r["sync"]["save_ms"] for r in rounds),
            "load_ms": statistics.median(r["sync"]["load_ms"] for r in rounds),
            "last_save": rounds[-1]["sync"]["last_save"],
        }
    }
    for mode in MODES:
        out[mode] = {
            "save_call_ms": statistics.median(r[mode]["save_call_ms"] for r in rounds),
            "ratio_to_sync": statistics.median(r[mode]["ratio_to_sync"] for r in rounds),
            "ratio_per_round": [r[mode]["ratio_to_sync"] for r in rounds],
            "save_call_cpu_ms": statistics.median(r[mode]["save_call_cpu_ms"] for r in rounds),
            "landed": sum(r[mode]["landed"] for r in rounds),
            "superseded": sum(r[mode]["superseded"] for r in rounds),
            "failed": sum(r[mode]["failed"] for r in rounds),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="M")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lag-saves", type=int, default=5)
    parser.add_argument("--costs", type=int, default=7)
    parser.add_argument("--only", choices=["local", "s3"], action="append")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    state = make_state(args.size)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}",
        "python": platform.python_version(),
        "size": args.size,
        "raw_array_mb": round(raw_array_bytes(state) / 2**20, 1),
        "costs": measure_costs(state, args.costs),
    }
    moto, options = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, url, opts in (
                ("local", os.path.join(tmp, "s.bin"), None),
                ("s3", "s3://bench/m/s.bin", options),
            ):
                if args.only and name not in args.only:
                    continue
                print(f"{name} ...", file=sys.stderr)
                sm = StateManager(url, storage_options=opts, spool_dir=False)
                results[name] = measure_rounds(sm, state, args)
                results[name]["loop_lag"] = measure_async(sm, state, args.lag_saves)
    finally:
        moto.terminate()
        moto.wait()
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
