"""S3Store specifics against a real (moto) S3 server: request counts, failures, credentials."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from remote_checks import (
    assert_exits_cleanly,
    listing_in_pages,
    requests_per_operation,
    start_script,
)
from statevault.errors import (
    ConflictError,
    StateNotFoundError,
    StorageConfigurationError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from statevault.storage import open_store
from statevault.storage import s3 as s3_module
from statevault.storage.s3 import S3Store
from statevault.testing import RemoteStoreSuite

from backends import S3_BUCKET, Backend, MotoS3, S3Fixtures

pytestmark = pytest.mark.s3

#: A hang guard (pytest-timeout fails the test), not a timing assertion: no test asserts how
#: long an operation took; the defaults fail in about 2-3 s.
HANG_GUARD_S = 120


def _options(server: MotoS3, **extra: Any) -> dict[str, Any]:
    return {**server.storage_options, **extra}


def test_each_operation_costs_one_request(s3_backend: Backend, s3_bucket: MotoS3) -> None:
    store = s3_backend.open()
    key = s3_backend.url().removeprefix("s3://")
    expected = {
        "write": [f"PUT /{key}"],
        "read": [f"GET /{key}"],
        "info": [f"HEAD /{key}"],
        "read_range": [f"GET /{key}"],
        "write_if_match": [f"PUT /{key}"],
        "write_if_none_match": [f"PUT /{key}"],
        "delete": [f"HEAD /{key}", f"DELETE /{key}"],
    }
    # The write first (the later operations need its token), then the rest in this order.
    operations = [name for name in expected if name != "write"]
    assert requests_per_operation(s3_bucket, store, operations) == expected


def test_keep_copy_is_one_server_side_copy_and_uploads_nothing(
    s3_backend: Backend, s3_bucket: MotoS3
) -> None:
    store = s3_backend.open()
    slot = store.sibling(".versions/1")
    written = store.write([b"version ", b"one"])
    mark = s3_bucket.mark()
    assert store.keep_copy(slot, [b"version ", b"one"], written) == 0
    key = s3_backend.url().removeprefix("s3://")
    assert s3_bucket.requests_since(mark) == [f"PUT /{key}.versions/1"]  # CopyObject
    store.write([b"version two"])
    assert bytes(slot.read()[0]) == b"version one"  # the copy outlives the next replace


def test_keep_copy_of_a_replaced_object_writes_the_given_bytes(s3_backend: Backend) -> None:
    # Another write came between the save and its copy: the copy's token is not the save's,
    # so the slot gets the bytes the save wrote (moto ignores CopySourceIfMatch; S3 refuses).
    store = s3_backend.open()
    slot = store.sibling(".versions/1")
    written = store.write([b"saved"])
    store.write([b"someone else's"])
    assert store.keep_copy(slot, [b"saved"], written) == len(b"saved")
    assert bytes(slot.read()[0]) == b"saved"


def test_keep_copy_of_a_deleted_object_writes_the_given_bytes(s3_backend: Backend) -> None:
    # The copy's source is gone (NoSuchKey): the slot still gets the saved bytes.
    store = s3_backend.open()
    slot = store.sibling(".versions/1")
    written = store.write([b"saved"])
    store.delete()
    assert store.keep_copy(slot, [b"saved"], written) == len(b"saved")
    assert bytes(slot.read()[0]) == b"saved"


def test_history_on_s3_uploads_each_version_once(s3_bucket: MotoS3) -> None:
    from statevault import StateManager

    sm = StateManager(
        "s3://statevault-test/copied.sv",
        storage_options=s3_bucket.storage_options,
        keep_versions=2,
        spool_dir=False,
        delta=False,
    )
    for n in range(3):
        sm.save({"n": n, "blob": bytes(range(256)) * 40})
    assert sm.last_save is not None
    assert sm.last_save.bytes_written == sm.get_state_info()["size"]  # the HEAD, not twice
    assert [sm.load(v["generation"])["n"] for v in sm.list_versions()] == [2, 1, 0]


def test_a_listing_is_one_list_request_per_page_and_no_head(
    s3_backend: Backend, s3_bucket: MotoS3
) -> None:
    found, sent = listing_in_pages(s3_bucket, s3_backend.open())
    assert found == [(f"p{i}", i) for i in range(5)]
    assert len(sent) == 3, sent
    assert all(r.startswith(f"GET /{S3_BUCKET}?") and "list-type=2" in r for r in sent), sent
    folder = s3_backend.open().sibling(".packs")
    assert isinstance(folder, S3Store)
    folder.list_page = 1000
    mark = s3_bucket.mark()
    assert len(folder.list_dir()) == 5
    assert len(s3_bucket.requests_since(mark)) == 1


def test_listing_a_missing_bucket_says_so(s3_bucket: MotoS3) -> None:
    folder = open_store("s3://no-such-bucket/state.sv.packs", s3_bucket.storage_options)
    with pytest.raises(StorageConfigurationError, match="'no-such-bucket' does not exist"):
        folder.list_dir()


def test_conflict_write_sends_nothing_more(s3_backend: Backend) -> None:
    store = s3_backend.open()
    store.write([b"one"])
    with pytest.raises(ConflictError) as caught:
        store.write([b"two"], expect=None)
    assert isinstance(caught.value.__cause__, FileExistsError | OSError)


def test_separate_filesystems_see_each_others_writes(s3_backend: Backend) -> None:
    """No listings cache: a store that saw 'missing' sees the object once another writes it."""
    options = dict(s3_backend.storage_options, skip_instance_cache=True)
    a = open_store(s3_backend.url(), options)
    b = open_store(s3_backend.url(), options)
    assert b.info() is None
    with pytest.raises(StateNotFoundError):
        b.read()
    written = a.write([b"from a"])
    seen = b.info()
    assert seen is not None
    assert seen.token == written.token
    b.write([b"from b"], expect=written.token)
    assert bytes(a.read()[0]) == b"from b"
    assert a.delete() is True
    assert b.info() is None


def test_s3a_and_url_normalisation(s3_bucket: MotoS3) -> None:
    store = open_store(f"s3a://{S3_BUCKET}/dir/state.bin", s3_bucket.storage_options)
    assert isinstance(store, S3Store)
    assert store.url == f"s3://{S3_BUCKET}/dir/state.bin"
    assert store.protocol == "s3"
    store.write([b"via s3a"])
    assert bytes(open_store(store.url, s3_bucket.storage_options).read()[0]) == b"via s3a"


@pytest.mark.parametrize("url", ["s3://bucket-only", "s3://bucket/", "s3://bucket/dir/"])
def test_url_without_an_object_key_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="does not name an object"):
        open_store(url, {"anon": True})


def test_missing_bucket_is_a_storage_error(s3_bucket: MotoS3) -> None:
    store = open_store("s3://no-such-bucket/state.bin", s3_bucket.storage_options)
    with pytest.raises(StorageError) as caught:
        store.write([b"x"])
    assert "s3://no-such-bucket/state.bin" in str(caught.value)


def test_oversized_object_is_refused_before_any_request(
    s3_backend: Backend, s3_bucket: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "MAX_PUT_BYTES", 10)
    store = s3_backend.open()
    mark = s3_bucket.mark()
    with pytest.raises(StorageError, match="at most 5 GiB"):
        store.write([b"x" * 11])
    assert s3_bucket.requests_since(mark) == []


def test_options_merge_with_fail_fast_defaults(s3_bucket: MotoS3) -> None:
    options = _options(s3_bucket, config_kwargs={"read_timeout": 60}, retries=4)
    store = open_store(f"s3://{S3_BUCKET}/x", options)
    assert isinstance(store, S3Store)
    fs = store._fs
    assert fs.config_kwargs["read_timeout"] == 60
    assert fs.config_kwargs["connect_timeout"] == 2
    assert fs.config_kwargs["retries"]["mode"] == "standard"
    assert fs.retries == 4
    # equal options share one filesystem (one client), siblings too; asking opts out
    assert open_store(f"s3://{S3_BUCKET}/y", options)._fs is fs  # type: ignore[attr-defined]
    assert store.sibling(".h")._fs is fs  # type: ignore[attr-defined]
    fresh = open_store(f"s3://{S3_BUCKET}/x", {**options, "skip_instance_cache": True})
    assert fresh._fs is not fs  # type: ignore[attr-defined]


# -- unreachable endpoint ------------------------------------------------------------------


class TestS3RemoteStore(RemoteStoreSuite, S3Fixtures):
    """Fail-fast and outage behaviour (``statevault.testing.RemoteStoreSuite``) of s3fs
    against moto on loopback; hangs are left to pytest-timeout (``HANG_GUARD_S``)."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [
        pytest.mark.s3,
        pytest.mark.timeout(HANG_GUARD_S),
    ]
    remote_url = "s3://bucket/state.bin"
    secrets = ("testing",)  # no credentials in messages
    hang_guard_s = None

    def endpoint_options(self, endpoint: str) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }

    def read_timeout_options(self, seconds: float) -> dict[str, Any]:
        return {"config_kwargs": {"read_timeout": seconds}}

    @pytest.fixture
    def outage(self, s3_bucket: MotoS3) -> Any:
        return s3_bucket.stopped

    def test_generic_store_over_s3fs_reports_an_unreachable_endpoint(
        self, closed_port: int
    ) -> None:
        """A cached s3:// URL goes through GenericStore (which asks the S3 backend's
        ``classify_error`` about s3fs's errors): an unreachable endpoint is still "unavailable"."""
        s3 = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{closed_port}"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"total_max_attempts": 1}},
        }
        store = open_store("simplecache::s3://bucket/state.bin", {"s3": s3})
        assert type(store).__name__ == "GenericStore"
        with pytest.raises(StorageUnavailableError, match="cannot be reached"):
            store.info()


