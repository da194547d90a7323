"""The storage contract (``statevault.testing.StoreSuite``) on every backend of the tests.

One subclass per backend: local files, memory://, S3 (moto server), a generic fsspec
filesystem. A new backend joins by adding its fixture to ``backends.py`` and a line here.
"""

from __future__ import annotations

from statevault.testing import StoreSuite

from backends import (
    Backend,
    GenericFixtures,
    LocalFixtures,
    MemoryFixtures,
    S3Fixtures,
)
from emulators import AzureFixtures, GCSFixtures


class TestLocalStore(StoreSuite, LocalFixtures):
    pass


class TestMemoryStore(StoreSuite, MemoryFixtures):
    pass


class TestS3Store(StoreSuite, S3Fixtures):
    identical_rewrite_changes_token = False


class TestGenericStore(StoreSuite, GenericFixtures):
    expect_atomic = False
    expect_conditional = False
    identical_rewrite_changes_token = False


class TestAzureStore(StoreSuite, AzureFixtures):
    pass


class TestGCSStore(StoreSuite, GCSFixtures):
    pass


def test_parametrised_backend_fixture_opens_each_kind(backend: Backend) -> None:
    """The ``backend`` fixture other test files use covers every backend."""
    store = backend.open("param.bin")
    store.write([backend.name.encode()])
    assert bytes(store.read()[0]) == backend.name.encode()
