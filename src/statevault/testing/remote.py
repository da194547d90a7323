"""``RemoteStoreSuite``: a store behind a network endpoint fails fast and survives an outage.

A trading process must learn within seconds that its save did not happen: an endpoint nothing
listens on, one that accepts connections and never answers, and an upload the server never
reads all end in ``StorageUnavailableError`` (never a hang), with the URL in the message, the
backend's error chained and no secret shown. A manager over the store keeps saving to its
local spool while the server is down, and the primary holds the newest state again once it is
back (by ``flush_spool`` or by the next save).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..errors import StorageUnavailableError
from ..manager import StateManager
from ..storage import Store, open_store
from .backend import Backend

__all__ = ["RemoteStoreSuite"]


class RemoteStoreSuite:
    """Fail-fast and outage behaviour of a networked store. Subclass it beside ``StoreSuite``::

        class TestMyRemoteStore(RemoteStoreSuite):
            remote_url = "myproto://bucket/state.bin"

            def endpoint_options(self, endpoint):
                return {"endpoint_url": endpoint, "token": "anon"}

            @pytest.fixture
            def backend(self, my_backend): ...

            @pytest.fixture
            def outage(self, my_server):  # stops the server for the with-block
                return my_server.stopped

    Hooks: ``remote_url`` (an object URL, opened with ``endpoint_options`` pointing at a dead
    loopback endpoint), ``endpoint_options``, ``read_timeout_options`` (for the silent
    server), ``secrets`` (strings no message may contain), ``deadline_error`` (the type name
    the write deadline raises, checked in the cause chain), ``hang_guard_s`` (each failing
    operation must end within it: a guard against hangs, not a timing figure; ``None`` to
    leave hangs to pytest-timeout) and the ``backend`` and ``outage`` fixtures. A backend
    that cannot take part in a test switches it off with ``test_name = None``.
    """

    remote_url: ClassVar[str]
    secrets: ClassVar[tuple[str, ...]] = ()
    deadline_error: ClassVar[str | None] = "FSTimeoutError"
    hang_guard_s: ClassVar[float | None] = 20.0

    def endpoint_options(self, endpoint: str) -> dict[str, Any]:
        """``storage_options`` for a server at ``endpoint`` (``http://127.0.0.1:PORT``)."""
        raise NotImplementedError

    def read_timeout_options(self, seconds: float) -> dict[str, Any]:
        """Options that make the store give up on a silent server after ``seconds``."""
        raise NotImplementedError

    @pytest.fixture
    def outage(self) -> Callable[[], AbstractContextManager[None]]:
        """A context manager factory: the server is down inside ``with outage():``, and up
        again (same address, same data) after it."""
        raise NotImplementedError("RemoteStoreSuite needs an outage fixture")

    # -- endpoints that fail --------------------------------------------------------------

    @pytest.fixture
    def closed_port(self) -> int:
        """A loopback port nothing listens on."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        return port

    @pytest.fixture
    def silent_server(self) -> Iterator[int]:
        """A loopback port that accepts TCP connections (kernel backlog) and never answers."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            yield s.getsockname()[1]

    def _open(self, port: int, **extra: Any) -> Store:
        options = {**self.endpoint_options(f"http://127.0.0.1:{port}"), **extra}
        return open_store(self.remote_url, options)

    def _fails_fast(self, operation: Callable[[], object]) -> StorageUnavailableError:
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="cannot be reached") as caught:
            operation()
        if self.hang_guard_s is not None:
            assert time.monotonic() - started < self.hang_guard_s
        return caught.value

    def _assert_well_reported(self, error: StorageUnavailableError, store: Store) -> None:
        assert store.url in str(error)
        assert error.__cause__ is not None
        for secret in self.secrets:
            assert secret not in str(error)

    def test_unreachable_endpoint_fails_fast_with_unavailable(self, closed_port: int) -> None:
        store = self._open(closed_port)
        for operation in (
            lambda: store.write([b"x"]),
            store.read,
            store.info,
            lambda: store.read_range(0, 1),
            lambda: store.read_head(10),
            store.delete,
        ):
            self._assert_well_reported(self._fails_fast(operation), store)

    def test_endpoint_that_never_answers_times_out_as_unavailable(self, silent_server: int) -> None:
        store = self._open(silent_server, **self.read_timeout_options(0.5))
        for operation in (lambda: store.write([b"x"]), store.read, store.info):
            self._assert_well_reported(self._fails_fast(operation), store)

    def test_upload_the_server_never_reads_hits_the_write_deadline(
        self, silent_server: int
    ) -> None:
        """A body bigger than the socket buffers blocks the upload itself: the deadline ends it."""
        store = self._open(silent_server, write_timeout=1)
        error = self._fails_fast(lambda: store.write([bytes(64 * 2**20)]))
        if self.deadline_error is not None:
            # Ended by the deadline, not by the server or a read timeout.
            chain: list[BaseException] = []
            current: BaseException | None = error
            while current is not None and current not in chain:
                chain.append(current)
                current = current.__cause__ or current.__context__
            assert self.deadline_error in [type(e).__name__ for e in chain]

    # -- a server that goes away and comes back -------------------------------------------

    def test_outage_spools_and_the_primary_ends_newest(
        self,
        backend: Backend,
        outage: Callable[[], AbstractContextManager[None]],
        tmp_path: Path,
    ) -> None:
        """Stop the server in the middle of a run of saves, keep saving, start it again.

        Two managers live through the one outage: ``sm`` recovers with ``flush_spool``,
        ``other`` with its next save alone.
        """
        options = dict(backend.storage_options)

        def manager(name: str) -> StateManager:
            spool = tmp_path / f"spool-{name}"
            return StateManager(backend.url(name), storage_options=options, spool_dir=spool)

        def primary(name: str) -> Any:
            return StateManager(backend.url(name), storage_options=options, spool_dir=False).load()

        sm, other = manager("outage.state"), manager("other.state")
        for i in range(3):
            assert sm.save_state({"i": i})
        assert other.save_state({"b": 0})
        with outage():
            started = time.monotonic()
            for i in range(3, 6):
                assert sm.save_state({"i": i}) is False  # not acknowledged, but spooled
            if self.hang_guard_s is not None:
                assert time.monotonic() - started < 3 * self.hang_guard_s
            assert sm.get_state_info()["unflushed"] is True
            assert sm.load_state() == {"i": 5}
            assert sm.last_load_source == "spool"
            with pytest.raises(StorageUnavailableError):
                sm.save({"i": 6})
            assert other.save_state({"b": 1}) is False
        assert primary("outage.state") == {"i": 2}
        assert sm.flush_spool()  # the spool's newest (the strict save's frame too) goes up
        assert primary("outage.state") == {"i": 6}
        assert sm.save_state({"i": 7})
        assert primary("outage.state") == {"i": 7}
        assert sm.get_state_info()["unflushed"] is False
        assert primary("other.state") == {"b": 0}
        assert other.save_state({"b": 2})  # no flush_spool: the save itself recovers
        assert primary("other.state") == {"b": 2}
        assert other.get_state_info()["unflushed"] is False