def test_siblings_keep_the_write_deadline() -> None:
    options = {"anon": True, "write_timeout": 1}
    store = open_store("s3://bucket/state.bin", options)
    assert store.sibling(".h")._write_timeout == 1  # type: ignore[attr-defined]


# -- credentials and access ----------------------------------------------------------------


@pytest.fixture
def read_only_keys(s3_bucket: MotoS3, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Keys of an IAM user allowed only to read; moto enforces IAM for the rest of the test.

    ``guarded.bin`` holds b"stored".
    """
    import moto.settings

    s3 = s3_bucket.client()
    iam = s3_bucket.client("iam")
    try:
        s3.put_object(Bucket=S3_BUCKET, Key="guarded.bin", Body=b"stored")
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="reader")["AccessKey"]
    finally:
        s3.close()
        iam.close()
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def test_access_denied_is_a_permission_error(
    s3_bucket: MotoS3, read_only_keys: dict[str, str]
) -> None:
    store = open_store(f"s3://{S3_BUCKET}/guarded.bin", _options(s3_bucket, **read_only_keys))
    assert bytes(store.read()[0]) == b"stored"
    with pytest.raises(StoragePermissionError, match="Access denied while saving") as caught:
        store.write([b"nope"])
    assert isinstance(caught.value.__cause__, PermissionError)
    assert read_only_keys["secret"] not in str(caught.value)
    assert bytes(store.read()[0]) == b"stored"


def test_unknown_access_key_is_a_permission_error(
    s3_bucket: MotoS3, read_only_keys: dict[str, str]
) -> None:
    store = open_store(
        f"s3://{S3_BUCKET}/guarded.bin", _options(s3_bucket, key="AKIAUNKNOWN", secret="wrong")
    )
    with pytest.raises(StoragePermissionError):
        store.read()
    with pytest.raises(StoragePermissionError):
        store.info()


# -- process exit ---------------------------------------------------------------------------


def test_no_unclosed_session_warnings_at_exit(s3_backend: Backend, s3_bucket: MotoS3) -> None:
    """s3fs closes its aiohttp sessions itself (finalizers); nothing leaks or warns."""
    assert_exits_cleanly(s3_backend.url(), dict(s3_bucket.storage_options))


# -- backends/s3/serve.py --------------------------------------------------------------------


def test_serve_script_prints_working_options_and_stops_on_ctrl_c() -> None:
    with start_script("backends/s3/serve.py", "--bucket", "handtest") as options:
        assert options["client_kwargs"]["endpoint_url"].startswith("http://127.0.0.1:")
        store = open_store("s3://handtest/state.bin", options)
        store.write([b"by hand"])
        assert bytes(store.read()[0]) == b"by hand"
