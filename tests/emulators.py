"""Emulators for the cloud backends, started from the project's own files in ``backends/``.

The start scripts in ``backends/<name>/`` are the one implementation, used by a person trying
a backend by hand and by these fixtures; they are loaded by path (``backends/`` is not a
package, and ``backends`` in the tests is ``tests/backends.py``). Nothing here skips: an
emulator that cannot be installed or started fails the tests that need it, saying what to run.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from backends import Backend

ROOT = Path(__file__).resolve().parent.parent
AZURE_CONTAINER = "statevault-test"
GCS_BUCKET = "statevault-test"


def load_script(relative: str, name: str) -> ModuleType:
    """Import ``ROOT/relative`` as module ``name`` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def azurite_module() -> ModuleType:
    return load_script("backends/azure/azurite.py", "statevault_backends_azurite")


def start_azurite() -> Any:
    """A running ``Azurite`` (see backends/azure/azurite.py); installs it with npm ci if needed."""
    module = azurite_module()
    try:
        return module.Azurite()
    except module.AzuriteMissingError as e:
        pytest.fail(
            f"Azurite is needed for the az:// tests and could not be started: {e}\n"
            "Run: npm ci --prefix backends/azure  (node >= 20), or .ci/azure",
            pytrace=False,
        )


def fake_gcs_module() -> ModuleType:
    return load_script("backends/gcs/fakegcs.py", "statevault_backends_fakegcs")


def start_fake_gcs() -> Any:
    """A running ``FakeGCS`` (see backends/gcs/fakegcs.py)."""
    module = fake_gcs_module()
    try:
        return module.FakeGCS()
    except module.FakeGCSMissingError as e:
        pytest.fail(
            f"fake-gcs-server is needed for the gs:// tests and could not be started: {e}",
            pytrace=False,
        )


# -- Azure Blob: Azurite, started by backends/azure/azurite.py (also the by-hand script) ----


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    """The session's Azurite blob service (installed by ``npm ci`` and started on first use)."""
    server = start_azurite()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def azure_backend(azurite: Any) -> Backend:
    azurite.start()  # running again if a test stopped it
    azurite.create_container(AZURE_CONTAINER)
    base = f"az://{AZURE_CONTAINER}/{uuid.uuid4().hex[:8]}/"
    return Backend("azure", base, dict(azurite.storage_options))


# -- GCS: fake-gcs-server, started by backends/gcs/fakegcs.py -------------------------------


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[Any]:
    """The session's fake-gcs-server (from the test extra's wheel)."""
    server = start_fake_gcs()
    try:
        yield server
    finally:
        server.close()


class GCSBackend(Backend):
    """gs:// on fake-gcs-server, with raw access through the emulator's JSON API.

    Raw access goes straight to the emulator (one HTTP request each), not through gcsfs:
    gcsfs retries some of the emulator's answers with backoffs of up to 32 s, which made one
    manager-suite test take four minutes.
    """

    def __init__(self, endpoint: str, base: str, storage_options: dict[str, Any]) -> None:
        super().__init__("gcs", base, storage_options)
        self.endpoint = endpoint

    def _object(self, name: str) -> tuple[str, str]:
        bucket, _, key = self.url(name)[len("gs://") :].partition("/")
        return bucket, key

    def _request(self, url: str, *, method: str = "GET", data: bytes | None = None) -> bytes:
        request = urllib.request.Request(url, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body: bytes = response.read()
        return body

    def get_raw(self, name: str = "state.bin") -> bytes | None:
        bucket, key = self._object(name)
        quoted = urllib.parse.quote(key, safe="")
        try:
            return self._request(f"{self.endpoint}/storage/v1/b/{bucket}/o/{quoted}?alt=media")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def put_raw(self, name: str, data: bytes) -> None:
        bucket, key = self._object(name)
        quoted = urllib.parse.quote(key, safe="")
        self._request(
            f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quoted}",
            method="POST",
            data=data,
        )

    def delete_raw(self, name: str = "state.bin") -> None:
        bucket, key = self._object(name)
        quoted = urllib.parse.quote(key, safe="")
        try:
            self._request(f"{self.endpoint}/storage/v1/b/{bucket}/o/{quoted}", method="DELETE")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise


@pytest.fixture
def gcs_backend(fake_gcs: Any) -> Backend:
    fake_gcs.start()  # running again if a test stopped it
    fake_gcs.create_bucket(GCS_BUCKET)
    return GCSBackend(
        fake_gcs.endpoint,
        f"gs://{GCS_BUCKET}/{uuid.uuid4().hex[:8]}/",
        dict(fake_gcs.storage_options),
    )


class AzureFixtures:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.azure]

    @pytest.fixture
    def backend(self, azure_backend: Backend) -> Backend:
        return azure_backend


class GCSFixtures:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.gcs]

    @pytest.fixture
    def backend(self, gcs_backend: Backend) -> Backend:
        return gcs_backend
