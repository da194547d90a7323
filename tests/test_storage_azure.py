"""AzureStore specifics against a real Azure Storage emulator (Azurite on loopback).

Request counts come from Azurite's own access log, so they are what the server received.
"""

from __future__ import annotations

from typing import Any

import pytest

import statevault
from remote_checks import (
    assert_exits_cleanly,
    listing_in_pages,
    requests_per_operation,
    start_script,
)
from statevault import StateManager
from statevault.errors import (
    ConflictError,
    StateNotFoundError,
    StorageError,
    StoragePermissionError,
)
from statevault.storage import azure as azure_module
from statevault.storage import open_store
from statevault.storage.azure import AzureStore
from statevault.testing import RemoteStoreSuite

from backends import Backend
from emulators import AZURE_CONTAINER, AzureFixtures, azurite_module

pytestmark = pytest.mark.azure

ACCOUNT = "devstoreaccount1"


def _path(backend: Backend, name: str = "state.bin") -> str:
    """The request path Azurite logs for ``name``: /account/container/blob."""
    return f"/{ACCOUNT}/" + backend.url(name).removeprefix("az://")


def _options_for(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {**azurite_module().storage_options(endpoint), **extra}


# -- requests -------------------------------------------------------------------------------


def test_each_operation_costs_one_request(azure_backend: Backend, azurite: Any) -> None:
    store = azure_backend.open()
    path = _path(azure_backend)
    expected = {
        "write": [f"PUT {path}"],
        "read": [f"GET {path}"],
        "info": [f"HEAD {path}"],
        "read_range": [f"GET {path}"],
        "read_head": [f"GET {path}"],
        "write_if_match": [f"PUT {path}"],
        "write_if_none_match": [f"PUT {path}"],
        "delete": [f"DELETE {path}"],
        "delete_missing": [f"DELETE {path}"],
    }
    # The write first (the later operations need its token), then the rest in this order.
    operations = [name for name in expected if name != "write"]
    assert requests_per_operation(azurite, store, operations) == expected


def test_a_large_state_is_still_one_put(azure_backend: Backend, azurite: Any) -> None:
    """Above the SDK's 64 MiB single-put default the SDK would stage blocks; we do not."""
    store = azure_backend.open()
    data = bytes(range(256)) * (65 * 2**12)  # 65 MiB
    mark = azurite.mark()
    written = store.write([data], expect=None)
    assert azurite.requests_since(mark) == [f"PUT {_path(azure_backend)}"]
    assert written.size == len(data)
    back, info = store.read()
    assert bytes(back) == data
    assert info.token == written.token
    with pytest.raises(ConflictError):
        store.write([data], expect=written.token + "0")
    assert bytes(store.read_range(len(data) - 3, len(data) + 10)) == data[-3:]


@pytest.mark.parametrize("keep", [0, 3])
def test_requests_per_save_and_load(azure_backend: Backend, azurite: Any, keep: int) -> None:
    """The same budget as S3: at most 2 requests a save and 1 a load; history adds one PUT."""
    url, options = azure_backend.url("count.state"), dict(azure_backend.storage_options)
    extra = 1 if keep else 0
    path = _path(azure_backend, "count.state")

    def manager(**kw: Any) -> StateManager:
        return StateManager(url, storage_options=options, keep_versions=keep, **kw)

    first = manager()
    mark = azurite.mark()
    first.save({"n": 0})  # first save of a manager that has seen nothing: probe + PUT
    assert len(azurite.requests_since(mark)) <= 2 + extra, azurite.requests_since(mark)
    mark = azurite.mark()
    first.save({"n": 1})  # steady state: one conditional PUT (+ the version's PUT)
    assert (
        azurite.requests_since(mark)
        == [f"PUT {path}"] + [f"PUT {path}.versions/{2 % (keep + 1)}"] * extra
    )
    mark = azurite.mark()
    assert manager().save_state({"n": 2})  # a fresh manager over an existing state
    assert len(azurite.requests_since(mark)) <= 2 + extra, azurite.requests_since(mark)
    mark = azurite.mark()
    assert manager().load() == {"n": 2}
    assert azurite.requests_since(mark) == [f"GET {path}"]
    mark = azurite.mark()
    statevault.TradingStateManager(url, storage_options=options).get_portfolio_summary()
    assert len(azurite.requests_since(mark)) <= 3


# -- two writers ----------------------------------------------------------------------------


def test_two_clients_stale_writer_gets_conflict(azure_backend: Backend) -> None:
    """Two managers with separate clients (as two processes would have) on one blob."""
    options = dict(azure_backend.storage_options, skip_instance_cache=True)
    url = azure_backend.url("two.state")
    a = StateManager(url, storage_options=options)
    b = StateManager(url, storage_options=options)
    assert a.store._account is not b.store._account  # type: ignore[attr-defined]
    a.save({"who": "a"})
    assert b.load() == {"who": "a"}
    a.save({"who": "a", "n": 2})
    with pytest.raises(ConflictError) as caught:
        b.save({"who": "b"})
    assert (caught.value.expected, caught.value.found) == (1, 2)
    assert b.save_state({"who": "b"}) is False  # the forgiving API refuses too
    assert StateManager(url, storage_options=options).load() == {"who": "a", "n": 2}
    # Two first writes racing for a blob that does not exist: If-None-Match lets one in.
    c = open_store(azure_backend.url("first.bin"), options)
    d = open_store(azure_backend.url("first.bin"), options)
    assert c.info() is None
    assert d.info() is None
    c.write([b"c"], expect=None)
    with pytest.raises(ConflictError):
        d.write([b"d"], expect=None)
    assert bytes(d.read()[0]) == b"c"


def test_conflict_causes_are_the_services_answers(azure_backend: Backend) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    store = azure_backend.open()
    first = store.write([b"one"])
    with pytest.raises(ConflictError) as created:
        store.write([b"two"], expect=None)
    assert isinstance(created.value.__cause__, ResourceExistsError)  # 409 BlobAlreadyExists
    with pytest.raises(ConflictError) as replaced:
        store.write([b"two"], expect=first.token + "0")
    assert isinstance(replaced.value.__cause__, ResourceModifiedError)  # 412 ConditionNotMet
    assert store.delete()
    with pytest.raises(ConflictError):
        store.write([b"two"], expect=first.token)  # deleted meanwhile
    assert store.info() is None


# -- failures -------------------------------------------------------------------------------


class TestAzureRemoteStore(RemoteStoreSuite, AzureFixtures):
    """Fail-fast and outage behaviour (``statevault.testing.RemoteStoreSuite``) on Azurite."""

    remote_url = "az://box/state.bin"
    secrets = (azurite_module().ACCOUNT_KEY,)

    def endpoint_options(self, endpoint: str) -> dict[str, Any]:
        return _options_for(endpoint, skip_instance_cache=True)

    def read_timeout_options(self, seconds: float) -> dict[str, Any]:
        return {"read_timeout": seconds}

    @pytest.fixture
    def outage(self, azurite: Any) -> Any:
        return azurite.stopped


def test_siblings_keep_the_write_deadline() -> None:
    options = _options_for("http://127.0.0.1:9", write_timeout=1, skip_instance_cache=True)
    store = open_store("az://box/state.bin", options)
    assert store.sibling(".h")._write_timeout == 1  # type: ignore[attr-defined]


def test_wrong_account_key_is_a_permission_error(azure_backend: Backend, azurite: Any) -> None:
    store = azure_backend.open()
    store.write([b"stored"])
    wrong = "A" * 86 + "=="
    bad = dict(azure_backend.storage_options)
    bad["connection_string"] = bad["connection_string"].replace(azurite_module().ACCOUNT_KEY, wrong)
    intruder = open_store(azure_backend.url(), bad)
    for operation, action in (
        (lambda: intruder.write([b"nope"]), "saving"),
        (intruder.read, "reading"),
        (intruder.info, "inspecting"),
        (intruder.delete, "deleting"),
    ):
        with pytest.raises(StoragePermissionError, match=f"Access denied while {action}") as ei:
            operation()
        assert ei.value.__cause__ is not None
        assert wrong not in str(ei.value)
    assert bytes(store.read()[0]) == b"stored"


def test_missing_container_is_a_clear_error_naming_it(azurite: Any) -> None:
    store = open_store("az://no-such-container/dir/state.bin", azurite.storage_options)
    listing = store.sibling(".packs").list_dir
    for operation in (lambda: store.write([b"x"]), store.read, store.info, store.delete, listing):
        with pytest.raises(StorageError, match="'no-such-container' does not exist") as caught:
            operation()
        assert not isinstance(caught.value, StateNotFoundError)
        assert "az://no-such-container/dir/state.bin" in str(caught.value)
    sm = StateManager("az://no-such-container/s.state", storage_options=azurite.storage_options)
    with pytest.raises(StorageError, match="does not exist"):
        sm.save({"a": 1})


def test_oversized_object_is_refused_before_any_request(
    azure_backend: Backend, azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_module, "MAX_PUT_BYTES", 10)
    store = azure_backend.open()
    mark = azurite.mark()
    with pytest.raises(StorageError, match="at most 5000 MiB"):
        store.write([b"x" * 11])
    assert azurite.requests_since(mark) == []


def test_a_listing_is_one_list_request_per_page_and_no_head(
    azure_backend: Backend, azurite: Any
) -> None:
    found, sent = listing_in_pages(azurite, azure_backend.open())
    assert found == [(f"p{i}", i) for i in range(5)]
    assert sent == [f"GET /devstoreaccount1/{AZURE_CONTAINER}"] * 3, sent


# -- URLs and options -------------------------------------------------------------------------


def test_abfs_urls_and_normalisation(azure_backend: Backend, azurite: Any) -> None:
    name = azure_backend.url("n.bin").removeprefix(f"az://{AZURE_CONTAINER}/")
    for scheme in ("abfs", "abfss", "az"):
        store = open_store(f"{scheme}://{AZURE_CONTAINER}/{name}", azurite.storage_options)
        assert isinstance(store, AzureStore)
        assert store.url == f"az://{AZURE_CONTAINER}/{name}"
    store.write([b"via abfs"])
    assert bytes(open_store(azure_backend.url("n.bin"), azurite.storage_options).read()[0]) == (
        b"via abfs"
    )


@pytest.mark.parametrize("url", ["az://container-only", "az://container/", "abfs://box/dir/"])
def test_url_without_a_blob_name_is_rejected(url: str, azurite: Any) -> None:
    with pytest.raises(ValueError, match="does not name a blob"):
        open_store(url, azurite.storage_options)


def test_options_defaults_and_sharing(azurite: Any) -> None:
    options = dict(azurite.storage_options)
    store = open_store(f"az://{AZURE_CONTAINER}/x", options)
    assert isinstance(store, AzureStore)
    account = store._account
    policy = account.client._config.retry_policy
    assert policy.total_retries == 1
    assert policy.backoff == azure_module.RETRY_BACKOFF_S
    assert account.client._config.max_single_put_size == azure_module.MAX_PUT_BYTES
    # equal options share one client, siblings too; asking opts out
    assert open_store(f"az://{AZURE_CONTAINER}/y", options)._account is account  # type: ignore[attr-defined]
    assert store.sibling(".h")._account is account
    fresh = open_store(f"az://{AZURE_CONTAINER}/x", {**options, "skip_instance_cache": True})
    assert fresh._account is not account  # type: ignore[attr-defined]
    tuned = open_store(f"az://{AZURE_CONTAINER}/x", {**options, "retry_total": 4})
    assert tuned._account.client._config.retry_policy.total_retries == 4  # type: ignore[attr-defined]
    assert options == azurite.storage_options  # the caller's dict is not changed


# -- process exit -----------------------------------------------------------------------------


def test_no_unclosed_session_warnings_at_exit(azure_backend: Backend) -> None:
    assert_exits_cleanly(azure_backend.url(), dict(azure_backend.storage_options))


# -- backends/azure/azurite.py by hand --------------------------------------------------------


def test_start_script_prints_working_options_and_stops_on_ctrl_c() -> None:
    with start_script("backends/azure/azurite.py", "--container", "handtest") as options:
        assert "BlobEndpoint=http://127.0.0.1:" in options["connection_string"]
        store = open_store("az://handtest/state.bin", options)
        store.write([b"by hand"])
        assert bytes(store.read()[0]) == b"by hand"
