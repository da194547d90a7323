"""bench.delta_ticks' S3 mode runs end to end on the S state (its figures are recorded in
bench/README.md; here only what the counting must get right is asserted)."""

from __future__ import annotations

import pytest

from bench import delta_ticks


@pytest.mark.s3
def test_the_s3_mode_counts_requests_and_uploads_on_the_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = delta_ticks.run_s3("S", 2)
    assert figures["first_requests"] >= 3  # probe, pack, HEAD (+ the version slot)
    assert figures["requests"] == [3, 3]  # pack, HEAD, version slot
    assert all(u > 0 for u in figures["uploaded"])
    assert figures["full_bytes"] > 0
    puts = [p for m, p in figures["median"] if m == "PUT"]
    keys = [p.split(" ")[0] for p in puts]
    assert keys[0].startswith("/bench/state.sv.packs/")
    assert keys[1] == "/bench/state.sv"
    assert keys[2].startswith("/bench/state.sv.versions/")
    delta_ticks._print_s3("S", 2, figures)
    assert "requests per tick: median 3, max 3" in capsys.readouterr().out
