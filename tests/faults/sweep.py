"""Sweeps: fail each operation of one save in turn, then check what a fresh reader sees.

Each scenario: a manager (history on) saves state 1 on a healthy backend, then tries to save
state 2 while one fault is armed, then the fault is lifted and it saves states 3, 4, 5. The
``Outcome`` records what the caller was told and what a *fresh* manager (a restarted process)
loads after the faulty save and after the later ones. The invariants:

- ``basic``: the fresh load after the faulty save is state 1 or 2 (the last acknowledged or the
  one in flight), state 2 if the save was acknowledged, and never torn (every state carries a
  check list that must match its number) -- the atomicity promise;
- ``recovery``: every failure the caller saw is a ``StateError`` (never a raw exception), and
  every later save on the healed backend succeeds and is what a fresh manager loads -- the
  promise that one bad moment never poisons the manager (issue 10, loss paths 1 and 7).
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statevault import StateError, StateManager

from .fs import MUTATING, Call, inject_local
from .proxy import Action, FaultProxy

__all__ = [
    "ERRNOS",
    "LATER_SAVES",
    "Outcome",
    "local_calls",
    "local_scenario",
    "make_state",
    "s3_scenario",
    "sweep_local",
]

ERRNOS = (errno.EIO, errno.ENOSPC, errno.EROFS, errno.EACCES)
LATER_SAVES = 3


def make_state(n: int) -> dict[str, Any]:
    """State number ``n``: a check list that a torn or mixed write could not keep consistent."""
    return {"n": n, "check": [n] * 64, "pad": bytes([n % 256]) * 8192}


def _identify(state: dict[str, Any]) -> int | str:
    n = state.get("n")
    if not isinstance(n, int) or state.get("check") != [n] * 64:
        return "torn"
    if state.get("pad") != bytes([n % 256]) * 8192:
        return "torn"
    return n


@dataclass
class Outcome:
    """What one scenario did; ``basic()`` and ``recovery()`` list the broken invariants."""

    scenario: str
    raised: str | None = None
    raw: bool = False
    acked: bool = False
    loaded: int | str = "?"
    later_errors: list[str] = field(default_factory=list)
    final: int | str = "?"

    def basic(self) -> list[str]:
        bad = []
        if self.loaded == "torn":
            bad.append("torn load")
        elif self.acked and self.loaded != 2:
            bad.append(f"acknowledged state 2 but a fresh load gives {self.loaded}")
        elif self.loaded not in (1, 2):
            bad.append(f"fresh load gives {self.loaded}, not state 1 or 2")
        return bad

    def recovery(self) -> list[str]:
        bad = []
        if self.raw:
            bad.append(f"save raised a raw {self.raised}, not a StateError")
        if self.later_errors:
            bad.append(f"later saves on a healthy backend failed: {self.later_errors}")
        if self.final != 2 + LATER_SAVES:
            bad.append(f"after the later saves a fresh load gives {self.final}")
        return bad

    def __str__(self) -> str:
        return (
            f"{self.scenario}: raised={self.raised} acked={self.acked} loaded={self.loaded} "
            f"later_errors={len(self.later_errors)} final={self.final}"
        )


def _fresh_load(make: Callable[[], StateManager]) -> int | str:
    try:
        return _identify(make().load())
    except StateError as e:
        return f"error {type(e).__name__}"


def _run(
    outcome: Outcome,
    sm: StateManager,
    make: Callable[[], StateManager],
    armed: Callable[[], Iterator[None]],
) -> Outcome:
    """The common part: faulty save of state 2 inside ``armed``, then the later saves."""
    from contextlib import contextmanager

    with contextmanager(armed)():
        try:
            sm.save(make_state(2))
            outcome.acked = True
        except StateError as e:
            outcome.raised = type(e).__name__
        except Exception as e:  # the invariant to check, not a test error
            outcome.raised, outcome.raw = type(e).__name__, True
    outcome.loaded = _fresh_load(make)
    for n in range(3, 3 + LATER_SAVES):
        try:
            sm.save(make_state(n))
        except Exception as e:
            outcome.later_errors.append(f"{n}: {type(e).__name__}: {e}")
    outcome.final = _fresh_load(make)
    return outcome


# -- local files ----------------------------------------------------------------------------


def _local_manager(root: Path, spool: Path, keep_versions: int) -> StateManager:
    return StateManager(
        root / "state.sv", compression=None, keep_versions=keep_versions, spool_dir=spool
    )


def local_calls(base: Path, *, keep_versions: int = 2) -> list[Call]:
    """The OS calls (under the state's directory) of one save of a manager that saved before."""
    root, spool = base / "store", base / "spool"
    sm = _local_manager(root, spool, keep_versions)
    sm.save(make_state(1))
    with inject_local(root) as fos:
        sm.save(make_state(2))
        calls = list(fos.calls)
    shutil.rmtree(base)
    return calls


def local_scenario(base: Path, *, keep_versions: int = 2, **fault: Any) -> Outcome:
    """One local scenario with ``FaultyOS.arm(**fault)`` armed during the save of state 2.

    Several faults: pass ``faults=[{...}, {...}]`` instead.
    """
    root, spool = base / "store", base / "spool"
    faults: list[dict[str, Any]] = fault.pop("faults", None) or [fault]
    name = "; ".join(
        ",".join(f"{k}={errno.errorcode.get(v, v) if k == 'err' else v}" for k, v in f.items())
        for f in faults
    )
    sm = _local_manager(root, spool, keep_versions)
    sm.save(make_state(1))

    def armed() -> Iterator[None]:
        with inject_local(root) as fos:
            for f in faults:
                fos.arm(**f)
            yield

    outcome = _run(Outcome(name), sm, lambda: _local_manager(root, spool, keep_versions), armed)
    shutil.rmtree(base)
    return outcome


def sweep_local(
    base: Path,
    errnos: Iterable[int] = (errno.EIO, errno.ENOSPC),
    *,
    after: Iterable[bool] = (False, True),
    keep_versions: int = 2,
) -> list[Outcome]:
    """Fail each OS call of a save in turn, with each errno, before and (for calls that change
    the disk) after it took effect. Returns one ``Outcome`` per scenario."""
    calls = local_calls(base / "probe", keep_versions=keep_versions)
    outcomes = []
    number = 0
    for call in calls:
        for err in errnos:
            for landed in after:
                if landed and call.op not in MUTATING:
                    continue
                number += 1
                outcome = local_scenario(
                    base / f"s{number}",
                    keep_versions=keep_versions,
                    at=call.index,
                    err=err,
                    after=landed,
                )
                outcome.scenario = f"call {call.index} {call.op} ({Path(call.path).name}): " + (
                    outcome.scenario
                )
                outcomes.append(outcome)
    return outcomes


# -- S3 through the proxy -------------------------------------------------------------------


def s3_options(proxy: FaultProxy, timeout: float = 1.0) -> dict[str, Any]:
    """storage_options for s3fs through ``proxy``, with short timeouts (silence costs them)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": proxy.endpoint, "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": timeout, "read_timeout": timeout},
    }


def s3_scenario(
    proxy: FaultProxy,
    url: str,
    spool: Path,
    action: Action,
    at: int,
    times: int = 1,
    *,
    keep_versions: int = 2,
) -> Outcome:
    """One S3 scenario: request ``at`` (0 = the first request of the save of state 2) and the
    ``times - 1`` after it get ``action``; the manager loaded before, so a save is its PUTs."""
    options = s3_options(proxy)

    def make() -> StateManager:
        return StateManager(
            url, storage_options=options, keep_versions=keep_versions, spool_dir=spool
        )

    sm = make()
    sm.save(make_state(1))
    sm.load()

    def armed() -> Iterator[None]:
        proxy.reset()
        proxy.fail(action, at=at, times=times)
        yield
        proxy.heal()

    outcome = Outcome(f"{action.value} request {at} x{times}")
    _run(outcome, sm, make, armed)
    return outcome
