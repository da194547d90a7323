"""Golden delta HEADs (tests/golden/delta/): every manifest layout a release wrote loads exactly.

Each folder is a HEAD and its packs as written by the code of its form; a change that cannot
read one fails here. After loading, a delta save over it (sharing its packs) must load back
exactly too: a new writer extends an old state in place.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from statevault.frame import FrameReader

from strategies import assert_same

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))

import delta_corpus

FORMS = sorted(p.name for p in delta_corpus.FOLDER.iterdir() if p.is_dir())


def _expected(bars: int = delta_corpus.BARS + 1) -> dict[str, Any]:
    v = delta_corpus.value(bars)
    return {
        "active_positions": v["active_positions"],
        "pair_states": v["pair_states"],
        **v["portfolio"],
    }


def test_the_forms_are_committed() -> None:
    assert {"layout1", "layout1-encrypted", "layout2", "layout2-encrypted"} <= set(FORMS)


def test_the_layout_2_form_holds_dictionary_compressed_sections() -> None:
    for form, kinds in (("layout1", {b"SVDS"}), ("layout2", {b"SVDS", b"SVDZ"})):
        data = (delta_corpus.FOLDER / form / "state.sv").read_bytes()
        reader = FrameReader(lambda a, b, d=data: d[a:b], size=len(data))
        sections = [memoryview(reader.section(i)) for i in range(len(reader.header.sections))]
        assert {bytes(s[:4]) for s in sections[:-1]} == kinds
        assert bytes(sections[-1][:4]) == b"SVDX"  # the index


@pytest.mark.parametrize("form", FORMS)
def test_golden_delta_head_loads_exactly_and_extends(form: str, tmp_path: Path) -> None:
    path = delta_corpus.copy(form, tmp_path)
    head = path.read_bytes()
    assert head[8] == 2  # a manifest, not a plain frame
    encrypted = form.endswith("-encrypted")
    m = delta_corpus.manager(path, encrypted=encrypted)
    got = m.load_trading_state()
    assert_same(got, _expected())
    # a delta save over the golden HEAD shares its packs, and loads back exactly
    packs = {
        p.name for p in (path.parent / "state.sv.packs").iterdir() if not p.name.startswith(".")
    }
    v = delta_corpus.value(delta_corpus.BARS + 2)
    m.save_trading(v["active_positions"], v["pair_states"], v["portfolio"])
    after = {
        p.name for p in (path.parent / "state.sv.packs").iterdir() if not p.name.startswith(".")
    }
    assert packs <= after
    assert len(after) == len(packs) + 1
    fresh = delta_corpus.manager(path, encrypted=encrypted)
    assert_same(fresh.load_trading_state(), _expected(delta_corpus.BARS + 2))
