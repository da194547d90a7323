"""The type-handler conformance suite on a user type (``fractions.Fraction``), as a third-party
package would run it."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import strategies as st

from statevault.codec import TypeRegistry, default_registry
from statevault.testing import TypeHandlerSuite


class TestFractionHandler(TypeHandlerSuite):
    @pytest.fixture
    def registry(self) -> TypeRegistry:
        registry = default_registry.child()
        registry.register_type(
            Fraction,
            "test.fraction",
            encode=lambda f: [f.numerator, f.denominator],
            decode=lambda v: Fraction(v[0], v[1]),
        )
        return registry

    def values(self) -> st.SearchStrategy[Any]:
        return st.fractions()
