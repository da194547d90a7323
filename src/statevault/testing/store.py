"""``StoreSuite``: the contract every ``Store`` keeps, written once, for any backend.

Checked through the store and around it: what the store writes must be what the backend holds
(``Backend.get_raw``), and what another program puts there (``put_raw``/``delete_raw``) must be
what the store reads, with tokens that change so a stale compare-and-swap fails.
"""

from __future__ import annotations

import array
import threading
from datetime import UTC, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..errors import ConflictError, StateNotFoundError
from ..storage import ANY, ObjectInfo, Store
from .backend import Backend
from .listing import ListingSuite

__all__ = ["StoreSuite"]


class StoreSuite(ListingSuite):
    """The contract of ``Store`` (``list_dir``'s is in ``ListingSuite``). Subclass it and
    supply a ``backend`` fixture returning a ``Backend`` whose objects start absent (a fresh
    prefix per test)::

        class TestMyStore(StoreSuite):
            @pytest.fixture
            def backend(self, tmp_path):
                return Backend("mine", "myproto://bucket/" + uuid.uuid4().hex + "/")

    Class attributes describe what the backend promises (``expect_atomic``,
    ``expect_conditional``, ``identical_rewrite_changes_token``, ``expect_listing``).
    """

    expect_atomic = True
    expect_conditional = True
    #: S3's ETag is the content's MD5: rewriting identical bytes keeps it (harmless for CAS,
    #: the content is the same). The generic store promises nothing here.
    identical_rewrite_changes_token = True

    @pytest.fixture
    def store(self, backend: Backend) -> Store:
        return backend.open()

    # -- round trips ----------------------------------------------------------------------

    def test_write_then_read_returns_the_bytes(self, store: Store) -> None:
        written = store.write([b"hello world"])
        data, info = store.read()
        assert bytes(data) == b"hello world"
        assert info.size == 11 == written.size
        assert info.token == written.token

    def test_chunks_of_any_buffer_type_are_concatenated(self, store: Store) -> None:
        floats = array.array("d", [0.0, 1.0, 2.0, 3.0, 4.0])  # a non-byte buffer format
        strided = memoryview(b"a-b-c-")[::2]  # not contiguous: must still be written right
        chunks: list[memoryview | bytearray] = [
            memoryview(b"head:"),
            bytearray(b"mid:"),
            memoryview(floats),
            strided,
        ]
        store.write(chunks)
        data, info = store.read()
        expected = b"head:mid:" + floats.tobytes() + b"abc"
        assert bytes(data) == expected
        assert info.size == len(expected)

    def test_empty_object_round_trips(self, store: Store) -> None:
        info = store.write([])
        data, read_info = store.read()
        assert bytes(data) == b""
        assert info.size == read_info.size == 0

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(chunks=st.lists(st.binary(max_size=3000), max_size=5))
    def test_round_trip_property(self, store: Store, chunks: list[bytes]) -> None:
        written = store.write([memoryview(c) for c in chunks])
        data, info = store.read()
        assert bytes(data) == b"".join(chunks)
        assert info.token == written.token

    def test_write_info_matches_info(self, store: Store) -> None:
        written = store.write([b"abc"])
        current = store.info()
        assert current is not None
        assert (current.size, current.token) == (written.size, written.token)
        assert current == written  # equality means "same stored version"
        assert current == store.read()[1]

    def test_modified_is_utc(self, store: Store) -> None:
        written = store.write([b"abc"])
        _, info = store.read()
        for found in (written, info, store.info()):
            assert isinstance(found, ObjectInfo)
            assert found.modified is None or found.modified.utcoffset() == timedelta(0)
            assert found.modified is None or found.modified.tzinfo is UTC

    # -- ranges ---------------------------------------------------------------------------

    def test_read_range(self, store: Store) -> None:
        store.write([b"0123456789"])
        assert store.read_range(0, 3) == b"012"
        assert store.read_range(4, 7) == b"456"
        assert store.read_range(8, 100) == b"89"  # clipped to the size
        assert store.read_range(10, 20) == b""
        assert store.read_range(50, 60) == b""
        assert store.read_range(5, 5) == b""
        assert store.read_range(6, 2) == b""

    @pytest.mark.parametrize("length", [0, 5, 4096, 10_000, 100_000])
    def test_read_head_gives_the_prefix_and_the_current_token(
        self, store: Store, length: int
    ) -> None:
        assert store.read_head(16) is None
        data = bytes(range(256)) * 40  # 10,240 bytes
        written = store.write([data])
        head = store.read_head(length)
        assert head is not None
        prefix, info = head
        assert prefix == data[:length]
        assert info.size == len(data)
        assert info.token == written.token
        store.write([b"x"], expect=info.token)  # the token is good for compare-and-swap

    def test_keep_copy_keeps_the_written_bytes_after_the_next_replace(self, store: Store) -> None:
        dest = store.sibling(".versions/1")
        written = store.write([b"version one", b" bytes"])
        store.keep_copy(dest, [b"version one", b" bytes"], written)
        store.write([b"version two"])
        assert bytes(dest.read()[0]) == b"version one bytes"
        assert bytes(store.read()[0]) == b"version two"

    def test_read_head_of_an_empty_object(self, store: Store) -> None:
        written = store.write([b""])
        head = store.read_head(64)
        assert head is not None
        assert head[0] == b""
        assert head[1].token == written.token

    def test_read_range_rejects_negative_start(self, store: Store) -> None:
        store.write([b"abc"])
        with pytest.raises(ValueError, match="start"):
            store.read_range(-1, 2)

    def test_read_range_of_missing_object(self, store: Store) -> None:
        with pytest.raises(StateNotFoundError):
            store.read_range(0, 10)
        with pytest.raises(StateNotFoundError):
            store.read_range(3, 3)

    # -- info and tokens ------------------------------------------------------------------

    def test_info_of_missing_object_is_none(self, store: Store) -> None:
        assert store.info() is None

    def test_token_changes_on_every_write(self, store: Store) -> None:
        tokens = [store.write([f"payload {i}".encode()]).token for i in range(4)]
        assert len(set(tokens)) == 4
        current = store.info()
        assert current is not None
        assert current.token == tokens[-1]

    def test_token_changes_when_identical_bytes_are_rewritten(self, store: Store) -> None:
        if not self.identical_rewrite_changes_token:
            pytest.skip("this backend's token is derived from the content")
        first = store.write([b"same"])
        second = store.write([b"same"])
        assert first.token != second.token

    # -- conditional writes ---------------------------------------------------------------

    def test_attributes(self, store: Store, backend: Backend) -> None:
        assert store.atomic is self.expect_atomic
        assert store.conditional is self.expect_conditional
        assert isinstance(store.protocol, str)
        assert store.protocol
        assert store.url
        assert store.url in repr(store)

    def test_expect_none_creates(self, store: Store) -> None:
        info = store.write([b"first"], expect=None)
        assert bytes(store.read()[0]) == b"first"
        assert info.size == 5

    def test_expect_none_on_existing_conflicts(self, store: Store) -> None:
        store.write([b"first"])
        with pytest.raises(ConflictError, match="stored object changed") as caught:
            store.write([b"second"], expect=None)
        assert caught.value.found is None
        assert caught.value.expected is None
        assert bytes(store.read()[0]) == b"first"

    def test_current_token_allows_the_write(self, store: Store) -> None:
        first = store.write([b"first"])
        second = store.write([b"second"], expect=first.token)
        assert bytes(store.read()[0]) == b"second"
        assert second.token != first.token

    def test_stale_token_conflicts_and_keeps_the_bytes(self, store: Store) -> None:
        first = store.write([b"first"])
        store.write([b"second"])
        with pytest.raises(ConflictError, match="stored object changed") as caught:
            store.write([b"third"], expect=first.token)
        assert caught.value.found is None
        assert caught.value.expected is None
        assert bytes(store.read()[0]) == b"second"

    def test_token_of_deleted_object_conflicts(self, store: Store) -> None:
        first = store.write([b"first"])
        store.delete()
        with pytest.raises(ConflictError):
            store.write([b"again"], expect=first.token)
        assert store.info() is None

    def test_expect_any_is_the_default(self, store: Store) -> None:
        store.write([b"first"], expect=ANY)
        store.write([b"second"])
        assert bytes(store.read()[0]) == b"second"
        assert repr(ANY) == "ANY"

    def test_threads_incrementing_with_cas_lose_nothing(self, backend: Backend) -> None:
        """Read-modify-write with expect=token from several threads: every increment lands."""
        backend.open().write([b"0"])
        threads_n, per_thread = 4, 8
        errors: list[BaseException] = []

        def work() -> None:
            store = backend.open()  # its own Store instance, like separate managers
            try:
                done = 0
                while done < per_thread:
                    data, info = store.read()
                    try:
                        store.write([str(int(bytes(data)) + 1).encode()], expect=info.token)
                    except ConflictError:
                        continue
                    done += 1
            except BaseException as e:  # surfaced in the main thread below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert bytes(backend.open().read()[0]) == str(threads_n * per_thread).encode()

    # -- locking --------------------------------------------------------------------------

    def test_lock_is_reentrant_and_write_works_under_it(self, store: Store) -> None:
        with store.lock():
            with store.lock():
                current = store.info()
                store.write([b"under lock"], expect=None if current is None else current.token)
            store.write([b"still locked"])
        assert bytes(store.read()[0]) == b"still locked"

    def test_lock_excludes_other_threads(self, backend: Backend) -> None:
        store = backend.open()
        store.write([b"before"])
        entered = threading.Event()
        finished = threading.Event()

        def other_writer() -> None:
            entered.set()
            backend.open().write([b"other"])
            finished.set()

        with store.lock():
            thread = threading.Thread(target=other_writer)
            thread.start()
            entered.wait()
            thread.join(0.3)
            blocked = not finished.is_set()
            store.write([b"holder"])
        thread.join()
        assert blocked
        assert bytes(store.read()[0]) == b"other"  # written after the holder released

    # -- delete, missing objects, siblings ------------------------------------------------

    def test_delete(self, store: Store) -> None:
        assert store.delete() is False
        store.write([b"x"])
        assert store.delete() is True
        assert store.delete() is False
        assert store.info() is None

    def test_read_missing_object(self, store: Store) -> None:
        with pytest.raises(StateNotFoundError, match="No state is stored at") as caught:
            store.read()
        assert store.url in str(caught.value)

    def test_sibling_is_a_separate_object_beside_it(self, store: Store) -> None:
        sibling = store.sibling(".history")
        assert sibling.url == store.url + ".history"
        assert type(sibling) is type(store)
        assert sibling.info() is None
        store.write([b"main"])
        sibling.write([b"side"])
        assert bytes(store.read()[0]) == b"main"
        assert bytes(sibling.read()[0]) == b"side"
        assert sibling.delete() is True
        assert bytes(store.read()[0]) == b"main"

    def test_two_instances_see_each_others_writes(self, backend: Backend) -> None:
        a, b = backend.open(), backend.open()
        assert b.info() is None
        written = a.write([b"from a"])
        seen = b.info()
        assert seen is not None
        assert seen.token == written.token
        assert bytes(b.read()[0]) == b"from a"
        b.write([b"from b"], expect=written.token)
        assert bytes(a.read()[0]) == b"from b"
        assert b.delete() is True
        assert a.info() is None

    # -- what the backend itself holds (read and written around the store) ---------------

    def test_bytes_written_are_what_the_backend_holds(self, store: Store, backend: Backend) -> None:
        store.write([b"hello ", memoryview(b"world")])
        assert backend.get_raw() == b"hello world"

    def test_object_put_directly_is_read_by_the_store(self, store: Store, backend: Backend) -> None:
        backend.put_raw("state.bin", b"written by another program")
        data, info = store.read()
        assert bytes(data) == b"written by another program"
        assert info.size == len(b"written by another program")
        assert store.read_range(8, 10) == b"by"

    def test_direct_replace_changes_the_token_and_stops_a_stale_write(
        self, store: Store, backend: Backend
    ) -> None:
        first = store.write([b"ours"])
        backend.put_raw("state.bin", b"theirs, longer")
        current = store.info()
        assert current is not None
        assert current.token != first.token
        with pytest.raises(ConflictError):
            store.write([b"stale"], expect=first.token)
        assert backend.get_raw() == b"theirs, longer"

    def test_direct_delete_is_seen(self, store: Store, backend: Backend) -> None:
        first = store.write([b"x"])
        backend.delete_raw()
        assert store.info() is None
        with pytest.raises(StateNotFoundError):
            store.read()
        with pytest.raises(ConflictError):
            store.write([b"y"], expect=first.token)
        assert backend.get_raw() is None

    def test_refused_write_leaves_the_backend_untouched(
        self, store: Store, backend: Backend
    ) -> None:
        store.write([b"kept"])
        with pytest.raises(ConflictError):
            store.write([b"refused"], expect=None)
        assert backend.get_raw() == b"kept"

    def test_sibling_lives_beside_the_object(self, store: Store, backend: Backend) -> None:
        store.sibling(".versions/2").write([b"side"])
        assert backend.get_raw("state.bin.versions/2") == b"side"
        assert backend.get_raw() is None
