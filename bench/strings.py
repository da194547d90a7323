"""Strings benchmark: a DataFrame of 10^6 short strings (and a string index) through a local
StateManager and through pickle protocol 5, side by side in one run.

Run from the repository root: ``python -m bench.strings`` (``--rows``, ``--repeat``, ``--dir``).
Prints the median save and load time of each method over ``--repeat`` timed runs (after one
discarded warm-up) and statevault's ratio to pickle 5. The target (issue 9) is statevault
within 2x of pickle protocol 5 for save and for load. Figures and the machine they were taken
on are recorded in bench/README.md ("Strings").
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from statevault import StateManager

KINDS = ("default", "python", "pyarrow", "category")
"""String forms ``--strings`` can choose: the stack's default ``str`` (pandas 3: pyarrow storage
if installed, else python storage with NaN; pandas 2.2: object columns of str), StringDtype
with python or pyarrow storage, or categoricals of strings (the index stays ``default``)."""


def as_kind(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` with its two string columns in the string form ``kind`` (one of ``KINDS``)."""
    if kind == "default":
        return df
    dtype: Any = "category" if kind == "category" else pd.StringDtype(kind)
    return df.astype({"symbol": dtype, "side": dtype})


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` short strings in two columns plus a float column, on an index of strings."""
    rng = np.random.default_rng(seed)
    symbols = np.array(["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "EURGBP", "USDCHF"])
    sides = np.array(["buy", "sell"])
    df = pd.DataFrame(
        {
            "symbol": symbols[rng.integers(0, len(symbols), rows)],
            "side": sides[rng.integers(0, 2, rows)],
            "px": rng.standard_normal(rows),
        },
        index=pd.Index([f"T{i:07d}" for i in range(rows)], name="ticket"),
    )
    return df


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pickle5_save(state: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=5)


def pickle5_fsync_save(state: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=5)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def pickle5_load(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # the bench reads back only the file it has just written


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    os.sync()  # no writeback left over from the previous method
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the work directory goes")
    parser.add_argument("--strings", choices=KINDS, default="default", help="string form")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of >= 5 runs)")

    df = as_kind(make_frame(args.rows), args.strings)
    state = {"trades": df}
    work = Path(tempfile.mkdtemp(prefix="sv-bench-strings-", dir=args.dir))
    try:
        methods: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
        p5 = work / "state.pkl"
        methods.append(("pickle5", lambda: pickle5_save(state, p5), lambda: pickle5_load(p5)))
        p5f = work / "state-fsync.pkl"
        methods.append(
            ("pickle5+fsync", lambda: pickle5_fsync_save(state, p5f), lambda: pickle5_load(p5f))
        )
        raw = StateManager(str(work / "raw.sv"), compression=None, keep_versions=0)
        methods.append(("statevault (no zstd, no history)", lambda: raw.save(state), raw.load))
        # delta (the default since the delta store) reads through packs: measured apart
        plain = StateManager(str(work / "plain.sv"), compression=None, keep_versions=0, delta=False)
        methods.append(
            ("statevault (no zstd, no history, no delta)", lambda: plain.save(state), plain.load)
        )
        dflt = StateManager(str(work / "default.sv"))
        methods.append(
            ("statevault (defaults: zstd, history)", lambda: dflt.save(state), dflt.load)
        )

        for name, save, load in methods:  # warm-up, and the exactness check
            save()
            pd.testing.assert_frame_equal(load()["trades"], df, check_exact=True)
            print(f"  {name}: warm", file=sys.stderr)
        saves: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        loads: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):  # round-robin: a drift of the machine hits all alike
            for name, save, load in methods:
                saves[name].append(_timed(save))
                loads[name].append(_timed(load))
        load_after = os.getloadavg()[0]
        results = {
            name: (statistics.median(saves[name]), statistics.median(loads[name]))
            for name, _, _ in methods
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base_save, base_load = results["pickle5"]
    durable_save, durable_load = results["pickle5+fsync"]
    print(
        f"# {args.rows:,} rows: 2 string columns + a string index ({3 * args.rows:,} strings), "
        f"pandas {pd.__version__}, numpy {np.__version__}, string dtype {df['symbol'].dtype!r}"
    )
    print(f"# {_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# medians of {args.repeat} runs, load average {load_before:.1f} -> {load_after:.1f}")
    print("| method | save s | load s | save / pickle5 | load / pickle5 | save / +fsync |")
    print("|---|---|---|---|---|---|")
    for name, (save_s, load_s) in results.items():
        print(
            f"| {name} | {save_s:.3f} | {load_s:.3f} | {save_s / base_save:.2f}x "
            f"| {load_s / base_load:.2f}x | {save_s / durable_save:.2f}x |"
        )
    for sv in ("statevault (no zstd, no history)", "statevault (no zstd, no history, no delta)"):
        sv_save, sv_load = results[sv]
        for label, ref_save, ref_load in (
            ("pickle5", base_save, base_load),
            ("pickle5+fsync", durable_save, durable_load),
        ):
            ok = sv_save <= 2 * ref_save and sv_load <= 2 * ref_load
            print(f"{sv}: target (within 2x of {label}, save and load): {'met' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
