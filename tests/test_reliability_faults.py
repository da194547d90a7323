"""Fault injection over real parts: every OS call of a local save and every request of an S3
save fails in turn, and what a fresh process loads afterwards is checked (tests/faults/).

Default run: every call of a save x (EIO, ENOSPC) x (before, after it landed) locally, and
the S3 requests of a save x (refuse, silence, delay) x (once, on every attempt).
``tox -e stress`` (``STATEVAULT_STRESS=1``) adds EROFS and EACCES, saves without history and
the first save of a manager. Scenarios that reproduce a known loss (issue 10, loss paths 1
and 7) are asserted in test_reliability_losses.py; here every other invariant must hold.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from statevault import StateManager
from statevault.storage import open_store

from backends import MotoS3
from faults import STRESS, Action, FaultProxy, inject_local
from faults.sweep import ERRNOS, local_calls, s3_options, s3_scenario, sweep_local

# -- the harness itself -----------------------------------------------------------------------


def test_faulty_os_fails_the_chosen_call_before_it_happens(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.write([b"one"])
    with inject_local(tmp_path) as fos:
        fos.arm(op="replace", err=errno.ENOSPC)
        with pytest.raises(OSError, match="No space") as info:
            store._replace([b"two"], 0o600)  # type: ignore[attr-defined]
        assert info.value.errno == errno.ENOSPC
    assert (tmp_path / "s").read_bytes() == b"one"
    assert [c.op for c in fos.calls].count("replace") == 1


def test_faulty_os_can_fail_a_call_after_it_landed(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.write([b"one"])
    with inject_local(tmp_path) as fos:
        fos.arm(op="replace", err=errno.EIO, after=True)
        with pytest.raises(OSError):
            store._replace([b"two"], 0o600)  # type: ignore[attr-defined]
    assert (tmp_path / "s").read_bytes() == b"two"  # it happened, then reported failure


def test_faulty_os_only_sees_its_root(tmp_path: Path) -> None:
    inside, outside = open_store(tmp_path / "in" / "s"), open_store(tmp_path / "out" / "s")
    with inject_local(tmp_path / "in") as fos:
        fos.arm(op="write", times=-1)
        outside.write([b"fine"])
        with pytest.raises(Exception, match="Input/output"):
            inside.write([b"fails"])
    root = str((tmp_path / "in").resolve())
    assert fos.calls
    assert all(c.path.startswith(root) for c in fos.calls)
    assert (tmp_path / "out" / "s").read_bytes() == b"fine"


def test_a_save_makes_the_calls_the_sweep_fails(tmp_path: Path) -> None:
    ops = [c.op for c in local_calls(tmp_path, keep_versions=2)]
    # the state's own steps and the history's hard link are all there to be failed; the lock
    # itself is taken by filelock (its own os/fcntl calls, outside the shim), but the store's
    # open of the lock file (which refuses links and sets 0600) is ours and is swept
    for op in ("open_create", "write", "fsync", "replace", "link", "close"):
        assert op in ops, ops


@pytest.fixture
def proxy(moto_server: MotoS3) -> Iterator[FaultProxy]:
    p = FaultProxy.for_endpoint(moto_server.endpoint).start()
    yield p
    p.stop()


def _get(proxy: FaultProxy, path: str = "/") -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_proxy_actions(proxy: FaultProxy) -> None:
    assert _get(proxy).startswith(b"HTTP/1.1 200")  # moto's list of buckets
    proxy.fail(Action.REFUSE, at=1)
    with pytest.raises(ConnectionResetError):
        _get(proxy)
    proxy.fail(Action.DROP, at=2)
    with pytest.raises(ConnectionResetError):
        _get(proxy)
    proxy.fail(Action.SILENCE, at=3)
    with pytest.raises(TimeoutError):
        _get(proxy)
    proxy.heal()
    assert _get(proxy).startswith(b"HTTP/1.1 200")
    assert [r.action for r in proxy.requests] == [
        Action.PASS,
        Action.REFUSE,
        Action.DROP,
        Action.SILENCE,
        Action.PASS,
    ]


def test_proxy_drop_lets_the_request_land(proxy: FaultProxy, s3_bucket: MotoS3) -> None:
    store = open_store("s3://statevault-test/landed", s3_options(proxy))
    proxy.reset()
    proxy.fail(Action.DROP, at=0, times=2)  # the PUT and botocore's retry
    with pytest.raises(Exception):  # noqa: B017 - what the caller sees varies
        store.write([b"landed"], expect=None)
    proxy.heal()
    assert bytes(store.read()[0]) == b"landed"


def test_proxy_only_forwards_to_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("10.0.0.1", 80))


# -- local sweep ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    # Thousands of injected failures log thousands of ERRORs; the outcomes are what we check.
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("keep_versions", [2, 0] if STRESS else [2])
def test_local_sweep_every_call_of_a_save(tmp_path: Path, keep_versions: int) -> None:
    errnos = ERRNOS if STRESS else (errno.EIO, errno.ENOSPC)
    outcomes = sweep_local(tmp_path, errnos, keep_versions=keep_versions)
    assert len(outcomes) > 40
    broken = [f"{o}: {o.basic() + o.recovery()}" for o in outcomes if o.basic() or o.recovery()]
    assert not broken, "\n".join(broken)
    acknowledged = sum(o.acked for o in outcomes)
    # both kinds happen: a fault on the history step or an fsync after the rename does not
    # fail the save; one before the rename does
    assert 0 < acknowledged < len(outcomes)


def test_local_save_fails_on_a_read_only_disk_and_recovers(tmp_path: Path) -> None:
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    sm = StateManager(path, spool_dir=spool, keep_versions=2)
    sm.save({"n": 1})
    with inject_local(path.parent) as fos:
        fos.arm(op="open_create", err=errno.EROFS, times=-1)
        assert sm.save_state({"n": 2}) is False
    assert StateManager(path, spool_dir=spool).load() == {"n": 2}  # from the spool
    assert sm.save_state({"n": 3})
    assert StateManager(path, spool_dir=spool).load() == {"n": 3}
    assert StateManager(path, spool_dir=spool).last_load_source is None


# -- S3 sweep through the proxy ---------------------------------------------------------------

# Request 0 of a save (the manager loaded before) is the state's PUT, request 1 the version's.
_S3_CASES = [
    (action, at, times)
    for action in (Action.REFUSE, Action.SILENCE, Action.DELAY)
    for at in (0, 1)
    for times in (1, 2)
    if STRESS or not (action is Action.SILENCE and times == 2 and at == 1)
]


@pytest.mark.s3
@pytest.mark.parametrize(("action", "at", "times"), _S3_CASES)
def test_s3_sweep(
    proxy: FaultProxy, s3_bucket: MotoS3, tmp_path: Path, action: Action, at: int, times: int
) -> None:
    outcome = s3_scenario(
        proxy, "s3://statevault-test/state.sv", tmp_path / "spool", action, at, times
    )
    assert not outcome.basic(), str(outcome)
    assert not outcome.recovery(), str(outcome)


@pytest.mark.s3
@pytest.mark.parametrize("at", [0, 1])
def test_s3_drop_one_reply_keeps_the_state(
    proxy: FaultProxy, s3_bucket: MotoS3, tmp_path: Path, at: int
) -> None:
    """The answer to a PUT that landed is lost: the state is never torn nor lost, and the
    saves that follow succeed (loss path 1: the retry's 412 is recognised as our own PUT)."""
    outcome = s3_scenario(
        proxy, "s3://statevault-test/state.sv", tmp_path / "spool", Action.DROP, at, 1
    )
    assert not outcome.basic(), str(outcome)
    assert not outcome.recovery(), str(outcome)
    assert outcome.loaded == 2  # the PUT landed
