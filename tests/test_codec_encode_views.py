"""The encoder's private-pandas fast paths (``_values``, ``_m8``) write what the public
paths write, byte for byte, on every stack; a pandas where the probe fails uses the public
paths."""

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
