"""``TransformSuite``: what a byte transform must do, and what its declared properties promise.

Subclass and supply a ``transform`` fixture (the ``Transform`` as a writer builds it) and,
when reading it needs keys, a ``keyring`` fixture; a ``registry`` fixture (default: a child of
``default_transforms``) must know the transform's name, so a reader can rebuild it from the
frame. The suite checks exact round trips, the rebuild from stored params, thread safety, a
full frame round trip, and each property the transform declares: ``compresses`` (shrinks
redundant data, accepts ``level``), ``encrypts`` (no plaintext in the output),
``authenticates`` (every altered byte is refused with a ``StateError``), and a bounded decode
that never exceeds its limit.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..errors import StateError, StateTooLargeError
from ..frame import FrameReader, build_frame
from ..keys import Keyring
from ..transforms import Transform, TransformRegistry, default_transforms

__all__ = ["TransformSuite"]

_REDUNDANT = b"price,qty,side\n" + b"101.25,7,buy\n" * 4000


class TransformSuite:
    """The contract of one ``Transform``; supply the ``transform`` fixture."""

    @pytest.fixture
    def keyring(self) -> Keyring | None:
        """The reader's keyring (None for transforms that need no key)."""
        return None

    @pytest.fixture
    def registry(self) -> TransformRegistry:
        """Where readers look the transform up by name."""
        return default_transforms.child()

    def rebuild(self, transform: Transform, registry: TransformRegistry, keyring: Any) -> Transform:
        return registry.build(transform.name, dict(transform.params), keyring)

    # -- round trips ----------------------------------------------------------------------

    def test_round_trip_property(self, transform: Transform) -> None:
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(data=st.binary(max_size=5000))
        def check(data: bytes) -> None:
            assert bytes(transform.decode(transform.encode(data))) == data

        check()

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_any_buffer_type_decodes(self, transform: Transform, kind: type) -> None:
        encoded = bytes(transform.encode(_REDUNDANT))
        assert bytes(transform.decode(kind(encoded))) == _REDUNDANT
        assert bytes(transform.decode(transform.encode(kind(b"")))) == b""

    def test_rebuilt_from_stored_params_decodes(
        self, transform: Transform, registry: TransformRegistry, keyring: Any
    ) -> None:
        rebuilt = self.rebuild(transform, registry, keyring)
        assert rebuilt.name == transform.name
        assert bytes(rebuilt.decode(transform.encode(_REDUNDANT))) == _REDUNDANT

    def test_declared_properties_are_registered(
        self, transform: Transform, registry: TransformRegistry
    ) -> None:
        assert registry.properties(transform.name) == transform.properties

    def test_safe_across_threads(self, transform: Transform) -> None:
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            try:
                for i in range(20):
                    data = bytes([seed, i]) * (500 + seed * 37 + i)
                    assert bytes(transform.decode(transform.encode(data))) == data
            except BaseException as e:  # reported in the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_frame_round_trip(
        self, transform: Transform, registry: TransformRegistry, keyring: Any
    ) -> None:
        chunks = build_frame([[b"root"], [_REDUNDANT]], transforms=[transform], generation=7)
        reader = FrameReader.from_bytes(
            b"".join(bytes(c) for c in chunks), transforms=registry, keyring=keyring
        )
        assert bytes(reader.section(1)) == _REDUNDANT
        assert reader.header.encrypted_with(registry) is transform.encrypts

    # -- what the declared properties promise ---------------------------------------------

    def test_compresses(self, transform: Transform) -> None:
        if not transform.compresses:
            pytest.skip("does not declare compresses")
        assert len(bytes(transform.encode(_REDUNDANT))) < len(_REDUNDANT) // 4
        assert "level" in transform.params

    def test_encrypts(self, transform: Transform) -> None:
        if not transform.encrypts:
            pytest.skip("does not declare encrypts")
        secret = b"account=12345678;" * 50
        out = bytes(transform.encode(secret))
        assert b"account=" not in out
        assert bytes(transform.encode(secret)) != out  # a fresh IV or nonce every time

    def test_authenticates(self, transform: Transform) -> None:
        if not transform.authenticates:
            pytest.skip("does not declare authenticates")
        encoded = bytes(transform.encode(b"payload " * 40))
        for position in range(0, len(encoded), max(1, len(encoded) // 40)):
            altered = bytearray(encoded)
            altered[position] ^= 0x01
            with pytest.raises(StateError):
                transform.decode(bytes(altered))
        with pytest.raises(StateError):
            transform.decode(encoded[:-1])

    def test_bounded_decode_never_exceeds_its_limit(self, transform: Transform) -> None:
        bounded = transform.decode_bounded
        if bounded is None:
            pytest.skip("no bounded decode: the frame checks the size after decode")
        encoded = transform.encode(_REDUNDANT)
        assert bytes(bounded(encoded, len(_REDUNDANT))) == _REDUNDANT
        with pytest.raises(StateTooLargeError):
            bounded(encoded, len(_REDUNDANT) - 1)
