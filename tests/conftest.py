"""Shared pytest fixtures. Storage backends live in ``backends.py`` and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from backends import (
    backend,
    clean_memory,
    generic_backend,
    local_backend,
    memory_backend,
    moto_server,
    s3_backend,
    s3_bucket,
)
from emulators import azure_backend, azurite, fake_gcs, gcs_backend

__all__ = [
    "azure_backend",
    "azurite",
    "backend",
    "clean_memory",
    "fake_gcs",
    "gcs_backend",
    "generic_backend",
    "local_backend",
    "memory_backend",
    "moto_server",
    "s3_backend",
    "s3_bucket",
]

# No deadlines: a loaded CI machine must not turn a slow example into a failure. The default
# run is derandomized: the same examples every run, so a property test cannot turn CI red on a
# seed nobody changed (a counterexample found at random once did). Random exploration is the
# job of "explore" (`tox -e explore`, the whole suite on fresh seeds) and "stress" (`tox -e
# stress`, 2000 examples); what they find becomes a fixed @example or a fixed test.
settings.register_profile(
    "default", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "stress", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def isolated_spool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every test's failover spool out of the user's home directory."""
    spool = tmp_path_factory.mktemp("spool")
    old = os.environ.get("STATEVAULT_SPOOL_DIR")
    os.environ["STATEVAULT_SPOOL_DIR"] = str(spool)
    yield spool
    if old is None:
        os.environ.pop("STATEVAULT_SPOOL_DIR", None)
    else:
        os.environ["STATEVAULT_SPOOL_DIR"] = old
