"""Delta saves on the tick workload: bytes and time per save, delta vs full vs pickle+zstd.

Every tick appends one bar to every series of every pair (index and values grow at the end)
and rolls every stats frame by one row, then saves; side by side in one run, on real files:
``TradingStateManager`` with ``delta=True`` (the default), with ``delta=False`` (one
self-contained frame per save), and pickle 5 + zstd written atomically (the baseline).
Bytes are what the process wrote (``/proc/self/io`` wchar around each save), not bytes on
disk. The planner is whatever ``statevault.delta.planner`` ships (the placeholder rewrites a
changed buffer whole; the append-aware planner writes the new bars only).

    python -m bench.delta_ticks --size M --ticks 50
    python -m bench.delta_ticks --size M --ticks 70 --s3

``--s3``: the delta manager alone on S3 (an in-process moto server on 127.0.0.1, as in the
tests), with ``keep_versions=3``; requests are counted on the server (its access log) and the
bytes a tick uploads are the sizes of the objects its PUTs stored (read back after each save,
outside the count), against the first (full) save's uploads and a pickle+zstd of the state.
Garbage collection (every 16 saves) and the orphan sweep (every 64) run as they ship.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import zstandard

from bench.gen_state import make_trading_parts

__all__ = ["main", "tick"]


def _wchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0  # pragma: no cover - not Linux


def tick(pair_states: dict[str, Any]) -> dict[str, Any]:
    """One bar more for every series, every stats frame rolled by one row."""
    out = {}
    for pair, ps in pair_states.items():
        new = dict(ps)
        for key in ("price1", "price2", "spread"):
            s = ps[key]
            when = s.index[-1] + pd.Timedelta(minutes=1)
            new[key] = pd.concat([s, pd.Series([s.iloc[-1] * 1.0001], index=[when], name=s.name)])
        stats = ps["stats"]
        row = stats.iloc[[-1]] * 1.001
        row.index = [stats.index[-1] + pd.Timedelta(minutes=1)]
        new["stats"] = pd.concat([stats.iloc[1:], row])
        out[pair] = new
    return out


class _AppendPlanner:
    """A stand-in append planner (``--append-planner``) until the planner half of issue 12
    lands: keeps the previous plan's whole-piece extents whose bytes are unchanged (checked
    by keyed hash), the rest of the buffer is one new piece."""

    def __init__(self, key: bytes) -> None:
        from statevault.delta.planner import Planner

        self._base = Planner(key)
        self.piece_id = self._base.piece_id

    def plan(self, data: Any, previous: Any) -> Any:
        from statevault.delta.planner import BufferPlan, Extent

        view = memoryview(data).cast("B")
        kept, at = [], 0
        for e in previous.extents if previous is not None else ():
            end = at + e.length
            if e.offset or end > len(view) or self.piece_id(view[at:end]) != e.piece:
                break
            kept.append(e)
            at = end
        if at == len(view):
            return BufferPlan(tuple(kept), at), []
        pid = self.piece_id(view[at:])
        return BufferPlan((*kept, Extent(pid, 0, len(view) - at)), len(view)), [(pid, view[at:])]


def _pickle_zstd(path: Path) -> Callable[[dict[str, Any]], None]:
    cctx = zstandard.ZstdCompressor(level=3)

    def save(state: dict[str, Any]) -> None:
        data = cctx.compress(pickle.dumps(state, protocol=5))
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    return save


def run(
    size: str, ticks: int, workdir: Path, *, append_planner: bool = False
) -> dict[str, dict[str, float]]:
    from statevault import TradingStateManager

    positions, pairs, portfolio = make_trading_parts(size)
    delta = TradingStateManager(workdir / "delta.sv", spool_dir=False, keep_versions=3)
    if append_planner and delta.layers.commit.delta is not None:
        delta.layers.commit.delta.planner_class = _AppendPlanner  # type: ignore[assignment]
    full = TradingStateManager(workdir / "full.sv", spool_dir=False, keep_versions=3, delta=False)
    baseline = _pickle_zstd(workdir / "state.pkl.zst")
    methods: dict[str, Callable[[dict[str, Any]], None]] = {
        "statevault delta": lambda p: delta.save_trading(positions, p, portfolio) and None,
        "statevault full": lambda p: full.save_trading(positions, p, portfolio) and None,
        "pickle5+zstd": lambda p: baseline({"pairs": p, "positions": positions, **portfolio}),
    }
    figures: dict[str, dict[str, list[float]]] = {
        m: {"bytes": [], "seconds": [], "cpu": []} for m in methods
    }
    for fn in methods.values():
        fn(pairs)  # the first (full) save of each, not counted
    for _ in range(ticks):
        pairs = tick(pairs)
        for name, fn in methods.items():
            w, t, c = _wchar(), time.perf_counter(), time.process_time()
            fn(pairs)
            figures[name]["seconds"].append(time.perf_counter() - t)
            figures[name]["cpu"].append(time.process_time() - c)
            figures[name]["bytes"].append(_wchar() - w)
    out = {}
    for name, f in figures.items():
        out[name] = {
            "median_bytes": statistics.median(f["bytes"]),
            "max_bytes": max(f["bytes"]),
            "median_ms": 1000 * statistics.median(f["seconds"]),
            "max_ms": 1000 * max(f["seconds"]),
            # CPU time of the process: tells the work from waiting for a shared machine's cores
            "median_cpu_ms": 1000 * statistics.median(f["cpu"]),
        }
    fresh = TradingStateManager(workdir / "delta.sv", spool_dir=False)
    t = time.perf_counter()
    got = fresh.load_trading_state()
    out["statevault delta"]["load_ms"] = 1000 * (time.perf_counter() - t)
    first = next(iter(pairs))
    loaded = got["pair_states"][first]["price1"].to_numpy()
    assert np.array_equal(loaded, pairs[first]["price1"].to_numpy())
    return out


class _AccessLog(logging.Handler):
    """werkzeug's access-log lines: one per request the moto server answers."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


