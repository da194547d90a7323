"""Which transforms a manager writes with and how it reads: one object, built once per manager.

Order on save: the compressor (any registered transform that declares ``compresses``), the
caller's extra transforms, the signature (with a signing key), then Fernet encryption (with an
encryption key). A reader undoes whatever the frame lists; with a signing key it also refuses
a frame that no authenticating transform protects (else stripping the signature would pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..errors import SerializationError, TransformError
from ..keys import Keyring, SigningKeyring
from .base import Transform, TransformRegistry
from .fernet import fernet
from .signing import NAME as SIGNING_NAME
from .signing import hmac_sha256, signing_factory

__all__ = ["DEFAULT_MAX_STATE_BYTES", "TransformConfig"]

#: Bytes the frame adds before each section's payload (its binding), counted in the bound.
BINDING_SIZE: Final = 32
#: Default bound on what one section of a state may decode to (``max_state_bytes``).
DEFAULT_MAX_STATE_BYTES: Final = 4 * 2**30


@dataclass(frozen=True)
class TransformConfig:
    """A manager's transform settings; raises ``ValueError``/``TypeError`` for bad ones at once.

    ``registry`` is the manager's own registry (transforms registered on it later count).
    ``compression`` names a registered compressor or is None; ``compression_level`` None means
    the compressor's default. ``max_state_bytes`` bounds every section a reader decodes and
    every section a writer encodes (so nothing is saved that its reader would refuse).
    """

    registry: TransformRegistry
    compression: str | None = "zstd"
    compression_level: int | None = None
    extra: tuple[Transform | str, ...] = ()
    keyring: Keyring | None = None
    signing: SigningKeyring | None = None
    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES

    def __post_init__(self) -> None:
        if self.compression is not None:
            props = (
                self.registry.properties(self.compression)
                if isinstance(self.compression, str)
                else None
            )
            if props is None or not props.compresses:
                known = [n for n in self.registry.names() if self._compresses(n)]
                raise ValueError(
                    f"compression must be None or the name of a registered compressor "
                    f"({', '.join(known)}), not {self.compression!r}"
                )
            self._compressor()  # a bad level is an error here, not on every save
        if (
            isinstance(self.max_state_bytes, bool)
            or not isinstance(self.max_state_bytes, int)
            or self.max_state_bytes < 1
        ):
            raise ValueError(f"max_state_bytes must be an int >= 1, not {self.max_state_bytes!r}")
        if self.signing is not None:
            self.registry.register(SIGNING_NAME, signing_factory(self.signing), authenticates=True)

    def _compresses(self, name: str) -> bool:
        try:
            props = self.registry.properties(name)
        except TransformError:  # an unloadable entry point: not offered, reported when named
            return False
        return props is not None and props.compresses

    def _compressor(self) -> Transform:
        assert self.compression is not None
        level = self.compression_level
        params: dict[str, Any] = {} if level is None else {"level": level}
        transform = self.registry.build(self.compression, params, self.keyring)
        if level is not None and transform.params.get("level") != level:
            raise ValueError(
                f"compression_level {level!r} is not valid for {self.compression!r} "
                f"(it would use {transform.params.get('level')!r})"
            )
        return transform

    def write_transforms(self) -> list[Transform]:
        """The transforms a save applies, in order (built fresh: registrations may change)."""
        out: list[Transform] = []
        if self.compression is not None:
            out.append(self._compressor())
        for extra in self.extra:
            if isinstance(extra, str):
                out.append(self.registry.build(extra, {}, self.keyring))
            else:
                out.append(extra)
        if self.signing is not None:
            out.append(hmac_sha256(self.signing))
        if self.keyring is not None:
            out.append(fernet(self.keyring))
        return out

    def check_sections(self, sections: Sequence[Sequence[Any]]) -> None:
        """Refuse to save a section its readers would refuse to decode (``max_state_bytes``).

        Raises ``SerializationError`` before anything is written.
        """
        for index, section in enumerate(sections):
            size = sum(memoryview(chunk).nbytes for chunk in section) + BINDING_SIZE
            if size > self.max_state_bytes:
                raise SerializationError(
                    f"section {index} of the state is {size} bytes, above max_state_bytes "
                    f"({self.max_state_bytes}): readers would refuse it; raise max_state_bytes "
                    "(for the readers too) or store less"
                )

    @property
    def require_authentication(self) -> bool:
        """Whether readers refuse frames no authenticating transform protects."""
        return self.signing is not None

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments for ``FrameReader`` (registry, keyring, bounds)."""
        return {
            "transforms": self.registry,
            "keyring": self.keyring,
            "max_bytes": self.max_state_bytes,
            "require_authentication": self.require_authentication,
        }
