"""``ListingSuite``: the contract of ``Store.list_dir`` (part of ``StoreSuite``).

What the delta orphan sweep relies on: a listing names exactly the objects directly under the
folder (those written through the store and those another program put there, none deleted),
each with the size the backend holds and a stamp that stays the same while the object does.
"""

from __future__ import annotations

import pytest

from ..storage import Listed, Store
from .backend import Backend

__all__ = ["ListingSuite"]


def _listing(folder: Store) -> dict[str, Listed]:
    found = folder.list_dir()
    assert found is not None, f"{type(folder).__name__}.list_dir() returned None"
    assert all(isinstance(e, Listed) for e in found)
    by_name = {e.name: e for e in found}
    assert len(by_name) == len(found), f"a name listed twice: {sorted(e.name for e in found)}"
    return by_name


class ListingSuite:
    """``list_dir`` of ``<store url>.packs`` as a folder. ``expect_listing = False`` for a
    store that cannot list (its ``list_dir`` must then say so with None, and the delta orphan
    sweep does not run on it)."""

    expect_listing = True

    @pytest.fixture
    def folder(self, store: Store) -> Store:
        return store.sibling(".packs")

    def test_list_dir_of_a_missing_folder_is_empty(self, folder: Store) -> None:
        if not self.expect_listing:
            assert folder.list_dir() is None
            return
        assert _listing(folder) == {}

    def test_list_dir_names_sizes_and_stamps_of_what_is_stored(
        self, store: Store, folder: Store
    ) -> None:
        if not self.expect_listing:
            assert folder.list_dir() is None
            return
        store.write([b"the state itself is not in its folder"])
        written = {
            name: folder.sibling(f"/{name}").write([b"x" * size])
            for name, size in [("a1", 3), ("b2", 0), ("c3", 5000)]
        }
        found = _listing(folder)
        assert sorted(found) == ["a1", "b2", "c3"]
        for name, info in written.items():
            entry = found[name]
            assert entry.size == info.size
            if entry.stamp is not None and info.modified is not None:
                # the same clock as the object's info (to the backend's resolution)
                assert abs(entry.stamp - info.modified.timestamp()) <= 2.0
        assert _listing(folder) == found  # nothing changed: the same sizes and stamps

    def test_list_dir_sees_replaces_and_deletes(self, folder: Store) -> None:
        if not self.expect_listing:
            return
        a, b = folder.sibling("/a"), folder.sibling("/b")
        a.write([b"12"])
        b.write([b"34"])
        a.write([b"longer now"])
        assert b.delete() is True
        found = _listing(folder)
        assert sorted(found) == ["a"]
        assert found["a"].size == len(b"longer now")
        assert a.delete() is True
        assert _listing(folder) == {}

    def test_list_dir_is_one_level_and_leaves_out_dot_names(
        self, folder: Store, backend: Backend
    ) -> None:
        if not self.expect_listing:
            return
        folder.sibling("/top").write([b"t"])
        folder.sibling("/sub/deeper").write([b"d"])
        backend.put_raw("state.bin.packs/.hidden-temp", b"h")
        assert sorted(_listing(folder)) == ["top"]

    def test_list_dir_sees_objects_another_program_put(
        self, folder: Store, backend: Backend
    ) -> None:
        if not self.expect_listing:
            return
        backend.put_raw("state.bin.packs/theirs", b"put around the store")
        found = _listing(folder)
        assert sorted(found) == ["theirs"]
        assert found["theirs"].size == len(b"put around the store")
        backend.delete_raw("state.bin.packs/theirs")
        assert _listing(folder) == {}

    def test_list_dir_of_many_objects_lists_them_all(self, folder: Store) -> None:
        if not self.expect_listing:
            return
        # Object stores list in pages: a small page makes this listing take several.
        if hasattr(folder, "list_page"):
            folder.list_page = 2
        names = {f"{i:02x}" * 8 for i in range(7)}
        for name in names:
            folder.sibling(f"/{name}").write([name.encode()])
        found = _listing(folder)
        assert set(found) == names
        assert {e.size for e in found.values()} == {16}
