"""The layers a ``StateManager`` is composed of, innermost first (see docs/design.md).

::

    StateManager / TradingStateManager    configuration, lock, strict + forgiving contracts
      StateCodec (snapshot.py)            state <-> Snapshot; Layout (layout.py) splits/joins
      Failover (failover.py)              primary + local spool
        Recovery (recovery.py)            retained versions: record, fall back, read one
          Commit (commit.py)              what this writer saw, CAS, conflict recovery
            FrameStore (framestore.py)    Store + transforms + keyring
              Store (statevault.storage)  bytes, atomic replace, compare-and-swap

``update.py`` is read-modify-write (``update()``, ``transaction()``) with CAS retries;
``measure.py`` times saves and loads for ``statevault.metrics``; ``legacy.py`` is the JSON
import shared by the managers and the command line. Each layer is a
small class over the one below; modules outside this package use only the names exported here.
"""

from __future__ import annotations

from typing import NamedTuple

from .commit import Commit, Current, OnConflict, OnUnreadable, Pending, Unreadable
from .failover import Failover, Loaded
from .framestore import FrameStore, frame_prefix
from .layout import (
    FlatLayout,
    Layout,
    NoSuchName,
    SectionRef,
    TradingLayout,
    pair_overview,
    pick,
    state_path,
)
from .legacy import is_frame, looks_trading, parse_json, restore_legacy
from .measure import Measure
from .recovery import Fallback, NothingReadable, Recovery
from .snapshot import Snapshot, StateCodec
from .update import UPDATE_RETRIES, Updates

__all__ = [
    "UPDATE_RETRIES",
    "Commit",
    "Current",
    "Failover",
    "Fallback",
    "FlatLayout",
    "FrameStore",
    "Layers",
    "Layout",
    "Loaded",
    "Measure",
    "NoSuchName",
    "NothingReadable",
    "OnConflict",
    "OnUnreadable",
    "Pending",
    "Recovery",
    "SectionRef",
    "Snapshot",
    "StateCodec",
    "TradingLayout",
    "Unreadable",
    "Updates",
    "frame_prefix",
    "is_frame",
    "looks_trading",
    "pair_overview",
    "parse_json",
    "pick",
    "restore_legacy",
    "state_path",
]


class Layers(NamedTuple):
    """The layers of one manager, innermost first (``StateManager.layers``)."""

    frames: FrameStore
    codec: StateCodec
    commit: Commit
    recovery: Recovery
    failover: Failover
