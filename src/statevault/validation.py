"""Validators run on a state before it is saved and after it is loaded.

A validator is a callable taking the state that raises (any exception) or returns ``False`` to
reject it, or a pydantic model class (pydantic is optional: ``pip install pydantic``), whose
``model_validate`` checks the state. Rejections become ``ValidationError`` naming the failing
field's path in the state (``state['positions']['EURUSD']['lots']``) when it is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import ValidationError

__all__ = ["Validator", "make_validator"]

Validator = Callable[[dict[str, Any]], None]


def _path(loc: Iterable[Any]) -> str:
    return "state" + "".join(f"[{part!r}]" for part in loc)


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "model_validate", None))


def make_validator(spec: Any) -> Validator:
    """Turn a callable or a pydantic model class into a function that raises ValidationError."""
    if _is_pydantic_model(spec):
        return _pydantic_validator(spec)
    if not callable(spec):
        raise TypeError(
            f"validator must be a callable or a pydantic model class, not {type(spec).__name__}"
        )

    def validate(state: dict[str, Any]) -> None:
        try:
            result = spec(state)
        except ValidationError:
            raise
        except Exception as e:
            path = getattr(e, "path", "") or ""
            where = f" at {path}" if path else ""
            raise ValidationError(
                f"the validator rejected the state{where}: {type(e).__name__}: {e}", path=path
            ) from e
        if result is False:
            raise ValidationError("the validator rejected the state (it returned False)")

    return validate


def _pydantic_validator(model: Any) -> Validator:
    from pydantic import ValidationError as PydanticValidationError

    def validate(state: dict[str, Any]) -> None:
        try:
            model.model_validate(state)
        except PydanticValidationError as e:
            errors = e.errors()
            first: dict[str, Any] = dict(errors[0]) if errors else {}
            path = _path(first.get("loc", ()))
            raise ValidationError(
                f"{model.__name__} rejected the state at {path}: {first.get('msg', e)} "
                f"({len(errors)} error(s) in all)",
                path=path,
            ) from e

    return validate
