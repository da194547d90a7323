"""Extending statevault from outside the package: lz4 as a compressor, backends and transforms
from installed distributions (real entry points in a real dist-info), and the transform
conformance suite on every transform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import sv_lz4
from statevault import StateManager, generate_key
from statevault.errors import TransformError
from statevault.keys import Keyring, SigningKeyring
from statevault.testing import TransformSuite
from statevault.transforms import (
    Transform,
    TransformRegistry,
    default_transforms,
    fernet,
    hmac_sha256,
    zstd,
)

TESTS = Path(__file__).parent


# -- lz4 through the public API -----------------------------------------------------------


@pytest.fixture
def lz4_registered() -> Any:
    """lz4 registered for every reader in this process, then removed again."""
    default_transforms.register("lz4", sv_lz4.lz4_factory)
    yield
    default_transforms._entries.pop("lz4")


def test_lz4_is_a_compressor_once_registered(lz4_registered: None, tmp_path: Path) -> None:
    props = default_transforms.properties("lz4")
    assert props is not None
    assert props.compresses  # declared on the factory, not passed to register()
    sm = StateManager(tmp_path / "s.state", compression="lz4", compression_level=9)
    state = {"prices": [1.5] * 10_000, "name": "EURUSD"}
    sm.save(state)
    assert sm.get_state_info()["transforms"] == ["lz4"]
    assert StateManager(tmp_path / "s.state").load() == state  # any reader, by the frame alone
    on_disk = (tmp_path / "s.state").read_bytes()
    assert len(on_disk) < 2000
    with pytest.raises(ValueError, match="compression_level 99 is not valid for 'lz4'"):
        StateManager(tmp_path / "s.state", compression="lz4", compression_level=99)


def test_unregistered_or_non_compressing_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"registered compressor \(zstd\), not 'lz4'"):
        StateManager(tmp_path / "s", compression="lz4")
    with pytest.raises(ValueError, match="not 'fernet'"):
        StateManager(tmp_path / "s", compression="fernet")


# -- real installed distributions (dist-info on sys.path, as pip installs them) ----------


def _install(site: Path, dist: str, entry_points: dict[str, dict[str, str]]) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _run(site: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(TESTS)]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


MEMSTORE = '''
from statevault.storage.memory import MemoryStore

class PluginStore(MemoryStore):
    """memory://, under another protocol: a backend from an installed package."""
    protocol = "plug"

    def __init__(self, url, storage_options=None):
        super().__init__("memory://" + url.split("://", 1)[1], storage_options)
'''


def test_entry_points_add_a_compressor_and_a_backend(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sv_plugin_store.py").write_text(MEMSTORE)
    _install(
        site,
        "sv_lz4_plugin",
        {
            "statevault.transforms": {"lz4": "sv_lz4:lz4_factory"},
            "statevault.stores": {"plug": "sv_plugin_store:PluginStore"},
        },
    )
    done = _run(
        site,
        """
        import json, sys
        import statevault
        from statevault import StateManager
        assert "sv_lz4" not in sys.modules  # nothing is imported before it is needed
        sm = StateManager("plug://bucket/s.state", compression="lz4", spool_dir=False)
        sm.save({"a": [1] * 1000})
        print(json.dumps([type(sm.store).__name__, sm.get_state_info()["transforms"],
                          StateManager("plug://bucket/s.state").load() == {"a": [1] * 1000}]))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["PluginStore", ["lz4"], True]


def test_two_distributions_claiming_one_name_is_an_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sv_plugin_store.py").write_text(MEMSTORE)
    for dist in ("first_plugin", "second_plugin"):
        _install(
            site,
            dist,
            {
                "statevault.transforms": {"lz4": f"sv_lz4:lz4_factory_{dist}"},
                "statevault.stores": {"plug": f"sv_plugin_store:PluginStore_{dist}"},
            },
        )
    done = _run(
        site,
        """
        from statevault import StateManager, StateError
        from statevault.storage import open_store, register_store
        from statevault.transforms import default_transforms
        for attempt in (lambda: default_transforms.build("lz4", {}, None),
                        lambda: open_store("plug://b/s")):
            try:
                attempt()
            except StateError as e:
                print(type(e).__name__, e)
        # A registration in code settles it, whatever is installed.
        from sv_plugin_store import PluginStore
        register_store("plug", PluginStore)
        print(type(open_store("plug://b/s")).__name__)
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("TransformError several installed packages provide the transform")
    assert "first_plugin" in lines[0]
    assert "second_plugin" in lines[0]
    assert lines[1].startswith("StorageError several installed packages provide a storage")
    assert lines[2] == "PluginStore"


def test_code_registration_and_builtins_win_over_entry_points(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "shadow_plugin", {"statevault.transforms": {"zstd": "sv_lz4:lz4_factory"}})
    done = _run(
        site,
        """
        from statevault.transforms import default_transforms
        print(default_transforms.build("zstd", {}, None).name)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "zstd"


def test_a_factory_that_builds_other_properties_than_declared_is_refused() -> None:
    registry = TransformRegistry()
    registry.register("lz4", sv_lz4.lz4_factory, compresses=False)
    with pytest.raises(TransformError, match="declares"):
        registry.build("lz4", {}, None)


# -- the transform conformance suite on every transform -----------------------------------

KEY = generate_key()


class TestZstdSuite(TransformSuite):
    @pytest.fixture
    def transform(self) -> Transform:
        return zstd(5)


class TestFernetSuite(TransformSuite):
    @pytest.fixture
    def keyring(self) -> Keyring:
        return Keyring([KEY])

    @pytest.fixture
    def transform(self, keyring: Keyring) -> Transform:
        return fernet(keyring)


class TestSigningSuite(TransformSuite):
    keys = SigningKeyring([uuid.uuid4().hex])

    @pytest.fixture
    def registry(self) -> TransformRegistry:
        from statevault.transforms.signing import NAME, signing_factory

        registry = default_transforms.child()
        registry.register(NAME, signing_factory(self.keys), authenticates=True)
        return registry

    @pytest.fixture
    def transform(self) -> Transform:
        return hmac_sha256(self.keys)


class TestLz4Suite(TransformSuite):
    @pytest.fixture
    def registry(self) -> TransformRegistry:
        registry = default_transforms.child()
        registry.register("lz4", sv_lz4.lz4_factory)
        return registry

    @pytest.fixture
    def transform(self) -> Transform:
        return sv_lz4.lz4(4)
