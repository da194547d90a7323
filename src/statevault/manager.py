"""StateManager: save and load one state (a dict) at one URL, exactly and atomically.

The manager is thin: it composes the codec (objects <-> section payloads), the frame (sections +
transforms + integrity) and a store (bytes <-> storage), and owns two contracts on top of them:

- the strict core, ``save()`` / ``load()``, which raise typed ``StateError`` subclasses;
- the forgiving methods of the specification, ``save_state()`` (returns a bool) and
  ``load_state()`` (returns ``{}`` when nothing can be read), which log through
  ``logging.getLogger("statevault")`` instead of raising.

Every public method holds the manager's lock, so one manager may be shared by threads. Separate
managers (or processes) on the same URL are kept apart by the store: atomic replace plus a
compare-and-swap on the object's version token, which is what makes ``ConflictError`` possible.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, Self

from ._version import __version__
from .codec import Codec, TypeRegistry, default_registry
from .errors import (
    ConflictError,
    CorruptStateError,
    SerializationError,
    StateError,
    StateNotFoundError,
    StorageError,
    UnsupportedFormatError,
)
from .frame import (
    HEADER_PROBE,
    MAGIC,
    FrameHeader,
    FrameReader,
    NeedMoreBytes,
    build_frame,
    parse_header,
)
from .history import History
from .keys import Keyring, SigningKeyring, resolve_keyring
from .migrations import Migration, Migrations
from .spool import Spool, default_spool_dir
from .storage import ANY, ObjectInfo, Store, open_store
from .transforms import (
    DEFAULT_MAX_STATE_BYTES,
    Transform,
    TransformConfig,
    TransformRegistry,
    default_transforms,
)
from .validation import Validator, make_validator

__all__ = ["SectionRef", "StateManager"]

log = logging.getLogger("statevault")

OnConflict = Literal["raise", "overwrite"]

# Tag of the private reference type that links the root section to the other sections.
_SECTION_REF_TAG = "statevault.section"


class _LockLike(Protocol):
    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> Any: ...


def _frame_prefix(chunks: Sequence[Any], size: int = 4096) -> bytes:
    """The first ``size`` bytes of a frame given as chunks (header, generation, created: unique)."""
    out = bytearray()
    for chunk in chunks:
        out += memoryview(chunk).cast("B")[: size - len(out)]
        if len(out) >= size:
            break
    return bytes(out)


class _Reentrant:
    """The manager's view of its lock: re-entrant for the manager's own nested calls.

    ``restore()`` calls ``save()``, ``rotate_keys()`` calls ``load()`` and ``save()``, each of
    which takes the lock: with a caller's plain ``threading.Lock`` that would deadlock. This
    adapter takes the caller's lock once per outermost call, so other components sharing it
    are still excluded for the whole operation.
    """

    __slots__ = ("_depth", "_inner", "_owner")

    def __init__(self, inner: _LockLike) -> None:
        self._inner = inner
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> _Reentrant:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return self
        self._inner.__enter__()
        self._owner, self._depth = me, 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._inner.__exit__(None, None, None)


def _signing_keys(key: str | bytes | Sequence[str | bytes] | SigningKeyring | None) -> Any:
    return key if key is None or isinstance(key, SigningKeyring) else SigningKeyring(key)


class SectionRef:
    """A placeholder in the root section for a value stored in section ``index`` of the frame."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"SectionRef({self.index})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SectionRef) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("SectionRef", self.index))


def _encode_ref(ref: SectionRef) -> int:
    return ref.index


def _decode_ref(index: Any) -> SectionRef:
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        raise CorruptStateError(f"invalid section reference {index!r} in the root section")
    return SectionRef(index)


