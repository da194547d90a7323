"""One behaviour suite for every storage backend: written once, run on each.

``StoreSuite`` holds the contract every ``Store`` keeps; the classes at the bottom run it
against local files, memory://, S3 (moto server) and a generic fsspec filesystem.
"""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault.errors import ConflictError, StateNotFoundError
from statevault.storage import ANY, ObjectInfo, Store

from backends import (
    Backend,
    GenericFixtures,
    LocalFixtures,
    MemoryFixtures,
    S3Fixtures,
)
from emulators import AzureFixtures, GCSFixtures


class StoreSuite:
    """The contract of ``Store``; subclasses supply the ``backend`` fixture."""

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
        floats = np.arange(5, dtype=np.float64)
        strided = memoryview(b"a-b-c-")[::2]  # not contiguous: must still be written right
        chunks = [memoryview(b"head:"), bytearray(b"mid:"), memoryview(floats), strided]
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


class TestLocalStore(StoreSuite, LocalFixtures):
    pass


class TestMemoryStore(StoreSuite, MemoryFixtures):
    pass


class TestS3Store(StoreSuite, S3Fixtures):
    identical_rewrite_changes_token = False


class TestGenericStore(StoreSuite, GenericFixtures):
    expect_atomic = False
    expect_conditional = False
    identical_rewrite_changes_token = False


class TestAzureStore(StoreSuite, AzureFixtures):
    pass


class TestGCSStore(StoreSuite, GCSFixtures):
    pass


def test_parametrised_backend_fixture_opens_each_kind(backend: Backend) -> None:
    """The ``backend`` fixture other test files use covers every backend."""
    store = backend.open("param.bin")
    store.write([backend.name.encode()])
    assert bytes(store.read()[0]) == backend.name.encode()
