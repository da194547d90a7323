"""The encoder's fast paths (private pandas arrays, a Timestamp's doc reused) write what the
public paths write, byte for byte, on every stack; a pandas where the probe fails uses the
public paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from statevault.codec import Codec, _pd_common


def _state() -> dict[str, Any]:
    idx = pd.date_range("2024-03-31 00:30", periods=40, freq="15min", tz="Europe/Berlin")
    return {
        "f": pd.Series(np.linspace(0, 1, 40), index=idx, name="p"),
        "strided": pd.Series(np.arange(80.0)[::2]),
        "obj": pd.Series(["a", 1, None], dtype=object),
        "naive": pd.Series(pd.date_range("2024", periods=3, unit="s")),
        "ints": pd.Index(np.arange(5, dtype=">i8")),
        "frame": pd.DataFrame({"a": np.arange(3.0), "b": ["x", "y", "z"]}, index=idx[:3]),
        "dti": [pd.date_range("2024", periods=4, freq="D", unit=u) for u in ("s", "ms", "ns")],
    }


def _dump(codec: Codec, state: Any) -> bytes:
    return b"".join(bytes(c) for c in codec.dumps(state))


def test_the_probes_pass_on_this_stack() -> None:
    assert _pd_common._VALUES_FAST
    assert _pd_common._M8_FAST


@pytest.mark.parametrize("flag", ["_VALUES_FAST", "_M8_FAST"])
def test_fast_and_public_paths_write_the_same_bytes(
    flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = Codec()
    fast = _dump(codec, _state())
    monkeypatch.setattr(_pd_common, flag, False)
    assert _dump(codec, _state()) == fast


def test_a_timestamp_met_again_encodes_as_its_copies_do() -> None:
    # The encoder reuses the doc of a Timestamp object it met before in the same call (the
    # overview's shared start/end times): the bytes are those of distinct equal Timestamps.
    ts = pd.Timestamp("2024-10-27 00:30", tz="UTC").tz_convert("Europe/Berlin").as_unit("us")
    other = pd.Timestamp("2024-10-27 02:30").as_unit("ns").replace(fold=1)
    codec = Codec()
    shared = _dump(codec, {"a": [ts, ts, other, other], "b": {"x": ts}})
    copies = [
        ts.replace(microsecond=ts.microsecond),
        ts.replace(microsecond=ts.microsecond),
        other.replace(),
        other.replace(),
    ]
    assert copies[0] is not ts
    assert shared == _dump(codec, {"a": copies, "b": {"x": ts.replace(microsecond=ts.microsecond)}})
    back = codec.loads(b"".join(bytes(c) for c in codec.dumps([ts, ts, other])))
    assert back == [ts, ts, other]
    assert back[2].fold == 1
    assert back[0].tz == ts.tz