_REQUEST = re.compile(r"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/")


def _requests(lines: list[str]) -> list[tuple[str, str]]:
    """(method, key path) of each logged request (moto's own API left out)."""
    found = []
    for line in lines:
        m = _REQUEST.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m and not m.group(2).startswith("/moto-api"):
            found.append((m.group(1), unquote(m.group(2).split("?", 1)[0])))
    return found


def run_s3(size: str, ticks: int) -> dict[str, Any]:
    """Requests and uploaded bytes per tick save of a delta manager on S3 (moto)."""
    import botocore.session
    from moto.server import ThreadedMotoServer

    from statevault import TradingStateManager

    log = _AccessLog()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_bucket(Bucket="bench")
        options = {
            "key": "bench",
            "secret": "bench",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        sm = TradingStateManager(
            "s3://bench/state.sv", storage_options=options, spool_dir=False, keep_versions=3
        )
        positions, pairs, portfolio = make_trading_parts(size)

        def save() -> tuple[list[tuple[str, str]], int]:
            mark = len(log.lines)
            sm.save_trading(positions, pairs, portfolio)
            sent = _requests(log.lines[mark:])
            # Uploaded: the request bodies statevault sent (last_save.bytes_written counts each
            # write's bytes; a version slot kept by a server-side copy sends none). The log
            # shows each PUT with the size of the object it left, copies included.
            record = sm.last_save
            assert record is not None
            stored = 0
            for i, (method, path) in enumerate(sent):
                if method == "PUT":
                    key = path.removeprefix("/bench/")
                    size = int(client.head_object(Bucket="bench", Key=key)["ContentLength"])
                    sent[i] = (method, f"{path} ({size:,} B)")
                    stored += size
            assert record.bytes_written <= stored, (record.bytes_written, stored)
            return sent, record.bytes_written

        first_requests, full = save()
        per_tick: list[tuple[int, int, list[tuple[str, str]]]] = []
        for _ in range(ticks):
            pairs = tick(pairs)
            sent, uploaded = save()
            per_tick.append((len(sent), uploaded, sent))
        state = {"pairs": pairs, "positions": positions, **portfolio}
        pickled = len(zstandard.ZstdCompressor(level=3).compress(pickle.dumps(state, 5)))
    finally:
        server.stop()
        werkzeug.removeHandler(log)
    counts = [n for n, _, _ in per_tick]
    kinds: dict[int, int] = {}
    for n in counts:
        kinds[n] = kinds.get(n, 0) + 1
    return {
        "full_bytes": full,
        "first_requests": len(first_requests),
        "pickle_bytes": pickled,
        "requests": counts,
        "uploaded": [u for _, u, _ in per_tick],
        "kinds": kinds,
        "largest": max(per_tick, key=lambda t: t[0])[2],
        "median": sorted(per_tick, key=lambda t: t[1])[len(per_tick) // 2][2],
    }


def _print_s3(size: str, ticks: int, f: dict[str, Any]) -> None:
    uploaded, requests = f["uploaded"], f["requests"]
    full, pickled = f["full_bytes"], f["pickle_bytes"]
    print(f"size {size}, {ticks} tick saves on S3 (moto), keep_versions=3:")
    print(f"first (full) save: {f['first_requests']} requests, {full:,} bytes uploaded")
    print(f"pickle5+zstd of the final state: {pickled:,} bytes")
    med = statistics.median(uploaded)
    print(
        f"uploaded per tick: median {med:,.0f} ({100 * med / full:.2f} % of the full save, "
        f"{100 * med / pickled:.2f} % of pickle+zstd), max {max(uploaded):,}"
    )
    print(
        f"requests per tick: median {statistics.median(requests):.0f}, max {max(requests)}, "
        f"mean {statistics.mean(requests):.2f}; ticks by count {dict(sorted(f['kinds'].items()))}"
    )
    print("a median tick's requests:", ", ".join(f"{m} {p}" for m, p in f["median"]))
    print("the largest tick's requests:", ", ".join(f"{m} {p}" for m, p in f["largest"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="M")
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--append-planner", action="store_true")
    parser.add_argument("--s3", action="store_true", help="requests and uploads on moto S3")
    args = parser.parse_args(argv)
    if args.s3:
        _print_s3(args.size, args.ticks, run_s3(args.size, args.ticks))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="sv-delta-bench-"))
    try:
        figures = run(args.size, args.ticks, workdir, append_planner=args.append_planner)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = figures["pickle5+zstd"]
    print(f"size {args.size}, {args.ticks} ticks (append one bar, roll stats), per save:")
    print(
        f"{'method':<18}{'median bytes':>14}{'% of pickle':>12}{'median ms':>11}{'max ms':>9}"
        f"{'median CPU ms':>15}"
    )
    for name, f in figures.items():
        share = 100 * f["median_bytes"] / base["median_bytes"]
        print(
            f"{name:<18}{f['median_bytes']:>14,.0f}{share:>11.1f}%"
            f"{f['median_ms']:>11.1f}{f['max_ms']:>9.1f}{f['median_cpu_ms']:>15.1f}"
        )
    load = figures["statevault delta"].get("load_ms")
    if load is not None:
        print(f"fresh load of the delta state after the ticks: {load:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
