"""Benchmark guard: fail when a recorded ratio to a baseline regresses by more than 15 %.

``python -m bench.guard [--results OUT.json] [--baseline bench/baseline.json] [--size M ...]
[--repeat N] [--tolerance 0.15]``

Runs ``bench.run`` (statevault and its pickle baselines, side by side in one run) unless
``--results`` names the JSON of a run made already, then compares each guarded ratio
(statevault's time over its baseline's, for a save and a load) with the one recorded in
``bench/baseline.json``, the machine-readable copy of the figures in bench/README.md ("Full
saves and loads", issue 16). Ratios, not times: machines differ, a ratio measured in one run
on one machine mostly does not. Exit status 1 lists every ratio above ``recorded x (1 +
tolerance)`` and every guarded ratio the run could not measure; 0 otherwise. ``tox -e bench``
runs it; it is not part of the test suite (tests/test_bench_guard.py tests the comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASELINE = Path(__file__).with_name("baseline.json")
TOLERANCE = 0.15

__all__ = ["BASELINE", "TOLERANCE", "Finding", "compare", "measured_ratios", "main"]


@dataclass(frozen=True)
class Finding:
    """One guarded ratio: what was recorded, what this run measured (None: not measured)."""

    size: str
    method: str
    against: str
    what: str  # "save" or "load"
    recorded: float
    measured: float | None

    def limit(self, tolerance: float) -> float:
        return self.recorded * (1 + tolerance)

    def failed(self, tolerance: float) -> bool:
        return self.measured is None or self.measured > self.limit(tolerance)

    def describe(self, tolerance: float) -> str:
        got = "not measured" if self.measured is None else f"{self.measured:.2f}x"
        return (
            f"{self.size} {self.method} {self.what} vs {self.against}: {got}, recorded "
            f"{self.recorded:.2f}x, limit {self.limit(tolerance):.2f}x"
        )


def measured_ratios(results: dict[str, Any]) -> dict[tuple[str, str, str, str], float]:
    """(size, method, against, save|load) -> method's median time over the baseline's, for
    every pair of rows of a ``bench.run --json`` result that both ran."""
    out: dict[tuple[str, str, str, str], float] = {}
    for size, data in results.get("sizes", {}).items():
        rows = {r["method"]: r for r in data.get("rows", []) if r.get("status") == "ok"}
        for method, row in rows.items():
            for against, base in rows.items():
                for what in ("save", "load"):
                    a, b = row.get(f"{what}_s"), base.get(f"{what}_s")
                    if a is not None and b:
                        out[(size, method, against, what)] = a / b
    return out


def compare(baseline: dict[str, Any], results: dict[str, Any]) -> list[Finding]:
    """Every ratio ``baseline`` guards, with what ``results`` measured for it.

    ``baseline["ratios"]``: ``{size: {method: {"against": name, "save": x, "load": y}}}``
    (either of save/load may be left out).
    """
    measured = measured_ratios(results)
    findings: list[Finding] = []
    for size, methods in baseline["ratios"].items():
        for method, entry in methods.items():
            against = entry["against"]
            for what in ("save", "load"):
                if what in entry:
                    got = measured.get((size, method, against, what))
                    findings.append(Finding(size, method, against, what, float(entry[what]), got))
    return findings


def guarded_methods(baseline: dict[str, Any]) -> list[str]:
    """The bench methods a run needs to measure every guarded ratio."""
    names: dict[str, None] = {}
    for methods in baseline["ratios"].values():
        for method, entry in methods.items():
            names.setdefault(method)
            names.setdefault(entry["against"])
    return list(names)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guard", description=__doc__)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--results", type=Path, default=None, help="a bench.run --json output")
    parser.add_argument("--size", nargs="+", default=None, help="sizes to run (default: M)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--tolerance", type=float, default=None, help="default: the baseline's, else 0.15"
    )
    parser.add_argument("--dir", type=Path, default=None, help="bench work dir parent")
    args = parser.parse_args(argv)
    baseline = json.loads(args.baseline.read_text())
    tolerance = (
        args.tolerance if args.tolerance is not None else baseline.get("tolerance", TOLERANCE)
    )
    if args.results is not None:
        results = json.loads(args.results.read_text())
    else:
        from .run import main as run_main

        sizes = args.size or ["M"]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "results.json"
            run_argv = ["--size", *sizes, "--repeat", str(args.repeat), "--no-memory"]
            run_argv += ["--only", *guarded_methods(baseline), "--json", str(out)]
            if args.dir is not None:
                run_argv += ["--dir", str(args.dir)]
            run_main(run_argv)
            results = json.loads(out.read_text())
    ran = set(results.get("sizes", {}))
    findings = [f for f in compare(baseline, results) if f.size in ran]
    if not findings:
        print("bench guard: no guarded ratio for the sizes run", file=sys.stderr)
        return 1
    failed = [f for f in findings if f.failed(tolerance)]
    print(f"\nbench guard (tolerance {tolerance:.0%}, baseline {args.baseline}):")
    for f in findings:
        print(f"  {'FAIL' if f in failed else 'ok  '}  {f.describe(tolerance)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
