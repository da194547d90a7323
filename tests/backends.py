"""Storage backends for tests: one ``Backend`` per kind, as fixtures any test can reuse.

The registration point for a backend: a ``<name>_backend`` fixture returning a
``statevault.testing.Backend`` (with ``get_raw``/``put_raw``/``delete_raw`` reaching the
backend directly), its name in ``BACKEND_NAMES`` (marks in ``BACKEND_MARKS``), a
``<Name>Fixtures`` mixin, the fixture's name in conftest.py, and one line per suite in
test_storage.py and test_backends_manager.py.

Six backends, each a real one: a local directory (``tmp_path``), ``memory://`` (cleared
around each test), ``s3://`` against an in-process moto server (started once per session
on a free 127.0.0.1 port, reset per test), ``dir://`` (fsspec's DirFileSystem over a
local directory), which statevault has no adapter for, so it goes through ``GenericStore``,
``az://`` against Azurite and ``gs://`` against fake-gcs-server, both on loopback
(their fixtures and mixins live in ``emulators.py``; a fresh prefix per test).

Use them three ways:

- ``backend``: parametrised over all six (``def test_x(backend): backend.open()``);
- ``local_backend``, ``memory_backend``, ``s3_backend``, ``generic_backend``: one each
  (``azure_backend``, ``gcs_backend`` in ``emulators.py``);
- mixins overriding ``backend`` for a class of tests written once::

      class TestS3(StoreSuite, S3Fixtures): pass

``moto_server`` is the running server (endpoint, storage options, request log).
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from statevault.testing import Backend, LocalBackend

BACKEND_NAMES = ("local", "memory", "s3", "generic", "azure", "gcs")
#: Marks per backend (a backend that needs a server gets its own marker).
BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "s3": [pytest.mark.s3],
    "azure": [pytest.mark.azure],
    "gcs": [pytest.mark.gcs],
}
S3_BUCKET = "statevault-test"

_REQUEST_LINE = re.compile(r"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours non-200 lines


class S3Backend(Backend):
    """A prefix in the moto bucket; raw access through a plain botocore client, not s3fs."""

    def __init__(self, server: MotoS3, prefix: str) -> None:
        super().__init__("s3", f"s3://{S3_BUCKET}/{prefix}", dict(server.storage_options))
        self._server = server

    def _key(self, name: str) -> str:
        return self.url(name).removeprefix(f"s3://{S3_BUCKET}/")

    def get_raw(self, name: str = "state.bin") -> bytes | None:
        client = self._server.client()
        try:
            response = client.get_object(Bucket=S3_BUCKET, Key=self._key(name))
            data: bytes = response["Body"].read()
            return data
        except client.exceptions.NoSuchKey:
            return None
        finally:
            client.close()

    def put_raw(self, name: str, data: bytes) -> None:
        client = self._server.client()
        try:
            client.put_object(Bucket=S3_BUCKET, Key=self._key(name), Body=data)
        finally:
            client.close()

    def delete_raw(self, name: str = "state.bin") -> None:
        client = self._server.client()
        try:
            client.delete_object(Bucket=S3_BUCKET, Key=self._key(name))
        finally:
            client.close()


class _RequestLog(logging.Handler):
    """Collects werkzeug's access-log lines (one per request the server answers).

    Werkzeug logs a request before it sends the response headers, so by the time a client
    call returns, its request is in the log. Installing this handler also silences werkzeug.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.lines.append(record.getMessage())


class MotoS3:
    """A moto S3 server on a free 127.0.0.1 port, with a log of the requests it receives."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._log = _RequestLog()
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.addHandler(self._log)
        werkzeug.setLevel(logging.INFO)
        werkzeug.propagate = False
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.storage_options: dict[str, Any] = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def stop(self) -> None:
        self._server.stop()
        logging.getLogger("werkzeug").removeHandler(self._log)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """An outage: the server is down inside the ``with`` block, then up again on the same
        port; the in-process moto backend keeps the buckets and objects meanwhile."""
        from moto.server import ThreadedMotoServer

        host, port = self._server.get_host_and_port()
        self._server.stop()
        try:
            yield
        finally:
            self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
            self._server.start()

    def reset(self) -> None:
        """Forget every bucket and object (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str = "s3", **credentials: str) -> Any:
        """A plain (synchronous) botocore client for this server, for test setup."""
        import botocore.session

        return botocore.session.get_session().create_client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=credentials.get("key", "testing"),
            aws_secret_access_key=credentials.get("secret", "testing"),
        )

    def create_bucket(self, name: str = S3_BUCKET) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()

    def mark(self) -> int:
        """A position in the request log, for ``requests_since``."""
        return len(self._log.lines)

    def requests_since(self, mark: int) -> list[str]:
        """``"METHOD /path"`` of each S3 request received after ``mark`` (moto-api excluded)."""
        found = []
        for line in self._log.lines[mark:]:
            m = _REQUEST_LINE.search(_ANSI.sub("", line))
            if m and not m.group(2).startswith("/moto-api"):
                found.append(f"{m.group(1)} {m.group(2)}")
        return found


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """The session's moto S3 server (started on first use)."""
    server = MotoS3()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoS3) -> MotoS3:
    """The moto server, reset, with an empty ``S3_BUCKET``."""
    moto_server.reset()
    moto_server.create_bucket(S3_BUCKET)
    return moto_server


def clear_memory() -> None:
    """Empty fsspec's process-wide memory filesystem."""
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture
def clean_memory() -> Iterator[None]:
    """``memory://`` is empty when the test starts and again after it ends."""
    clear_memory()
    yield
    clear_memory()


@pytest.fixture
def local_backend(tmp_path: Any) -> Backend:
    return LocalBackend(tmp_path / "states")


@pytest.fixture
def memory_backend(clean_memory: None) -> Backend:
    return Backend("memory", f"memory://sv-{uuid.uuid4().hex[:8]}/")


@pytest.fixture
def s3_backend(s3_bucket: MotoS3) -> Backend:
    return S3Backend(s3_bucket, f"{uuid.uuid4().hex[:8]}/")


@pytest.fixture
def generic_backend(tmp_path: Any) -> Backend:
    # fsspec's DirFileSystem rooted at tmp_path: a filesystem statevault has no adapter for.
    return Backend("generic", "dir://states/", {"path": str(tmp_path), "target_protocol": "file"})


@pytest.fixture(
    params=[pytest.param(name, marks=BACKEND_MARKS.get(name, [])) for name in BACKEND_NAMES]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn."""
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


class LocalFixtures:
    @pytest.fixture
    def backend(self, local_backend: Backend) -> Backend:
        return local_backend


class MemoryFixtures:
    @pytest.fixture
    def backend(self, memory_backend: Backend) -> Backend:
        return memory_backend


class S3Fixtures:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.s3]

    @pytest.fixture
    def backend(self, s3_backend: Backend) -> Backend:
        return s3_backend


class GenericFixtures:
    @pytest.fixture
    def backend(self, generic_backend: Backend) -> Backend:
        return generic_backend
