"""The codec's type families: one table, explicit loading, no import cycle, no import-time side
effects, and the same merged tables whatever order the families load in."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

from statevault.codec import _base, _core
from statevault.codec._families import FAMILIES, Family

CODEC_DIR = Path(_core.__file__).parent


def _runtime_imports(path: Path) -> set[str]:
    """statevault.codec modules a module imports when it runs (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "statevault.codec":
                    found.update(f"statevault.codec.{a.name}" for a in node.names)
                elif node.module.startswith("statevault.codec."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("statevault.codec."))
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(tree.body)
    return found


def test_codec_modules_have_no_import_cycle() -> None:
    graph = {
        f"statevault.codec.{p.stem}": _runtime_imports(p)
        for p in CODEC_DIR.glob("*.py")
        if p.stem != "__init__"
    }
    for engine in ("_core", "_base", "_encoder", "_decoder", "_fail"):
        assert "statevault.codec._builtin" not in graph[f"statevault.codec.{engine}"]
    done: set[str] = set()

    def walk(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, f"import cycle: {' -> '.join((*stack, module))}"
        if module in done or module not in graph:
            return
        for dep in sorted(graph[module]):
            walk(dep, (*stack, module))
        done.add(module)

    for module in sorted(graph):
        walk(module, ())


def test_every_family_module_imports_alone_without_side_effects() -> None:
    for family in FAMILIES:
        code = (
            "import importlib\n"
            "from statevault.codec import _base\n"
            f"m = importlib.import_module({family.module!r})\n"
            "assert not _base.BASE_ENCODERS and not _base.BASE_DECODERS, 'import registered'\n"
            "assert isinstance(m.ENCODERS, dict) and isinstance(m.DECODERS, dict)\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)


def test_every_tag_is_within_its_familys_prefix() -> None:
    import importlib

    for family in FAMILIES:
        module = importlib.import_module(family.module)
        for tag in module.DECODERS:
            owner = _base.family_of_tag(tag)
            assert owner is (None if family.eager else family), (family.module, tag)


_DUMP = (
    "import sys\n"
    "from statevault.codec import _base, _core, Codec\n"
    "from statevault.codec._families import FAMILIES\n"
    "lazy = [f for f in FAMILIES if not f.eager]\n"
    "order = lazy if sys.argv[1] == 'forward' else lazy[::-1]\n"
    "for f in order:\n"
    "    _base.load_family(f)\n"
    "Codec().tables()\n"
    "enc = sorted((_core.type_label(t), f.__module__ + '.' + f.__qualname__)\n"
    "             for t, f in _base.BASE_ENCODERS.items())\n"
    "dec = sorted((t, f.__module__ + '.' + f.__qualname__)\n"
    "             for t, f in _base.BASE_DECODERS.items())\n"
    "sub = sorted(_core.type_label(t) for t in _base.BASE_SUBCLASS_ENCODERS)\n"
    "print(repr((enc, dec, sub)))\n"
)


def test_merged_tables_do_not_depend_on_load_order() -> None:
    outs = [
        subprocess.run(
            [sys.executable, "-c", _DUMP, order], check=True, capture_output=True, text=True
        ).stdout
        for order in ("forward", "reverse")
    ]
    assert outs[0] == outs[1]
    for tag in ("np.ndarray", "pd.Series", "tz.pytz", "zoneinfo"):
        assert repr(tag) in outs[0]


def test_a_family_that_breaks_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    rogue = types.ModuleType("statevault_test_rogue_family")
    rogue.ENCODERS = {int: lambda e, o, d: o}  # type: ignore[attr-defined]
    rogue.DECODERS = {"x.thing": lambda d, v: v}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, rogue.__name__, rogue)
    _core.Codec().tables()  # the standard library family is loaded: int is taken
    with pytest.raises(RuntimeError, match="breaks the family table"):
        _base.load_family(Family(rogue.__name__, ("rogue",), "x.", ""))
    assert rogue.__name__ not in _base._loaded
    assert "x.thing" not in _base.BASE_DECODERS


def test_missing_family_library_names_the_install_hint() -> None:
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"
        "from statevault.codec import Codec, Encoded\n"
        "from statevault.errors import DecodeError\n"
        "doc = {'a': {'$t': 'np.ndarray', 'dtype': '<f8', 'shape': [0], 'buf': 0}}\n"
        "try:\n"
        "    Codec().decode(Encoded(doc, [memoryview(b'')]))\n"
        "except DecodeError as e:\n"
        "    print(e.path, '|', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("state['a'] | ")
    assert "pip install 'statevault[pandas]'" in out.stdout


def test_families_sharing_a_root_all_load_and_a_missing_optional_one_is_skipped() -> None:
    code = (
        "import sys, types, fractions\n"
        "from statevault.codec import _base, _core, Codec\n"
        "from statevault.codec._families import Family\n"
        "ok = types.ModuleType('fam_ok')\n"
        "ok.ENCODERS = {fractions.Fraction: lambda e, o, d: {'$t': 'q.frac', 'v': str(o)}}\n"
        "ok.DECODERS = {'q.frac': lambda d, v: fractions.Fraction(v['v'])}\n"
        "sys.modules['fam_ok'] = ok\n"
        "sys.modules['fam_missing'] = None  # its optional library is not installed\n"
        "missing = Family('fam_missing', ('fractions',), 'q.m.', 'x (pip install x)')\n"
        "_base._BY_ROOT['fractions'] = (missing, Family('fam_ok', ('fractions',), 'q.', ''))\n"
        "_base._BY_PREFIX[:0] = [missing, _base._BY_ROOT['fractions'][1]]\n"
        "doc = Codec().encode(fractions.Fraction(1, 3)).doc\n"
        "assert doc == {'$t': 'q.frac', 'v': '1/3'}, doc\n"
        "assert 'fam_missing' not in _base._loaded\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
