"""bench.strings runs end to end on a small frame (its figures are recorded, never asserted)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench import strings


def test_strings_bench_completes_and_checks_exactness(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert strings.main(["--rows", "2000", "--repeat", "5", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| statevault (no zstd, no history) |" in out
    assert "target (within 2x of pickle5, save and load):" in out


def test_strings_bench_frame_shape() -> None:
    df = strings.make_frame(10)
    assert list(df.columns) == ["symbol", "side", "px"]
    assert df.index.name == "ticket"
    assert df.index.is_unique
    assert len(df) == 10


@pytest.mark.parametrize("kind", ["python", "category"])
def test_strings_bench_kinds(kind: str) -> None:
    df = strings.as_kind(strings.make_frame(10), kind)
    expected = "category" if kind == "category" else pd.StringDtype("python")
    assert df["symbol"].dtype == expected
    assert df["side"].dtype == expected
    assert df["px"].dtype == "float64"
