"""Conformance suites for code that extends statevault: stores, managers, transforms, types.

Import them in your own test suite and subclass, one line per thing under test::

    import pytest
    from statevault.testing import Backend, StoreSuite, ManagerSuite

    @pytest.fixture
    def my_backend(tmp_path):
        return Backend("mine", f"myproto://{tmp_path.name}/")

    class TestMyStore(StoreSuite):
        @pytest.fixture
        def backend(self, my_backend):
            return my_backend

    class TestMyManager(ManagerSuite):
        backend = TestMyStore.backend

The suites check through statevault and around it: a ``Backend`` reads and writes the objects
directly (``get_raw``/``put_raw``/``delete_raw``; by default through fsspec, override with your
backend's own client). ``RemoteStoreSuite`` adds, for a store behind a network endpoint,
fail-fast errors against dead and silent endpoints and spooling through an outage (hooks:
the endpoint's options and an ``outage`` fixture). ``TransformSuite`` and
``TypeHandlerSuite`` take a ``transform`` or a ``registry`` fixture. Needs pytest and
hypothesis (``pip install 'statevault[test]'``).
"""

from __future__ import annotations

from .backend import Backend, LocalBackend
from .manager import STACKS, ManagerSuite, assert_same, builtin_values
from .remote import RemoteStoreSuite
from .store import StoreSuite
from .transform import TransformSuite
from .types import TypeHandlerSuite

__all__ = [
    "STACKS",
    "Backend",
    "LocalBackend",
    "ManagerSuite",
    "RemoteStoreSuite",
    "StoreSuite",
    "TransformSuite",
    "TypeHandlerSuite",
    "assert_same",
    "builtin_values",
]
