"""open_store's protocol registry, and error translation shared by all backends."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from statevault.errors import (
    StateNotFoundError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from statevault.storage import Store, open_store, register_store
from statevault.storage import registry as registry_module
from statevault.storage.base import redact_url, translate_error
from statevault.storage.generic import GenericStore
from statevault.storage.local import LocalStore
from statevault.storage.memory import MemoryStore
from statevault.storage.s3 import S3Store

from backends import Backend


@pytest.fixture(autouse=True)
def restore_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(registry_module, "_registry", dict(registry_module._registry))


class Recording(MemoryStore):
    """A user Store: memory, remembering how it was constructed."""

    opened: list[tuple[str, Mapping[str, Any] | None]] = []  # noqa: RUF012

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        Recording.opened.append((url, storage_options))
        super().__init__("memory://recording/" + url.split("://", 1)[-1])


# -- built-in protocols -------------------------------------------------------------------


def test_builtin_protocols(tmp_path: Path, clean_memory: None) -> None:
    assert isinstance(open_store(tmp_path / "a"), LocalStore)
    assert isinstance(open_store(str(tmp_path / "a")), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/a"), LocalStore)
    assert isinstance(open_store(f"local://{tmp_path}/a"), LocalStore)
    assert isinstance(open_store("memory://x/a"), MemoryStore)
    assert isinstance(open_store("MEMORY://x/a"), MemoryStore)
    assert isinstance(open_store("s3://bucket/a", {"anon": True}), S3Store)
    assert isinstance(open_store("s3a://bucket/a", {"anon": True}), S3Store)


def test_unknown_protocols_go_through_the_generic_store(generic_backend: Backend) -> None:
    store = generic_backend.open()
    assert type(store) is GenericStore
    assert store.protocol == "dir"
    assert store.url == generic_backend.url()


def test_url_must_be_text() -> None:
    with pytest.raises(TypeError, match="url must be"):
        open_store(b"/tmp/x")  # type: ignore[arg-type]


def test_protocol_of() -> None:
    assert registry_module.protocol_of("/a/b") is None
    assert registry_module.protocol_of("rel/b") is None
    assert registry_module.protocol_of("S3://b/k") == "s3"
    assert registry_module.protocol_of("simplecache::s3://b/k") == "simplecache"
    assert registry_module.protocol_of("dir::file:///tmp") == "dir"


# -- user registrations -------------------------------------------------------------------


def test_register_a_class_last_registration_wins(clean_memory: None) -> None:
    Recording.opened.clear()
    register_store("svtest", GenericStore)
    register_store("svtest", Recording)
    store = open_store("svtest://some/state", {"opt": 1})
    assert isinstance(store, Recording)
    assert Recording.opened == [("svtest://some/state", {"opt": 1})]


def test_register_with_the_decorator_form(clean_memory: None) -> None:
    @register_store("svdeco")
    class Decorated(Recording):
        pass

    assert isinstance(open_store("svdeco://x"), Decorated)


def test_register_a_lazy_dotted_path(clean_memory: None) -> None:
    register_store("svlazy://", "statevault.storage.memory:MemoryStore")
    store = open_store("svlazy://x")
    assert type(store) is MemoryStore


def test_override_a_builtin_protocol(clean_memory: None, tmp_path: Path) -> None:
    register_store("file", Recording)
    assert isinstance(open_store(tmp_path / "plain"), Recording)


def test_dotted_path_to_a_missing_module_says_what_to_install() -> None:
    register_store("svmissing", "statevault_no_such_module.backend:Store")
    with pytest.raises(StorageError, match="install the package that provides") as caught:
        open_store("svmissing://x")
    assert isinstance(caught.value.__cause__, ImportError)


def test_dotted_path_to_something_not_a_store() -> None:
    register_store("svnotastore", "statevault.errors:StateError")
    with pytest.raises(StorageError, match="is not a Store subclass"):
        open_store("svnotastore://x")


def test_register_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"package\.module:Class"):
        register_store("svbad", "no_colon_here")
    with pytest.raises(TypeError, match="Store subclass"):
        register_store("svbad", dict)  # type: ignore[arg-type]


def test_missing_s3fs_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if s3fs were not installed: importing it fails, open_store says what to do."""
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` raise ImportError
    monkeypatch.delitem(sys.modules, "statevault.storage.s3")
    monkeypatch.setitem(registry_module._registry, "s3", "statevault.storage.s3:S3Store")
    with pytest.raises(
        StorageError, match=r"Install s3fs to use s3:// \(pip install 'statevault\[s3\]'\)"
    ) as caught:
        open_store("s3://bucket/state")
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.parametrize(
    ("url", "package", "module", "extra"),
    [
        ("gcs://bucket/state", "gcsfs", "gcs", "gcs"),
        ("gs://bucket/state", "gcsfs", "gcs", "gcs"),
        ("az://box/state", "adlfs", "azure", "azure"),
        ("abfs://box/state", "adlfs", "azure", "azure"),
    ],
)
def test_cloud_protocol_without_its_package(
    monkeypatch: pytest.MonkeyPatch, url: str, package: str, module: str, extra: str
) -> None:
    """As if the backend's package were not installed: the hint names the extra."""
    protocol = url.split("://", maxsplit=1)[0]
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"statevault.storage.{module}", raising=False)
    monkeypatch.setitem(registry_module._registry, protocol, registry_module._BUILTIN[protocol])
    with pytest.raises(
        StorageError,
        match=rf"Install {package} to use {protocol}:// \(pip install 'statevault\[{extra}\]'\)",
    ) as caught:
        open_store(url)
    assert isinstance(caught.value.__cause__, ImportError)


def test_protocol_nobody_knows() -> None:
    with pytest.raises(StorageError, match="Check the URL's protocol"):
        open_store("nosuchprotocol://x/y")


def test_generic_store_that_cannot_connect_hides_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StorageUnavailableError) as caught:
        open_store(f"ftp://alice:hunter2@127.0.0.1:{port}/state.bin", {"timeout": 5})
    assert "hunter2" not in str(caught.value)
    assert f"ftp://alice@127.0.0.1:{port}/state.bin" not in str(caught.value)
    assert f"ftp://127.0.0.1:{port}/state.bin" in str(caught.value)


# -- error translation --------------------------------------------------------------------


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), StorageUnavailableError),
        (socket.gaierror(-2, "Name or service not known"), StorageUnavailableError),
        (TimeoutError("timed out"), StorageUnavailableError),
        (EndpointConnectionError(endpoint_url="http://x"), StorageUnavailableError),
        (_chained(OSError("wrapped"), ConnectionResetError()), StorageUnavailableError),
        (PermissionError(errno.EACCES, "denied"), StoragePermissionError),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject"),
            StoragePermissionError,
        ),
        (OSError(errno.ENOSPC, "No space left on device"), StorageError),
        (OSError(errno.EIO, "Input/output error"), StorageError),
        (RuntimeError("anything else"), StorageError),
    ],
)
def test_translate_error(exc: BaseException, expected: type[StorageError]) -> None:
    # S3's codes and botocore's exception types are the S3 backend's knowledge, passed in.
    err = translate_error(exc, url="s3://b/k", action="saving", classify=S3Store.classify_error)
    assert type(err) is expected
    assert err.__cause__ is exc
    assert "s3://b/k" in str(err)
    assert "saving" in str(err)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://x"),
        ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject"),
    ],
)
def test_backend_knowledge_is_not_in_the_generic_rules(exc: BaseException) -> None:
    """Without the S3 backend's classifier, S3 codes and botocore types mean nothing special."""
    assert type(translate_error(exc, url="s3://b/k", action="saving")) is StorageError


def test_disk_full_message_says_what_to_do() -> None:
    err = translate_error(OSError(errno.ENOSPC, "full"), url="/x", action="saving")
    assert "free disk space" in str(err)


def test_redact_url() -> None:
    assert redact_url("s3://key:secret@bucket/k") == "s3://bucket/k"
    assert redact_url("ftp://u:p@host:21/x") == "ftp://host:21/x"
    assert redact_url("s3://bucket/k") == "s3://bucket/k"
    assert redact_url("/plain/path") == "/plain/path"


def test_store_is_abstract() -> None:
    with pytest.raises(TypeError):
        Store("x")  # type: ignore[abstract]


def test_not_found_is_not_a_storage_error(tmp_path: Path) -> None:
    """A missing state is a normal first run, not a failing backend."""
    with pytest.raises(StateNotFoundError) as caught:
        open_store(tmp_path / "missing").read()
    assert not isinstance(caught.value, StorageError)
