"""GCSStore specifics against fake-gcs-server on loopback (requests counted from its log)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from remote_checks import requests_per_operation
from statevault import StateManager
from statevault.errors import ConflictError, StorageError
from statevault.storage import open_store
from statevault.storage.gcs import GCSStore
from statevault.testing import RemoteStoreSuite

from backends import Backend
from emulators import GCS_BUCKET, ROOT, GCSFixtures

pytestmark = pytest.mark.gcs


def _paths(backend: Backend, name: str = "state.bin") -> dict[str, str]:
    key = backend.url(name).removeprefix(f"gs://{GCS_BUCKET}/").replace("/", "%2F")
    return {
        "media": f"GET /download/storage/v1/b/{GCS_BUCKET}/o/{key}",
        "meta": f"GET /storage/v1/b/{GCS_BUCKET}/o/{key}",
        "upload": f"POST /upload/storage/v1/b/{GCS_BUCKET}/o",
        "delete": f"DELETE /storage/v1/b/{GCS_BUCKET}/o/{key}",
    }


def test_each_operation_costs_one_request(gcs_backend: Backend, fake_gcs: Any) -> None:
    store = gcs_backend.open()
    p = _paths(gcs_backend)
    expected = {
        "write": [p["upload"]],
        "read": [p["media"]],
        "info": [p["meta"]],
        "read_range": [p["media"]],
        "read_head": [p["media"]],
        "write_if_match": [p["upload"]],
        "write_if_none_match": [p["upload"]],
        "delete": [p["delete"]],
    }
    # The write first (the later operations need its token), then the rest in this order.
    operations = [name for name in expected if name != "write"]
    assert requests_per_operation(fake_gcs, store, operations) == expected


@pytest.mark.parametrize("keep", [0, 3])
def test_requests_per_save_and_load(gcs_backend: Backend, fake_gcs: Any, keep: int) -> None:
    url, options = gcs_backend.url("count.state"), dict(gcs_backend.storage_options)
    extra = 1 if keep else 0
    p = _paths(gcs_backend, "count.state")

    def manager() -> StateManager:
        return StateManager(url, storage_options=options, keep_versions=keep)

    first = manager()
    mark = fake_gcs.mark()
    first.save({"n": 0})
    assert len(fake_gcs.requests_since(mark)) <= 2 + extra, fake_gcs.requests_since(mark)
    mark = fake_gcs.mark()
    first.save({"n": 1})
    assert fake_gcs.requests_since(mark) == [p["upload"]] * (1 + extra)
    mark = fake_gcs.mark()
    assert manager().load() == {"n": 1}
    assert fake_gcs.requests_since(mark) == [p["media"]]


def test_two_clients_stale_writer_gets_conflict(gcs_backend: Backend) -> None:
    options = dict(gcs_backend.storage_options, skip_instance_cache=True)
    url = gcs_backend.url("two.state")
    a = StateManager(url, storage_options=options)
    b = StateManager(url, storage_options=options)
    a.save({"who": "a"})
    assert b.load() == {"who": "a"}
    a.save({"who": "a", "n": 2})
    with pytest.raises(ConflictError) as caught:
        b.save({"who": "b"})
    assert (caught.value.expected, caught.value.found) == (1, 2)
    assert StateManager(url, storage_options=options).load() == {"who": "a", "n": 2}
    c = open_store(gcs_backend.url("first.bin"), options)
    d = open_store(gcs_backend.url("first.bin"), options)
    c.write([b"c"], expect=None)
    with pytest.raises(ConflictError):
        d.write([b"d"], expect=None)  # ifGenerationMatch=0 over an existing object: 412
    assert bytes(d.read()[0]) == b"c"


class TestGCSRemoteStore(RemoteStoreSuite, GCSFixtures):
    """Fail-fast and outage behaviour (``statevault.testing.RemoteStoreSuite``) on
    fake-gcs-server. The silent-server tests stay off (not in the default run, for CI time)."""

    remote_url = "gs://box/state.bin"
    test_endpoint_that_never_answers_times_out_as_unavailable = None
    test_upload_the_server_never_reads_hits_the_write_deadline = None

    def endpoint_options(self, endpoint: str) -> dict[str, Any]:
        return {"endpoint_url": endpoint, "token": "anon", "project": "x"}

    @pytest.fixture
    def outage(self, fake_gcs: Any) -> Any:
        return fake_gcs.stopped


def test_missing_bucket_is_a_clear_error_naming_it(fake_gcs: Any) -> None:
    store = open_store("gs://no-such-bucket/state.bin", fake_gcs.storage_options)
    for operation in (lambda: store.write([b"x"]), store.read, store.info):
        with pytest.raises(StorageError, match="'no-such-bucket' does not exist"):
            operation()


def test_gcs_urls(gcs_backend: Backend, fake_gcs: Any) -> None:
    name = gcs_backend.url("n.bin").removeprefix("gs://")
    store = open_store(f"gcs://{name}", fake_gcs.storage_options)
    assert isinstance(store, GCSStore)
    assert store.url == f"gs://{name}"
    with pytest.raises(ValueError, match="does not name an object"):
        open_store("gs://bucket-only", fake_gcs.storage_options)


def test_the_emulator_honours_preconditions() -> None:
    """backends/gcs/check_preconditions.py: the script the docs cite, run as written."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "backends" / "gcs" / "check_preconditions.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preconditions honoured" in result.stdout
