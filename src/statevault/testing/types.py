"""``TypeHandlerSuite``: what a registered type handler must do for its values to be stored.

Subclass and supply a ``registry`` fixture (a ``TypeRegistry`` with your handler registered)
and override ``values()`` (a hypothesis strategy of your type's values) and, if ``==`` is not
exact for it, ``assert_same``. The suite checks exact round trips alone, nested in containers,
through a manager on ``memory://``, and that a reader without the handler refuses the value
with a typed error instead of guessing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..codec import Codec, TypeRegistry
from ..errors import DecodeError
from ..manager import StateManager

__all__ = ["TypeHandlerSuite"]

_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TypeHandlerSuite:
    """The contract of a type handler; supply ``registry`` and override ``values``."""

    #: Whether a reader without the handler must refuse the value (False for handlers that
    #: store a built-in form on purpose).
    needs_handler_to_decode = True

    def values(self) -> st.SearchStrategy[Any]:
        raise NotImplementedError("override values() with a strategy of your type's values")

    def assert_same(self, a: Any, b: Any) -> None:
        assert type(a) is type(b)
        assert a == b

    def test_round_trip(self, registry: TypeRegistry) -> None:
        codec = Codec(registry)

        @_SETTINGS
        @given(value=self.values())
        def check(value: Any) -> None:
            self.assert_same(codec.loads(b"".join(bytes(c) for c in codec.dumps(value))), value)

        check()

    def test_nested_in_containers(self, registry: TypeRegistry) -> None:
        codec = Codec(registry)

        @_SETTINGS
        @given(value=self.values())
        def check(value: Any) -> None:
            back = codec.loads(b"".join(bytes(c) for c in codec.dumps({"k": [value, (value,)]})))
            self.assert_same(back["k"][0], value)
            self.assert_same(back["k"][1][0], value)

        check()

    def test_through_a_manager(self, registry: TypeRegistry) -> None:
        url = f"memory://typesuite-{uuid.uuid4().hex[:8]}/s.state"

        @_SETTINGS
        @given(value=self.values())
        def check(value: Any) -> None:
            sm = StateManager(url, registry=registry, keep_versions=0, on_conflict="overwrite")
            sm.save({"v": value})
            self.assert_same(
                StateManager(url, registry=registry, keep_versions=0).load()["v"], value
            )

        check()

    def test_reader_without_the_handler_refuses(self, registry: TypeRegistry) -> None:
        if not self.needs_handler_to_decode:
            pytest.skip("this handler stores a built-in form")
        data = st.data()

        @_SETTINGS
        @given(data)
        def check(data: st.DataObject) -> None:
            value = data.draw(self.values())
            payload = b"".join(bytes(c) for c in Codec(registry).dumps(value))
            with pytest.raises(DecodeError):
                Codec(TypeRegistry()).loads(payload)

        check()
