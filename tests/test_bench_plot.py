"""bench/plot.py: the figures it draws are the ones bench.run measured (no drawing here)."""

from __future__ import annotations

from bench.plot import METHODS, series


def _results() -> dict[str, object]:
    def row(method: str, save: float | None, status: str = "ok") -> dict[str, object]:
        return {"method": method, "status": status, "save_s": save, "stored_bytes": 100}

    return {
        "sizes": {
            "S": {"rows": [row("pickle5", 0.01), row("statevault", 0.02)]},
            "M": {"rows": [row("pickle5", 0.5, status="failed: boom"), row("statevault", 0.3)]},
        }
    }


def test_series_per_method_and_size_in_order() -> None:
    sizes, save = series(_results(), "save_s")
    assert sizes == ["S", "M"]
    assert save == {"pickle5": [0.01, None], "statevault": [0.02, 0.3]}  # a failed run is a gap
    assert list(save) == [m for m in METHODS if m in save]


def test_methods_that_never_ran_are_left_out() -> None:
    _, stored = series(_results(), "stored_bytes")
    assert set(stored) == {"pickle5", "statevault"}
