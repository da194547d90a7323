"""Golden delta states (tests/golden/delta/<form>/): a HEAD manifest and its packs, per form.

Each form is a manifest layout a release wrote; every later release must load it exactly
(docs/format.md, "Delta saves"). ``python tests/golden/delta_corpus.py FORM`` writes a new
form's folder (never an existing one): run it once, when a change adds a manifest layout, with
the code that writes that layout, and commit the folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from statevault import TradingStateManager

FOLDER = Path(__file__).resolve().parent / "delta"
#: An encryption key for the encrypted forms (test data, not a secret).
KEY = "vkaP4gQxLvQw87cWImmmRMDFLHQLxFIgtUuqcLOmGaA="
BARS = 600


def _pair(k: int, bars: int) -> dict[str, Any]:
    rng = np.random.default_rng(k)
    # One unit on every stack (pandas 3 defaults to us, 2.2 to ns).
    index = pd.date_range("2024-06-01", periods=bars, freq="min", tz="UTC", name="time")
    index = index.as_unit("ns")
    price = pd.Series(1.0 + rng.random(bars).cumsum() / 1000, index=index, name=f"S{k}")
    stats = pd.DataFrame({"z": rng.normal(size=5), "mean": rng.random(5)}, index=index[-5:])
    # Object-dtype labels: every stack builds and loads them alike (pandas 3's default 'str'
    # labels differ by stack and pandas 2.2 cannot load them; the stacks' own suite covers that).
    stats.columns = pd.Index(["z", "mean"], dtype=object)
    return {"price": price, "spread": price * 0.5 - 0.1, "stats": stats, "hedge": 0.5 + k}


def value(bars: int = BARS + 1) -> dict[str, Any]:
    """The state the golden HEADs hold: 3 pairs, ``bars`` bars each (one more than the first
    save, so the HEAD references two packs and extents of both)."""
    return {
        "active_positions": {"P0": {"side": "long", "lots": (0.1, 0.2), "ticket": 12345}},
        "pair_states": {f"P{k}": _pair(k, bars) for k in range(3)},
        "portfolio": {"equity": 10_000.5, "peak": 10_250.0},
    }


def manager(path: Path, *, encrypted: bool) -> TradingStateManager:
    return TradingStateManager(
        path, spool_dir=False, keep_versions=0, encryption_key=KEY if encrypted else None
    )


def write(form: str, *, encrypted: bool) -> Path:
    folder = FOLDER / form
    if folder.exists():
        raise SystemExit(f"{folder} exists: golden forms are never rewritten")
    folder.mkdir(parents=True)
    m = manager(folder / "state.sv", encrypted=encrypted)
    for bars in (BARS, BARS + 1):
        v = value(bars)
        m.save_trading(v["active_positions"], v["pair_states"], v["portfolio"])
    for lock in folder.rglob(".*.lock"):
        lock.unlink()
    return folder


def copy(form: str, to: Path) -> Path:
    """A copy of ``form``'s folder under ``to``; returns its state's path."""
    shutil.copytree(FOLDER / form, to / form)
    return to / form / "state.sv"


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(write(name, encrypted=name.endswith("-encrypted")))
