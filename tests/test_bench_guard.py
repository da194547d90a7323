"""bench/guard.py: which ratios fail the guard (the comparison only; no bench is run here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.guard import BASELINE, TOLERANCE, compare, guarded_methods, main


def _results(sv_load: float, sv_save: float = 0.1, status: str = "ok") -> dict[str, Any]:
    def row(method: str, save: float, load: float, state: str = "ok") -> dict[str, Any]:
        return {"method": method, "status": state, "save_s": save, "load_s": load}

    return {
        "sizes": {
            "M": {
                "rows": [
                    row("pickle5", 0.1, 0.1),
                    row("statevault", sv_save, sv_load, status),
                ]
            }
        }
    }


BASE = {"ratios": {"M": {"statevault": {"against": "pickle5", "save": 1.0, "load": 1.5}}}}


def test_within_tolerance_passes_and_beyond_it_fails() -> None:
    edge = 1.5 * (1 + TOLERANCE) * 0.1 * 0.999
    (save, load) = compare(BASE, _results(sv_load=edge))
    assert (save.what, load.what) == ("save", "load")
    assert not save.failed(TOLERANCE)
    assert not load.failed(TOLERANCE)
    over = 1.5 * (1 + TOLERANCE) * 0.1 * 1.01
    load = compare(BASE, _results(sv_load=over))[1]
    assert load.failed(TOLERANCE)
    assert "recorded 1.50x, limit 1.72x" in load.describe(TOLERANCE)


def test_faster_is_never_a_failure() -> None:
    assert not any(f.failed(TOLERANCE) for f in compare(BASE, _results(0.01, 0.01)))


def test_a_row_that_did_not_run_fails() -> None:
    findings = compare(BASE, _results(0.1, status="error: boom"))
    assert all(f.measured is None and f.failed(TOLERANCE) for f in findings)
    assert "not measured" in findings[0].describe(TOLERANCE)


def test_main_exit_status_from_results_files(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(BASE))
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_results(0.15)))
    bad.write_text(json.dumps(_results(0.2)))
    assert main(["--baseline", str(base), "--results", str(good)]) == 0
    assert main(["--baseline", str(base), "--results", str(bad)]) == 1
    assert main(["--baseline", str(base), "--results", str(bad), "--tolerance", "0.5"]) == 0


def test_the_recorded_baseline_guards_the_issue_16_ratios() -> None:
    baseline = json.loads(BASELINE.read_text())
    for size in ("M",):
        entries = baseline["ratios"][size]
        assert {(m, e["against"]) for m, e in entries.items()} >= {
            ("statevault", "pickle5"),
            ("statevault+zstd", "pickle5+zstd"),
            ("statevault+zstd+fernet", "pickle5+zstd+fernet"),
        }
        assert all({"save", "load"} <= set(e) for e in entries.values())
    assert set(guarded_methods(baseline)) >= {"statevault", "pickle5"}
