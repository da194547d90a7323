"""Fault injection for statevault's tests: a faulty OS layer over a real local filesystem,
a faulty loopback TCP proxy in front of a real (moto) S3 server, and sweep helpers that fail
every operation of a save in turn and check what a fresh reader sees.

Everything here wraps real parts: the files are on a real disk, the requests reach a real S3
server; only the failures are made up. Full counts run under ``tox -e stress`` (the
``STATEVAULT_*`` environment variables below); the default run uses reduced counts.
"""

from __future__ import annotations

import os

from .fs import FaultyOS, inject_local
from .proxy import Action, FaultProxy

__all__ = ["STRESS", "Action", "FaultProxy", "FaultyOS", "count", "inject_local"]

#: True under ``tox -e stress`` (``STATEVAULT_STRESS=1``): sweeps and fuzzers run in full.
STRESS = os.environ.get("STATEVAULT_STRESS", "") not in ("", "0")


def count(env: str, default: int, stress: int) -> int:
    """A repetition count: ``$env`` if set, else ``stress`` under stress, else ``default``."""
    raw = os.environ.get(env)
    if raw:
        return int(raw)
    return stress if STRESS else default
