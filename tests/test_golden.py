"""The golden corpus (tests/golden/files/): every committed state file loads exactly, forever.

A later change that cannot read one of these files fails here: that is the format's
compatibility promise (docs/format.md). Every family defined in tests/golden/families_*.py must
have its committed file; write missing ones with tests/golden/make_golden.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))

import corpus
import portability

FAMILIES = corpus.families()


def test_every_family_has_a_committed_file() -> None:
    missing = [n for n in FAMILIES if not (corpus.FILES / f"{n}{corpus.SUFFIX}").exists()]
    assert not missing, f"no golden file for {missing}: run tests/golden/make_golden.py"


def test_every_committed_file_belongs_to_a_family() -> None:
    names = {p.name[: -len(corpus.SUFFIX)] for p in corpus.FILES.glob(f"*{corpus.SUFFIX}")}
    assert names, "the golden corpus is empty"
    assert names <= set(FAMILIES), f"files of no family: {sorted(names - set(FAMILIES))}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_golden_file_loads_exactly(name: str) -> None:
    outcome = corpus.check_file(corpus.FILES / f"{name}{corpus.SUFFIX}", FAMILIES[name])
    assert outcome in ("exact, saved again", f"refused without {FAMILIES[name].requires}")


def test_portability_write_then_check(tmp_path: Path) -> None:
    # The script .ci/stacks runs across stacks, run here within one: write, then read back.
    assert portability.main(["write", str(tmp_path / "here")]) == 0
    written = {p.name for p in (tmp_path / "here").glob(f"*{corpus.SUFFIX}")}
    buildable = {n for n, f in FAMILIES.items() if f.value() is not None}
    assert written == {f"{n}{corpus.SUFFIX}" for n in buildable}
    assert portability.main(["check", str(tmp_path / "here")]) == 0


def test_check_fails_on_a_difference(tmp_path: Path) -> None:
    family = FAMILIES["builtin"]
    path = tmp_path / f"builtin{corpus.SUFFIX}"
    value = family.build()
    value["ints"] = [*value["ints"][:-1], 0]
    corpus.manager(path).save(value)
    with pytest.raises(AssertionError, match="ints"):
        corpus.check_file(path, family)
