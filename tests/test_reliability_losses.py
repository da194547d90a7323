"""Issue 10's loss paths 1-7 and its misconfiguration list, reproduced through the public API.

Each test states the promise and fails today for exactly the reason the issue gives; each is
marked ``xfail(strict=True)``, so it turns into an error the moment it passes: whoever fixes
the path removes the marker (the fix lands on the layered core). Run them with
``pytest tests/test_reliability_losses.py --runxfail`` to see each failure.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import statevault.errors
from statevault import StateError, StateManager, TradingStateManager
from statevault.errors import ConflictError, StorageError
from statevault.keys import generate_key

from backends import MotoS3
from faults import Action, FaultProxy, count, inject_local
from faults.sweep import make_state, s3_scenario


def loss(n: int) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"loss path {n}: fixed on the layered core")


misconfig = pytest.mark.xfail(strict=True, reason="misconfiguration: fixed on the layered core")


@pytest.fixture
def proxy(moto_server: MotoS3) -> Iterator[FaultProxy]:
    p = FaultProxy.for_endpoint(moto_server.endpoint).start()
    yield p
    p.stop()


def _fresh(path: Path, spool: Path, **kw: Any) -> dict[str, Any]:
    return StateManager(path, spool_dir=spool, **kw).load()


# -- 1. a save whose outcome is unknown never makes a later save fail ------------------------


@pytest.mark.s3
def test_loss1_s3_lost_answer_to_a_landed_put(
    proxy: FaultProxy, s3_bucket: MotoS3, tmp_path: Path
) -> None:
    """The PUT lands, its answer is lost, botocore retries and gets 412: today a
    ConflictError (not spooled), and every later save on the healthy endpoint fails too."""
    outcome = s3_scenario(
        proxy, "s3://statevault-test/state.sv", tmp_path / "spool", Action.DROP, at=0
    )
    assert outcome.raised != "ConflictError", str(outcome)
    assert not outcome.recovery(), str(outcome)


def test_loss1_local_landed_with_eio_then_a_real_enospc(tmp_path: Path) -> None:
    """Save 2 lands but its directory fsync reports EIO; save 3 fails for real (ENOSPC).
    Today the manager no longer recognises its own landed bytes: 5 of 5 later saves fail."""
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    sm = StateManager(path, spool_dir=spool, keep_versions=2)
    sm.save(make_state(1))
    with inject_local(path.parent) as fos:
        fos.arm(op="fsync", nth=2, err=errno.EIO, after=True)  # the directory's fsync
        with pytest.raises(StorageError):
            sm.save(make_state(2))
        fos.arm(op="write", err=errno.ENOSPC)
        with pytest.raises(StorageError):
            sm.save(make_state(3))
    failed = [n for n in range(4, 9) if not sm.save_state(make_state(n))]
    assert failed == [], f"later saves lost: {failed}"
    assert _fresh(path, spool)["n"] == 8


# -- 2. a state the manager could not read is never replaced silently ------------------------


def test_loss2_wrong_key_never_overwrites_the_real_state(tmp_path: Path) -> None:
    path, spool = tmp_path / "state.sv", tmp_path / "spool"
    real, wrong = generate_key(), generate_key()
    StateManager(path, encryption_key=real, keep_versions=3, spool_dir=spool).save({"real": 1})
    bot = StateManager(path, encryption_key=wrong, keep_versions=3, spool_dir=spool)
    assert bot.load_state() == {}
    assert isinstance(bot.last_load_error, statevault.errors.WrongKeyError)
    results = [bot.save_state({"bar": n}) for n in range(4)]
    # Today: [True, True, True, True] and no version opens with the real key any more.
    assert results == [False] * 4
    owner = StateManager(path, encryption_key=real, keep_versions=3, spool_dir=spool)
    assert owner.load() == {"real": 1}


def test_loss2_missing_key_never_writes_plaintext_over_an_encrypted_state(
    tmp_path: Path,
) -> None:
    path, spool = tmp_path / "state.sv", tmp_path / "spool"
    real = generate_key()
    StateManager(path, encryption_key=real, spool_dir=spool).save({"secret": 1})
    keyless = StateManager(path, spool_dir=spool)
    assert keyless.load_state() == {}
    assert keyless.save_state({"plain": 1}) is False
    assert StateManager(path, encryption_key=real, spool_dir=spool).load() == {"secret": 1}


# -- 3. an uninspectable spool never blocks a healthy primary --------------------------------


def test_loss3_spool_folder_that_cannot_be_inspected(tmp_path: Path) -> None:
    path = tmp_path / "state.sv"
    StateManager(path, spool_dir=False).save({"n": 1})
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    for spool in (blocker / "spool", tmp_path / "eacces"):
        sm = StateManager(path, spool_dir=spool)
        with inject_local(tmp_path / "eacces") as fos:
            fos.arm(err=errno.EACCES, times=-1)  # every call in the spool folder
            assert sm.load_state() == {"n": 1}, spool
            info = sm.get_state_info()
            assert info["exists"] is True
            assert sm.save_state({"n": 2}), spool
        assert StateManager(path, spool_dir=False).load() == {"n": 2}
        StateManager(path, spool_dir=False).save({"n": 1})


# -- 4. keeping the unreadable copy aside is not on the critical path ------------------------


def test_loss4_enospc_on_the_unreadable_copy_still_saves_or_spools(tmp_path: Path) -> None:
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    sm = StateManager(path, compression=None, keep_versions=3, spool_dir=spool)
    sm.save({"n": 1})
    sm.save({"n": 2})
    tmp = path.with_name("forged")
    tmp.write_bytes(b"\x89SVT\r\n\x1a\n damaged")
    os.replace(tmp, path)
    bot = StateManager(path, compression=None, keep_versions=3, spool_dir=spool)
    assert bot.load_state() == {"n": 2}
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.ENOSPC, where=".unreadable", times=-1)
        bot.save_state({"n": 3})
    # Saved (the copy aside is best effort) or at least spooled: a restarted bot has it.
    # Today: neither; a restart falls back to version 2.
    restarted = StateManager(path, compression=None, keep_versions=3, spool_dir=spool)
    assert restarted.load_state() == {"n": 3}


# -- 5. a spooled save whose base is unknown is never discarded silently ---------------------


def test_loss5_spool_from_a_start_while_the_primary_was_down(tmp_path: Path) -> None:
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    writer = StateManager(path, spool_dir=False, keep_versions=0)
    for n in range(1, 12):
        writer.save({"n": n})  # generation 11
    started_during_outage = StateManager(path, spool_dir=spool, keep_versions=0)
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, times=-1)
        assert started_during_outage.save_state({"important": True}) is False  # spooled, gen 1
    restarted = StateManager(path, spool_dir=spool, keep_versions=0)
    assert restarted.load_state() == {"n": 11}  # the primary is newer by generation
    with pytest.raises(ConflictError):
        restarted.flush_spool()  # today: returns False and deletes the spooled state
    info = restarted.get_state_info()
    assert info["unflushed"] is True
    assert info["spool"] is not None


# -- 6. load-modify-save from many threads loses nothing -------------------------------------

THREADS = 4
INCREMENTS = count("STATEVAULT_RACE_INCREMENTS", 25, 300)


def _race(work: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(INCREMENTS):
                work()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.fixture(params=["local", "memory", "s3"])
def race_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "local":
        return str(tmp_path / "counter.sv"), {}
    if request.param == "memory":
        request.getfixturevalue("clean_memory")
        return "memory://race/counter.sv", {}
    server: MotoS3 = request.getfixturevalue("s3_bucket")
    return "s3://statevault-test/counter.sv", {"storage_options": server.storage_options}


def test_loss6_update_is_atomic_across_threads(race_url: tuple[str, dict[str, Any]]) -> None:
    url, kw = race_url
    sm = StateManager(url, keep_versions=0, spool_dir=False, **kw)

    def increment(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "n": state.get("n", 0) + 1}

    _race(lambda: sm.update(increment))  # type: ignore[attr-defined]
    assert StateManager(url, spool_dir=False, **kw).load()["n"] == THREADS * INCREMENTS


def test_loss6_transaction_is_atomic_across_threads_and_managers(
    race_url: tuple[str, dict[str, Any]],
) -> None:
    url, kw = race_url
    managers = [StateManager(url, keep_versions=0, spool_dir=False, **kw) for _ in range(2)]

    def increment() -> None:
        sm = managers[threading.get_ident() % 2]
        with sm.transaction() as state:  # type: ignore[attr-defined]
            state["n"] = state.get("n", 0) + 1

    _race(increment)
    assert StateManager(url, spool_dir=False, **kw).load()["n"] == THREADS * INCREMENTS


# -- 7. every failure is a StateError; a history step after HEAD landed is a warning ---------


def test_loss7_failure_after_the_head_landed_is_not_a_failed_save(tmp_path: Path) -> None:
    """The save landed; clearing the old spooled state then fails (EIO): today save()
    raises and save_state() returns False for a state that is stored."""
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    sm = StateManager(path, spool_dir=spool, keep_versions=0)
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, times=-1)
        assert sm.save_state({"n": 1}) is False  # spooled
    with inject_local(spool) as fos:
        fos.arm(op="unlink", err=errno.EIO, times=-1)
        assert sm.save_state({"n": 2}) is True
    assert _fresh(path, spool) == {"n": 2}


def test_loss7_history_failure_is_reported_in_state_info(tmp_path: Path) -> None:
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    sm = StateManager(path, spool_dir=spool, keep_versions=2)
    sm.save({"n": 1})
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.ENOSPC, where=".versions", times=-1)
        assert sm.save({"n": 2}) == 2  # saved; the version could not be kept
    info = sm.get_state_info()
    assert "ENOSPC" in str(info["history_error"]) or "space" in str(info["history_error"])


# -- misconfiguration is an immediate, clear error -------------------------------------------

ConfigurationError: type[Exception] = getattr(statevault.errors, "ConfigurationError", StateError)


@pytest.mark.s3
def test_missing_bucket_names_the_bucket(s3_bucket: MotoS3, tmp_path: Path) -> None:
    sm = StateManager(
        "s3://no-such-bucket/state.sv",
        storage_options=s3_bucket.storage_options,
        spool_dir=tmp_path / "spool",
    )
    with pytest.raises(StorageError, match="no-such-bucket"):
        sm.load()  # today: StateNotFoundError, "no state saved yet"
    with pytest.raises(ConfigurationError, match="no-such-bucket"):
        sm.save({"n": 1})  # today: ConflictError
    assert not list((tmp_path / "spool").glob("*.state"))


@pytest.mark.s3
def test_storage_options_typo_is_a_configuration_error(s3_bucket: MotoS3, tmp_path: Path) -> None:
    options = {**s3_bucket.storage_options, "secrte": "oops"}
    spool = tmp_path / "spool"

    def open_and_save() -> None:  # construction or the first save: both count as immediate
        StateManager("s3://statevault-test/s.sv", storage_options=options, spool_dir=spool).save(
            {"n": 1}
        )

    with pytest.raises(StateError, match="secrte") as info:
        open_and_save()
    assert not list(spool.glob("*.state")), "spooled, as if S3 were down"
    assert isinstance(info.value, ConfigurationError)
    assert ConfigurationError is not StateError


def test_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    sm = StateManager(tmp_path, spool_dir=tmp_path / "spool")
    with pytest.raises(StateError) as info:
        sm.save({"n": 1})
    message = str(info.value)
    assert str(tmp_path) in message
    # today: "IsADirectoryError: [Errno 21] Is a directory: 16" (a file descriptor), spooled
    assert re.search(r"directory: \d+", message) is None, message
    assert "spool" not in message
    assert isinstance(info.value, ConfigurationError)


def test_caller_holding_its_plain_lock_gets_a_clear_error(tmp_path: Path) -> None:
    lock = threading.Lock()
    # A short lock_timeout: the error is what is under test, not the default 10 s wait.
    sm = StateManager(tmp_path / "s.sv", lock=lock, lock_timeout=0.5, spool_dir=False)
    result: list[BaseException | int] = []
    with lock:
        worker = threading.Thread(target=lambda: result.append(_catch(sm.save, {"n": 1})))
        worker.daemon = True
        worker.start()
        worker.join(timeout=15)  # today: blocked for as long as the caller holds the lock
        assert result, "save() still waits for a lock its caller holds"
    assert isinstance(result[0], StateError)


def _catch(fn: Any, *args: Any) -> BaseException | int:
    try:
        return int(fn(*args))
    except BaseException as e:
        return e


@pytest.mark.s3
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads, 3.12+
def test_manager_used_before_fork_works_in_the_child(s3_bucket: MotoS3) -> None:
    sm = StateManager("s3://statevault-test/fork.sv", storage_options=s3_bucket.storage_options)
    sm.save({"who": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: exit code says what happened, nothing else
        code = 1
        try:
            sm.save({"who": "child"})
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung saving through the parent's connections")
    assert os.waitstatus_to_exitcode(status) == 0
    assert StateManager(
        "s3://statevault-test/fork.sv", storage_options=s3_bucket.storage_options
    ).load() == {"who": "child"}


def test_generation_after_a_fallback_is_never_reused(tmp_path: Path) -> None:
    path, spool = tmp_path / "state.sv", tmp_path / "spool"
    sm = StateManager(path, compression=None, keep_versions=3, spool_dir=spool)
    for n in range(1, 4):
        sm.save({"n": n})  # generations 1, 2, 3
    with open(path, "r+b") as f:  # bit rot in the body, in place: the header still says 3,
        f.seek(-1, os.SEEK_END)  # and the hard-linked slot of generation 3 rots with it
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    bot = StateManager(path, compression=None, keep_versions=3, spool_dir=spool)
    assert bot.load_state() == {"n": 2}
    assert bot.last_load_source == "version 2"
    # today: 3 again, a second, different generation 3 (the rotten one is kept aside)
    assert bot.save({"n": 4}) > 3


def test_legacy_json_converts_only_defined_fields_and_keeps_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "legacy.json"
    original = (
        b'{"active_positions": {}, "last_update": "2024-03-04T13:02:30+00:00",'
        b' "operator_note": "2024-01-01T00:00:00"}'
    )
    path.write_bytes(original)
    sm = TradingStateManager(path, spool_dir=False)
    state = sm.load()
    assert not isinstance(state["last_update"], str)  # a field the old format defines
    assert state["operator_note"] == "2024-01-01T00:00:00"  # today: a datetime
    sm.save(state)
    assert Path(f"{path}.legacy.json").read_bytes() == original


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# -- additions: the fixes' own edges ---------------------------------------------------------


def _increment_in_a_process(url: str, n: int) -> None:
    sm = StateManager(url, keep_versions=0, spool_dir=False)
    for _ in range(n):
        sm.update(lambda s: {**s, "n": s.get("n", 0) + 1})


def test_loss6_update_is_atomic_across_processes(tmp_path: Path) -> None:
    import multiprocessing

    url = str(tmp_path / "counter.sv")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment_in_a_process, args=(url, INCREMENTS)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert StateManager(url, spool_dir=False).load()["n"] == 3 * INCREMENTS


def test_loss6_update_gives_up_with_conflict_error_after_its_retries(tmp_path: Path) -> None:
    path = tmp_path / "s.sv"
    sm = StateManager(path, spool_dir=False, on_conflict="overwrite")
    other = StateManager(path, spool_dir=False)
    sm.save({"n": 0})

    def meddle(state: dict[str, Any]) -> dict[str, Any]:
        other.load()
        other.save({"n": -1})  # another writer gets in between every time
        return {**state, "n": state["n"] + 1}

    with pytest.raises(ConflictError):
        sm.update(meddle, retries=2)
    assert StateManager(path, spool_dir=False).load() == {"n": -1}


def test_loss2_replace_on_purpose_keeps_the_unreadable_bytes(tmp_path: Path) -> None:
    path, spool = tmp_path / "state.sv", tmp_path / "spool"
    StateManager(path, encryption_key=generate_key(), spool_dir=spool).save({"real": 1})
    original = path.read_bytes()
    bot = StateManager(
        path, encryption_key=generate_key(), spool_dir=spool, on_unreadable="replace"
    )
    assert bot.load_state() == {}
    assert bot.save_state({"fresh": 1}) is True
    assert Path(f"{path}.unreadable").read_bytes() == original


def test_loss2_the_error_says_why_and_how(tmp_path: Path) -> None:
    path = tmp_path / "state.sv"
    StateManager(path, encryption_key=generate_key(), spool_dir=False).save({"real": 1})
    keyless = StateManager(path, spool_dir=False)
    with pytest.raises(statevault.errors.UnreadableStateError, match="on_unreadable='replace'"):
        keyless.save({"plain": 1})  # never loaded: the header alone says it is encrypted


def test_loss5_cli_shows_pushes_and_discards_the_spool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from statevault.cli import main

    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    StateManager(path, spool_dir=False, keep_versions=0).save({"n": 1})
    down = StateManager(path, spool_dir=spool, keep_versions=0)
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, times=-1)
        assert down.save_state({"important": True}) is False
    assert main(["spool", str(path), "--spool-dir", str(spool)]) == 0
    assert "base unknown" in capsys.readouterr().out
    assert main(["spool", str(path), "--spool-dir", str(spool), "--push"]) == 0
    assert StateManager(path, spool_dir=False).load() == {"important": True}
    assert StateManager(path, spool_dir=False).get_state_info()["generation"] == 2
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, times=-1)
        assert StateManager(path, spool_dir=spool).save_state({"again": 1}) is False
    assert main(["spool", str(path), "--spool-dir", str(spool), "--discard"]) == 0
    assert main(["spool", str(path), "--spool-dir", str(spool)]) == 3
    assert StateManager(path, spool_dir=False).load() == {"important": True}


def test_loss7_history_error_clears_after_a_good_save(tmp_path: Path) -> None:
    path = tmp_path / "store" / "state.sv"
    sm = StateManager(path, spool_dir=False, keep_versions=2)
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, where=".versions", times=-1)
        assert sm.save({"n": 1}) == 1
    assert sm.get_state_info()["history_error"] is not None
    assert sm.save({"n": 2}) == 2
    assert sm.get_state_info()["history_error"] is None
