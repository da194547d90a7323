"""MemoryStore and GenericStore specifics (the shared contract is in test_storage.py)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from statevault.errors import StorageError
from statevault.storage import open_store

from backends import Backend

# -- memory:// ----------------------------------------------------------------------------


def test_memory_is_shared_within_the_process(memory_backend: Backend) -> None:
    memory_backend.open().write([b"shared"])
    assert bytes(memory_backend.open().read()[0]) == b"shared"
    # ...and with anyone using fsspec's memory filesystem directly
    assert fsspec.filesystem("memory").cat_file(memory_backend.url()) == b"shared"


def test_memory_token_changes_when_fsspec_users_write(memory_backend: Backend) -> None:
    store = memory_backend.open()
    before = store.write([b"ours"])
    fsspec.filesystem("memory").pipe_file(memory_backend.url(), b"theirs")
    after = store.info()
    assert after is not None
    assert after.token != before.token
    assert after.size == 6


def test_memory_url_is_normalised(memory_backend: Backend, clean_memory: None) -> None:
    assert open_store("memory://a/b").url == "memory:///a/b"
    assert open_store("memory:///a/b").url == "memory:///a/b"


def test_memory_rejects_storage_options(clean_memory: None) -> None:
    with pytest.raises(ValueError, match="no meaning for memory"):
        open_store("memory://a/b", {"anon": True})


# -- generic (DirFileSystem over a local directory) ---------------------------------------


def test_generic_write_leaves_no_temp_files(generic_backend: Backend, tmp_path: Path) -> None:
    store = generic_backend.open()
    for i in range(3):
        store.write([f"v{i}".encode()])
    assert sorted(p.name for p in (tmp_path / "states").iterdir()) == ["state.bin"]
    assert (tmp_path / "states" / "state.bin").read_bytes() == b"v2"


def test_generic_creates_missing_directories(generic_backend: Backend, tmp_path: Path) -> None:
    generic_backend.open("a/b/c.bin").write([b"deep"])
    assert (tmp_path / "states" / "a" / "b" / "c.bin").read_bytes() == b"deep"


def test_generic_directory_at_the_state_path(generic_backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "states" / "adir").mkdir(parents=True)
    store = generic_backend.open("adir")
    with pytest.raises(StorageError, match="is a directory"):
        store.read()
    with pytest.raises(StorageError, match="is a directory"):
        store.info()
    with pytest.raises(StorageError, match="is a directory"):
        store.read_range(0, 1)


def test_generic_failed_write_is_a_storage_error(generic_backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "states").mkdir()
    (tmp_path / "states" / "afile").write_bytes(b"")
    store = generic_backend.open("afile/state.bin")
    with pytest.raises(StorageError) as caught:
        store.write([b"x"])
    assert isinstance(caught.value.__cause__, OSError)
    assert store.url in str(caught.value)