class StateManager:
    """Persist one state (a ``dict``) at one URL or path: exact round trips, atomic replace.

    ``url_or_path`` is a plain path or any fsspec URL (``file://``, ``memory://``, ``s3://``,
    ...); ``storage_options`` go to fsspec. ``lock`` is the lock every public method holds: pass
    your own to share it with other components (spec: "Thread Safety"). The default is an
    ``RLock``; if you pass a plain ``threading.Lock``, do not call the manager while holding it.

    Transforms, applied on save in this order: ``compression`` (any registered compressor;
    ``"zstd"`` by default at its default ``compression_level``, ``None`` for none), then the
    extra ``transforms`` (``Transform`` objects or names registered with
    ``register_transform``), then an HMAC-SHA256 signature when ``signing_key`` is given (one
    secret or a list, newest first; loads then refuse unsigned or edited states), then Fernet
    encryption when a key is configured (``encryption_key``: one key or a list, newest first;
    else ``key_file``; else the ``STATEVAULT_KEY`` environment variable). Loading undoes
    whatever the stored frame says, whatever this manager is configured with.
    ``max_state_bytes`` bounds what one section may decode to on load (and encode to on save).

    ``on_conflict="raise"`` (default) makes ``save()`` raise ``ConflictError`` when another writer
    replaced the state since this manager last loaded or saved it; ``"overwrite"`` replaces it
    anyway and logs a warning naming both generations. Conflict detection starts at this
    manager's first load, save or ``get_state_info()``; a manager that saves before looking at
    the stored state takes whatever is there as its starting point.

    ``spool_dir``: when a save cannot reach the storage (unreachable, permission denied, disk
    full), the frame goes to a local spool file there instead (default: ``default_spool_dir()``,
    ``False`` turns the spool off); the save still reports failure, the next successful save or
    ``flush_spool()`` empties the spool, and loads take the newer of primary and spool.

    ``keep_versions`` (default 3, 0 for none): every save also keeps its frame in the sidecar
    ``<url>.versions/`` so the N states before the current one can be listed, loaded and
    restored (``list_versions()``, ``load(version=...)``, ``restore()``); they are also what
    ``load_state()`` falls back to when the current state is unreadable. Costs one more write
    per save.

    ``schema_version`` (default 1) is written with every state; older states are brought up to
    date on load by the migrations registered with ``@manager.migration(from_version=k)``.
    ``validator`` (a callable, or a pydantic model class) checks every state before a save
    (nothing is written if it fails) and after a load.
    """

    #: ``kind`` recorded in the frame's meta for states written by this class.
    kind = "state"

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        lock: _LockLike | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        compression: str | None = "zstd",
        compression_level: int | None = None,
        encryption_key: str | bytes | Sequence[str | bytes] | Keyring | None = None,
        key_file: str | os.PathLike[str] | None = None,
        transforms: Sequence[Transform | str] = (),
        registry: TypeRegistry | None = None,
        on_conflict: OnConflict = "raise",
        spool_dir: str | os.PathLike[str] | Literal[False] | None = None,
        keep_versions: int = 3,
        schema_version: int = 1,
        validator: Any = None,
        signing_key: str | bytes | Sequence[str | bytes] | SigningKeyring | None = None,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ) -> None:
        if on_conflict not in ("raise", "overwrite"):
            raise ValueError(f"on_conflict must be 'raise' or 'overwrite', not {on_conflict!r}")
        self._lock = _Reentrant(threading.Lock() if lock is None else lock)
        self._store: Store = open_store(url_or_path, storage_options)
        self.registry: TypeRegistry = (registry or default_registry).child()
        self.transform_registry: TransformRegistry = default_transforms.child()
        self._keyring: Keyring | None = resolve_keyring(encryption_key, key_file=key_file)
        self._transform_config = TransformConfig(
            self.transform_registry,
            compression,
            compression_level,
            tuple(transforms),
            self._keyring,
            _signing_keys(signing_key),
            max_state_bytes,
        )
        self.on_conflict: OnConflict = on_conflict
        self._codec = Codec(self.registry)
        # The root codec knows the private SectionRef type on top of the user's registry, so
        # only the root section can refer to other sections.
        self._root_registry = self.registry.child()
        self._root_registry.register_type(
            SectionRef, _SECTION_REF_TAG, encode=_encode_ref, decode=_decode_ref
        )
        self._root_codec = Codec(self._root_registry)
        # What this manager last saw of the stored state: the store's version token and the
        # frame's generation. None means "not looked yet" (see the class docstring).
        self._token: str | None = None
        self._generation: int | None = None
        self._observed = False
        self._spool: Spool | None = None
        if spool_dir is not False:
            self._spool = Spool(
                default_spool_dir() if spool_dir is None else spool_dir, self._store.url
            )
        self._history = History(self._store, keep_versions)
        if not isinstance(schema_version, int) or schema_version < 1:
            raise ValueError(f"schema_version must be an int >= 1, not {schema_version!r}")
        self.schema_version = schema_version
        self.migrations = Migrations()
        self._validate: Validator | None = None if validator is None else make_validator(validator)
        # Where the last load came from: "primary", "spool", "version N"; None: nothing loaded.
        self.last_load_source: str | None = None
        # What the last load_state()/load(fallback=True) had to skip, for get_state_info().
        self.last_fallback: dict[str, Any] | None = None
        self.last_load_error: BaseException | None = None
        # Token of a current object that could not be read when we fell back: the next save
        # keeps its bytes aside (``<url>.unreadable``) before replacing it.
        self._unreadable_token: str | None = None
        # The first bytes of a frame whose write reported a storage error: it may have landed.
        self._unacknowledged: bytes | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_env(cls, lock: _LockLike | None = None, **options: Any) -> Self:
        """Build a manager from ``STATEVAULT_URL`` and ``STATEVAULT_STORAGE_OPTIONS`` (JSON).

        The key comes from ``STATEVAULT_KEY`` as usual; ``options`` override the rest.
        """
        url = os.environ.get("STATEVAULT_URL")
        if not url:
            raise StateError("STATEVAULT_URL is not set: set it to the state's path or URL")
        raw = os.environ.get("STATEVAULT_STORAGE_OPTIONS", "")
        storage_options: dict[str, Any] = {}
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError as e:
                raise StateError(
                    "STATEVAULT_STORAGE_OPTIONS is not valid JSON: give a JSON object"
                ) from e
            if not isinstance(parsed, dict):
                raise StateError("STATEVAULT_STORAGE_OPTIONS must be a JSON object")
            storage_options = parsed
        options.setdefault("storage_options", storage_options)
        return cls(url, lock, **options)

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        """The normalised URL of the state."""
        return self._store.url

    @property
    def store(self) -> Store:
        """The storage adapter (advanced use: tests, tools)."""
        return self._store

    @property
    def encrypted(self) -> bool:
        """Whether saves encrypt (a key is configured)."""
        return self._keyring is not None

    def __repr__(self) -> str:
        names = [t.name for t in self._write_transforms()] if self._transforms_ok() else ["?"]
        return f"{type(self).__name__}({self.url!r}, transforms={names})"

    def _transforms_ok(self) -> bool:
        try:
            self._write_transforms()
        except StateError:
            return False
        return True

    # ------------------------------------------------------------------ registries

    def register_type(self, cls: Any = None, name: str | None = None, **kw: Any) -> Any:
        """Register a user type for this manager only (call or decorator form); last one wins."""
        return self.registry.register_type(cls, name, **kw)

    def register_serializer(self, name: str, fn: Callable[[Any], Any]) -> None:
        """The spec's name-based serializer hook, for this manager (see docs/types.md)."""
        self.registry.register_serializer(name, fn)

    def register_deserializer(self, name: str, fn: Callable[[Any], Any]) -> None:
        """The spec's name-based deserializer hook, for this manager (see docs/types.md)."""
        self.registry.register_deserializer(name, fn)

    def migration(self, from_version: int) -> Callable[[Migration], Migration]:
        """Decorator: register ``fn(state) -> state`` migrating schema ``from_version`` to the next.

        Migrations run on load, in order, when the stored schema is older than
        ``schema_version``; the result is written only by the next save.
        """

        def decorate(fn: Migration) -> Migration:
            return self.migrations.register(from_version, fn)

        return decorate

    def register_transform(self, name: str, factory: Any) -> None:
        """Register a byte transform by name for this manager (see ``statevault.transforms``)."""
        self.transform_registry.register(name, factory)

    # ------------------------------------------------------------------ transforms

    def _write_transforms(self) -> list[Transform]:
        return self._transform_config.write_transforms()

    def _reader(self, data: Any) -> FrameReader:
        return FrameReader.from_bytes(data, **self._transform_config.reader_options())

    # ------------------------------------------------------------------ sections (overridable)

    def _split(self, state: dict[str, Any]) -> tuple[Any, list[Any]]:
        """Return the root object and the values stored as separate sections (1, 2, ...).

        The root refers to section ``i`` with ``SectionRef(i)``. The generic manager keeps the
        whole state in the root; ``TradingStateManager`` gives each pair its own section.
        """
        return {"state": state}, []

    def _join(self, reader: FrameReader) -> dict[str, Any]:
        """Rebuild the full state from a frame, resolving every section reference."""
        root = self._load_root(reader)
        state = root.get("state") if isinstance(root, dict) else None
        if not isinstance(state, dict):
            raise CorruptStateError(f"the root section of {self.url} holds no state dict")
        resolved = self._resolve(state, reader)
        assert isinstance(resolved, dict)
        return resolved

    def _load_root(self, reader: FrameReader) -> Any:
        return self._root_codec.loads(reader.section(0))

    def _load_section(self, reader: FrameReader, index: int) -> Any:
        if index >= len(reader.header.sections):
            raise CorruptStateError(
                f"{self.url}: the root refers to section {index}, the frame has "
                f"{len(reader.header.sections)}"
            )
        return self._codec.loads(reader.section(index))

    def _resolve(self, value: Any, reader: FrameReader) -> Any:
        # References sit in plain dicts of the root (the generic manager has none at all), so
        # a walk over dicts is enough and costs nothing measurable on a small root.
        if isinstance(value, SectionRef):
            return self._load_section(reader, value.index)
        if type(value) is dict:
            return {k: self._resolve(v, reader) for k, v in value.items()}
        return value

    def _encode(self, state: dict[str, Any]) -> list[list[Any]]:
        root, parts = self._split(state)
        sections = [list(self._root_codec.dumps(root, root="state"))]
        for index, part in enumerate(parts, start=1):
            sections.append(list(self._codec.dumps(part, root=f"section[{index}]")))
        return sections

    def _meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "writer": f"statevault {__version__}",
            "schema_version": self.schema_version,
        }

    # ------------------------------------------------------------------ strict core

    def save(self, state: Mapping[str, Any]) -> int:
        """Encode ``state`` and replace the stored state atomically; return the new generation.

        Raises ``SerializationError`` (nothing written) for a value that cannot be encoded,
        ``ConflictError`` if another writer replaced the state since this manager last saw it
        (unless ``on_conflict="overwrite"``), ``StorageError`` subclasses for storage failures.
        On any error the previously stored state is left as it was.
        """
        if not isinstance(state, Mapping):
            raise SerializationError(
                f"the state must be a dict (a Mapping), not {type(state).__name__}"
            )
        with self._lock:
            if self._validate is not None:
                self._validate(dict(state))
            # Encode before touching storage: an unsupported value must not cost a request,
            # and nothing is written unless the whole state encodes.
            sections = self._encode(dict(state))
            self._transform_config.check_sections(sections)
            transforms = self._write_transforms()
            try:
                expect, generation = self._expectation()
            except StorageError as e:
                generation = max(self._generation or 0, self._spooled_generation()) + 1
                chunks = build_frame(
                    sections, transforms=transforms, generation=generation, meta=self._meta()
                )
                raise self._to_spool(chunks, generation, e) from e
            generation = max(generation, self._spooled_generation() + 1)
            chunks = build_frame(
                sections, transforms=transforms, generation=generation, meta=self._meta()
            )
            self._keep_unreadable_aside(expect)
            try:
                info = self._write(chunks, expect, generation)
            except ConflictError:
                raise
            except StorageError as e:
                self._unacknowledged = _frame_prefix(chunks)
                raise self._to_spool(chunks, generation, e) from e
            self._unacknowledged = None
            self._observe(info.token, generation)
            self._unreadable_token = None
            try:
                self._history.record(chunks, generation, info)
            except StateError as e:  # the save itself succeeded: say so, do not fail it
                log.warning(
                    "%s: generation %d was saved but not kept in history: %s",
                    self.url,
                    generation,
                    e,
                )
            if self._spool is not None and self._spool.info() is not None:
                # This save is newer than anything spooled: the spool has done its job.
                self._spool.clear()
                log.info("%s is reachable again; cleared the spooled state", self.url)
            log.debug("saved %s generation %d (%d bytes)", self.url, generation, info.size)
            return generation

    def _unacknowledged_landed(self) -> str | None:
        """If the stored object is the frame of our last save that reported a failure (the
        write landed but its answer was lost: a timeout after the PUT, an fsync error after
        the rename), return its token: then this is no conflict, the object is ours."""
        mine = self._unacknowledged
        if mine is None:
            return None
        head = self._store.read_head(len(mine))
        if head is None or head[0] != mine:
            return None
        log.warning("%s: the save reported as failed had landed after all", self.url)
        self._unacknowledged = None
        return head[1].token

    def _damaged_current(self) -> str | None:
        """The token of the stored object if it is damaged beyond reading, else None.

        Only called after a refused write (rare), so reading the whole object is acceptable.
        """
        try:
            data, info = self._store.read()
        except StateError:
            return None
        try:
            self._decode(data)
        except CorruptStateError:
            return info.token
        except StateError:
            return None  # readable bytes this process cannot use (keys, types): not ours to judge
        return None

    def _keep_unreadable_aside(self, expect: object) -> None:
        """Before replacing a current object that could not be read, copy it to
        ``<url>.unreadable`` for inspection (each such copy replaces the previous one)."""
        if self._unreadable_token is None or expect != self._unreadable_token:
            return
        try:
            data, info = self._store.read()
        except StateError:
            return
        if info.token != self._unreadable_token:
            return
        aside = self._store.sibling(".unreadable")
        aside.write([data])
        log.error(
            "%s: kept the unreadable state aside at %s before replacing it", self.url, aside.url
        )

    def _spooled_generation(self) -> int:
        """The generation of the spooled frame, 0 when nothing (readable) is spooled."""
        if self._spool is None or self._spool.info() is None:
            return 0
        try:
            return self._header_of(self._spool.store).generation
        except StateError:
            return 0

    def _to_spool(self, chunks: Sequence[Any], generation: int, error: StorageError) -> StateError:
        """Keep a frame the primary refused in the local spool; return the error to raise."""
        if self._spool is None:
            return error
        try:
            self._spool.put(chunks)
        except StateError as spool_error:
            log.error("could not spool the state of %s either: %s", self.url, spool_error)
            return error
        # No log here: the error raised says where the state went, and save_state() logs it.
        spooled = type(error)(
            f"{error} -- the state (generation {generation}) was saved to the local spool "
            f"{self._spool.path}; the next successful save or flush_spool() pushes it"
        )
        return spooled

    def _expectation(self) -> tuple[object, int]:
        """What the store must still hold for this save to go ahead, and the next generation."""
        if self._observed and self.on_conflict == "raise":
            expect: object = self._token  # None: we saw no state, so none may exist now
            return expect, (self._generation or 0) + 1
        # One request on S3 (a ranged GET carries the ETag): a first save costs two in all.
        head = self._store.read_head(HEADER_PROBE)
        if head is None:
            return None, 1
        prefix, info = head
        try:
            generation = parse_header(prefix, total_size=info.size).generation
        except NeedMoreBytes:
            generation = self._stored_generation()
        except CorruptStateError:
            generation = 0  # legacy JSON or damage: the write below still checks the token
        # UnsupportedFormatError propagates: a newer writer's state is not ours to replace.
        if self.on_conflict == "overwrite":
            # Last writer wins, but generations still only go up.
            if self._observed and info.token != self._token:
                log.warning(
                    "%s: overwriting generation %d written by another writer (this manager "
                    "last saw generation %s)",
                    self.url,
                    generation,
                    self._generation,
                )
            return ANY, max(generation, self._generation or 0) + 1
        return info.token, generation + 1

    def _stored_generation(self) -> int:
        """The generation of the stored frame; 0 for a legacy or unreadable object."""
        try:
            return self._read_header().generation
        except (CorruptStateError, UnsupportedFormatError, StateNotFoundError):
            return 0

    def _read_header(self) -> FrameHeader:
        return self._header_of(self._store)

    def _header_of(self, store: Store) -> FrameHeader:
        """Parse the frame header of a stored object with ranged reads (no section is read)."""
        return self._ranged_reader(store)[0].header

    def _ranged_reader(
        self, store: Store, info: ObjectInfo | None = None
    ) -> tuple[FrameReader, ObjectInfo]:
        """A reader that fetches the header now and each section on demand (ranged reads).

        ``StateNotFoundError`` when nothing is stored; pass ``info`` if already known.
        """
        info = store.info() if info is None else info
        if info is None:
            raise StateNotFoundError(f"no state at {store.url}")
        reader = FrameReader(
            store.read_range, size=info.size, **self._transform_config.reader_options()
        )
        return reader, info

    def _write(self, chunks: Sequence[Any], expect: object, generation: int) -> ObjectInfo:
        try:
            return self._store.write(chunks, expect=expect)
        except ConflictError as e:
            landed = self._unacknowledged_landed()
            if landed is not None:
                return self._store.write(chunks, expect=landed)
            damaged = self._damaged_current()
            if damaged is not None:
                # Not another writer: the object went bad (bit rot, a truncating copy). A
                # running service must still be able to save, and nothing readable is lost:
                # the bad bytes are kept aside first.
                log.error(
                    "%s: the stored state changed into something unreadable; keeping it at "
                    "%s.unreadable and saving generation %d over it",
                    self.url,
                    self.url,
                    generation,
                )
                self._unreadable_token = damaged
                self._keep_unreadable_aside(damaged)
                return self._store.write(chunks, expect=damaged)
            found = self._stored_generation() if self._store.info() is not None else None
            expected = self._generation if self._observed else None
            raise ConflictError(
                f"{self.url} was replaced by another writer: stored generation is {found}, "
                f"this manager last saw {expected}. Load the state again, merge your changes "
                "and save, or create the manager with on_conflict='overwrite'.",
                expected=expected,
                found=found,
            ) from e

    def load(self, version: int | None = None, *, fallback: bool = False) -> dict[str, Any]:
        """Read the stored state and return it as saved (same types, same values).

        ``version``: read that retained generation instead of the current state (see
        ``list_versions()``). ``fallback=True``: if the current state is unreadable (damaged,
        truncated, not a state), return the newest readable retained version instead and log
        an ERROR naming what was skipped (``last_fallback`` has the details).

        Raises ``StateNotFoundError`` when nothing is stored, ``CorruptStateError`` subclasses
        for damaged bytes, ``EncryptionError`` subclasses for key problems,
        ``UnsupportedFormatError`` for a newer format, ``DecodeError`` for types this process
        cannot rebuild, ``MigrationError`` / ``SchemaVersionError`` for schema problems,
        ``ValidationError`` when the validator rejects the state, ``StorageError`` for storage
        failures. Never returns partial data, never changes what is stored.
        """
        with self._lock:
            if version is not None:
                return self._load_version(version)
            self.last_fallback = None
            primary: tuple[dict[str, Any], int] | None = None
            failure: StateError | None = None
            unreadable: tuple[StateError, ObjectInfo] | None = None
            try:
                data, info = self._store.read()
            except StateNotFoundError as e:
                self._observe(None, None)
                failure = e
            except StorageError as e:
                failure = e
            else:
                try:
                    primary = self._decode(data)
                except CorruptStateError as e:  # a newer format is not damage: it raises
                    if not fallback:
                        raise
                    failure, unreadable = e, (e, info)
                else:
                    self._observe(info.token, primary[1])
            spooled = self._load_spool()
            if spooled is not None and (primary is None or spooled[1] > primary[1]):
                log.warning(
                    "%s: loaded the spooled state (generation %d, %s) because it is newer than "
                    "the primary (%s); the next successful save or flush_spool() pushes it",
                    self.url,
                    spooled[1],
                    self._spool.path if self._spool else "?",
                    f"generation {primary[1]}" if primary else f"unavailable: {failure}",
                )
                return self._loaded(spooled[0], "spool")
            if primary is not None:
                return self._loaded(primary[0], "primary")
            if unreadable is not None:
                return self._fall_back(*unreadable)
            assert failure is not None
            raise failure

    def _loaded(self, state: dict[str, Any], source: str) -> dict[str, Any]:
        if self._validate is not None:
            self._validate(state)
        self.last_load_source = source
        return state

    def _fall_back(self, error: StateError, info: ObjectInfo) -> dict[str, Any]:
        """The current object is unreadable: take the newest readable retained version."""
        skipped = [f"the current state ({type(error).__name__}: {error})"]
        versions, damaged = self._history.scan(self._header_of)
        skipped += [f"version slot {i} ({type(e).__name__}: {e})" for i, e in damaged]
        for version in versions:
            try:
                data, _ = version.store.read()
                state, generation = self._decode(data)
            except StateError as e:
                skipped.append(f"version {version.generation} ({type(e).__name__}: {e})")
                continue
            # The next save replaces the unreadable object only if it is still the one we
            # saw, and keeps its bytes aside first.
            self._observe(info.token, generation)
            self._unreadable_token = info.token
            self.last_fallback = {
                "source": f"version {generation}",
                "generation": generation,
                "skipped": skipped,
            }
            log.error(
                "%s: the current state is unreadable; loaded retained version %d instead. "
                "Skipped: %s. The next save keeps the unreadable bytes at %s.unreadable",
                self.url,
                generation,
                "; ".join(skipped),
                self.url,
            )
            return self._loaded(state, f"version {generation}")
        self.last_fallback = {"source": None, "generation": None, "skipped": skipped}
        log.error(
            "%s: nothing readable: %s", self.url, "; ".join(skipped) or "no retained versions"
        )
        raise error

    def _load_version(self, version: int) -> dict[str, Any]:
        slot = self._history.find(version, self._header_of)
        if slot is None:
            raise StateNotFoundError(
                f"version {version} of {self.url} is not retained: list_versions() shows "
                "the generations that are"
            )
        data, _ = slot.read()
        state, generation = self._decode(data)
        if generation != version:  # the slot was reused between the lookup and the read
            raise StateNotFoundError(
                f"version {version} of {self.url} is no longer retained (its slot now holds "
                f"generation {generation}): list_versions() shows the generations that are"
            )
        if self._validate is not None:
            self._validate(state)
        return state

    def list_versions(self) -> list[dict[str, Any]]:
        """The retained versions, newest first: generation, created (UTC), size, slot, url,
        current (whether it is the generation stored at the URL now).

        Reads one header per slot (``keep_versions + 1`` small reads); damaged slots are left
        out. Empty when ``keep_versions=0``.
        """
        with self._lock:
            try:
                current: int | None = self._read_header().generation
            except StateError:
                current = None
            return [
                {**v.as_dict(), "current": v.generation == current}
                for v in self._history.versions(self._header_of)
            ]

    def restore(self, version: int) -> int:
        """Make retained ``version`` the current state, as a new save (so it can be undone).

        Returns the new generation; raises like ``load(version=...)`` and ``save()``.
        """
        with self._lock:
            state = self._load_version(version)
            generation = self.save(state)
            log.info("%s: restored version %d as generation %d", self.url, version, generation)
            return generation

    def _load_spool(self) -> tuple[dict[str, Any], int] | None:
        if self._spool is None or self._spool.info() is None:
            return None
        try:
            data, _ = self._spool.store.read()
            return self._decode(data)
        except StateError as e:
            log.error("the spooled state %s is unreadable and was ignored: %s", self._spool.path, e)
            return None

    def flush_spool(self) -> bool:
        """Push a spooled state to the primary storage now; True if one was pushed.

        A spooled state older than the primary's is dropped (logged). Raises like ``save()``
        (``StorageError`` while the primary is still unreachable, ``ConflictError`` if another
        writer replaced the primary since this manager last saw it).
        """
        with self._lock:
            if self._spool is None or self._spool.info() is None:
                return False
            raw, _ = self._spool.store.read()
            data = memoryview(raw)
            header = parse_header(data, total_size=len(data))
            expect, next_generation = self._expectation()
            if header.generation < next_generation:
                log.warning(
                    "%s: dropped the spooled state (generation %d): the primary is newer",
                    self.url,
                    header.generation,
                )
                self._spool.clear()
                return False
            info = self._write([data], expect, header.generation)
            self._observe(info.token, header.generation)
            self._spool.clear()
            log.info("pushed the spooled state (generation %d) to %s", header.generation, self.url)
            return True

    def _observe(self, token: str | None, generation: int | None) -> None:
        self._token = token
        self._generation = generation
        self._observed = True

    def _decode(self, data: Any) -> tuple[dict[str, Any], int]:
        """Decode a stored object (frame or legacy JSON), migrated to this schema version."""
        # Plain JSON carries no signature: a manager that requires one never imports it.
        if bytes(data[: len(MAGIC)]) != MAGIC and not self._transform_config.require_authentication:
            legacy = self._try_legacy(data)
            if legacy is not None:
                return self._migrate(legacy, 1), 0
        reader = self._reader(data)
        stored_schema = reader.header.meta.get("schema_version", 1)
        if not isinstance(stored_schema, int):
            raise CorruptStateError(f"{self.url}: schema_version {stored_schema!r} is not an int")
        return self._migrate(self._join(reader), stored_schema), reader.header.generation

    def _migrate(self, state: dict[str, Any], stored_schema: int) -> dict[str, Any]:
        if stored_schema == self.schema_version:
            return state
        return self.migrations.run(state, stored_schema, self.schema_version, self.url)

    def _try_legacy(self, data: Any) -> dict[str, Any] | None:
        """Read a plain JSON object written by other code (the spec's hand-written files)."""
        head = bytes(data[:64]).lstrip()
        if not head.startswith(b"{"):
            return None
        try:
            obj = json.loads(bytes(data))
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        log.info("%s is plain JSON (not a statevault frame); the next save converts it", self.url)
        return self._from_legacy(obj)

    def _from_legacy(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Turn a legacy JSON document into a state; subclasses restore their known types."""
        return obj

    # ------------------------------------------------------------------ forgiving API (spec)

    def save_state(self, state: Mapping[str, Any]) -> bool:
        """Save like ``save()`` but never raise: return True on success, else log and return False.

        The log record (logger ``statevault``, level ERROR) carries the exception and what to do.
        """
        try:
            self.save(state)
        except StateError as e:
            cause = f" (cause: {type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
            log.error("save of %s failed: %s%s", self.url, e, cause)
            log.debug("save of %s failed", self.url, exc_info=e)
            return False
        except Exception as e:  # a trading loop must not die from a save: log loudly instead
            log.exception("save of %s failed with an unexpected error: %r", self.url, e)
            return False
        return True

    def load_state(self, version: int | None = None) -> dict[str, Any]:
        """Load like ``load(version, fallback=True)`` but never raise: ``{}`` when nothing is
        stored or readable.

        An unreadable current state falls back to the newest readable retained version (then
        the spool), logged at ERROR. "Nothing saved yet" is logged at INFO and sets
        ``last_load_source`` to ``"missing"``; an empty result caused by a failure is logged at
        ERROR and sets it to ``"failed"`` (``last_load_error`` holds the error).
        """
        self.last_load_error = None
        try:
            return self.load(version, fallback=True)
        except StateNotFoundError as e:
            if version is not None:
                log.error("%s", e)
                self.last_load_source, self.last_load_error = "failed", e
                return {}
            log.info("no state saved yet at %s; starting empty", self.url)
            self.last_load_source = "missing"
            return {}
        except StateError as e:
            log.error("load of %s failed, returning an empty state: %s", self.url, e, exc_info=e)
            self.last_load_source, self.last_load_error = "failed", e
            return {}
        except Exception as e:
            log.exception("load of %s failed with an unexpected error: %r", self.url, e)
            self.last_load_source, self.last_load_error = "failed", e
            return {}

    def state_exists(self) -> bool:
        """Whether a state is stored at the URL.

        Raises ``StorageError`` when the storage cannot be asked: "could not tell" is never
        answered with False, which would invite a fresh start over a state that exists.
        """
        with self._lock:
            return self._store.info() is not None

    def delete_state(self) -> bool:
        """Delete the stored state; True if there was one. The next save starts at generation 1."""
        with self._lock:
            deleted = self._store.delete()
            if self._spool is not None:
                self._spool.clear()  # a spooled state must not bring the deleted one back
            self._observe(None, None)
            return deleted

    def get_state_info(self) -> dict[str, Any]:
        """Describe the stored state without decoding it (reads only the frame header).

        Keys: url, protocol, exists, size (bytes), last_modified (UTC datetime), generation,
        format_version, transforms (names in the order applied on save), encrypted, sections,
        created, kind, readable, atomic, conditional_writes, spool (path, size, generation of a
        spooled state or None), unflushed (a spooled state waits for the primary) and, when the
        header or the storage cannot be read, error (then exists is None when the storage could
        not be asked). Never raises for a storage failure: it is the call to make while the
        storage is down, to see what is spooled.
        """
        with self._lock:
            storage_error: StorageError | None = None
            try:
                info = self._store.info()
            except StorageError as e:
                info, storage_error = None, e
            out: dict[str, Any] = {
                "url": self.url,
                "protocol": self._store.protocol,
                "exists": None if storage_error else info is not None,
                "size": info.size if info else 0,
                "last_modified": info.modified if info else None,
                "generation": None,
                "format_version": None,
                "transforms": [],
                "encrypted": None,
                "sections": 0,
                "created": None,
                "kind": None,
                "readable": False,
                "atomic": self._store.atomic,
                "conditional_writes": self._store.conditional,
                "spool": None,
                "unflushed": False,
                "schema_version": None,
                "keep_versions": self._history.keep,
                "last_load_source": self.last_load_source,
                "fallback": self.last_fallback,
            }
            spool_info = self._spool.info() if self._spool is not None else None
            if spool_info is not None and self._spool is not None:
                out["spool"] = {
                    "path": str(self._spool.path),
                    "size": spool_info.size,
                    "generation": self._spooled_generation(),
                }
                out["unflushed"] = True
            if storage_error is not None:
                out["error"] = f"{type(storage_error).__name__}: {storage_error}"
                return out
            if info is None:
                if not self._observed:
                    self._observe(None, None)
                return out
            try:
                header = self._read_header()
            except StateError as e:
                out["error"] = f"{type(e).__name__}: {e}"
                return out
            out.update(
                generation=header.generation,
                format_version=header.version,
                transforms=[t.get("name") for t in header.transforms],
                encrypted=header.encrypted_with(self.transform_registry),
                sections=len(header.sections),
                created=datetime.fromtimestamp(header.created, UTC),
                kind=header.meta.get("kind"),
                schema_version=header.meta.get("schema_version", 1),
                readable=True,
            )
            if not self._observed:
                # Only a token and a generation read from the same object make an observation.
                again = self._store.info()
                if again is not None and again.token == info.token:
                    self._observe(info.token, header.generation)
            return out

    # ------------------------------------------------------------------ keys

    def rotate_keys(self) -> int:
        """Re-encrypt the stored state with the first (newest) configured key; return generation.

        Configure the manager with ``encryption_key=[new, old, ...]``. The current state is
        saved again (a new generation, which also empties the spool), and every retained
        version is rewritten in place with the new key (same generation, same contents), so the
        old keys
        can be retired. ``<url>.unreadable``, if present, cannot be decrypted and is left as it
        is. Raises like ``load()`` and ``save()``; a version that cannot be re-encrypted is
        logged and left (``list_versions()`` still shows it).
        """
        with self._lock:
            if self._keyring is None:
                raise StateError("rotate_keys needs encryption_key (newest key first)")
            state = self.load()
            generation = self.save(state)
            # A spooled state was loaded (it is newer) and the save cleared it.
            for store in [v.store for v in self._history.versions(self._header_of)]:
                try:
                    self._reencrypt(store)
                except StateError as e:
                    log.error("%s: could not re-encrypt %s: %s", self.url, store.url, e)
            return generation

    def _reencrypt(self, store: Store) -> None:
        """Rewrite a stored frame with this manager's transforms; contents and generation kept."""
        data, _ = store.read()
        reader = self._reader(data)
        header = reader.header
        sections = [[reader.section(i)] for i in range(len(header.sections))]
        chunks = build_frame(
            sections,
            transforms=self._write_transforms(),
            generation=header.generation,
            meta=header.meta,
            created=header.created,
        )
        store.write(chunks, expect=ANY)
