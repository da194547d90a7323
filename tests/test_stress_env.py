"""Every slow test runs somewhere: each test file with a ``slow`` mark is in ``tox -e stress``.

The default run deselects ``slow`` (pyproject's addopts); a slow test in a file the stress env
does not name would run nowhere, a skipped test standing in for what it checks (two delta
crash tests were in that state until this check).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SLOW = re.compile(r"pytest\.mark\.slow\b")  # a decorator, a param's marks, a pytestmark


def _stress_files() -> set[str]:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    commands = tox["testenv:stress"]["commands"]
    return set(re.findall(r"tests/[\w/]+\.py", commands))


def _files_with_slow_tests() -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if _SLOW.search(p.read_text(encoding="utf-8"))
    }


def test_every_file_with_slow_tests_is_in_the_stress_env() -> None:
    missing = _files_with_slow_tests() - _stress_files()
    assert not missing, f"slow tests that no tox env runs: add {sorted(missing)} to tox -e stress"


def test_the_stress_env_names_only_files_that_exist() -> None:
    stale = {f for f in _stress_files() if not (ROOT / f).is_file()}
    assert not stale, f"tox -e stress names missing files: {sorted(stale)}"
