"""StateManager: save and load one state (a dict) at one URL, exactly and atomically.

The manager keeps the configuration and two contracts, and composes the layers of
``statevault.layers`` (docs/design.md has the diagram) for everything else:

- the strict core, ``save()`` / ``load()``, which raise typed ``StateError`` subclasses;
- the forgiving methods of the specification, ``save_state()`` (returns a bool) and
  ``load_state()`` (returns ``{}`` when nothing can be read), which log through
  ``logging.getLogger("statevault")`` instead of raising.

A save is two steps: ``StateCodec.encode`` (a ``Snapshot``, no I/O) then ``Failover.save``
(the commit, I/O). Every public method holds the manager's lock, so one manager may be shared
by threads. Separate managers (or processes) on the same URL are kept apart by the store:
atomic replace plus a compare-and-swap on the object's version token (``ConflictError``).

Size: longer than 400 lines on purpose: this is the public API of the specification, one
short method per documented operation, each carrying the docstring users read; the work behind
them lives in ``statevault.layers``, a module per layer (read-modify-write in ``update``, the
save and load figures in ``measure``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Self

from .codec import TypeRegistry, default_registry
from .delta.store import DeltaStore
from .errors import SerializationError, StateError, StateNotFoundError
from .info import StateInfo, describe_state
from .keys import Keyring, SigningKeyring, resolve_keyring
from .layers import (
    UPDATE_RETRIES,
    Commit,
    Failover,
    FlatLayout,
    FrameStore,
    Layers,
    Layout,
    Measure,
    NothingReadable,
    OnConflict,
    OnUnreadable,
    Recovery,
    SectionRef,
    Snapshot,
    StateCodec,
    Updates,
)
from .locking import DEFAULT_LOCK_TIMEOUT, LockLike, ReentrantLock
from .metrics import CountingStore, LoadMetrics, MetricsCallback, SaveMetrics, emit
from .migrations import Migration, Migrations
from .spool import Spool, default_spool_dir
from .storage import Store, open_store
from .transforms import (
    DEFAULT_MAX_STATE_BYTES,
    Transform,
    TransformConfig,
    TransformRegistry,
    default_transforms,
)
from .validation import Validator, make_validator

__all__ = ["OnConflict", "OnUnreadable", "SectionRef", "StateManager"]

log = logging.getLogger("statevault")


def _signing_keys(
    key: str | bytes | Sequence[str | bytes] | SigningKeyring | None,
) -> SigningKeyring | None:
    return key if key is None or isinstance(key, SigningKeyring) else SigningKeyring(key)


class StateManager:
    """Persist one state (a ``dict``) at one URL or path: exact round trips, atomic replace.

    ``url_or_path`` is a plain path or any fsspec URL (``file://``, ``memory://``, ``s3://``,
    ...); ``storage_options`` go to fsspec. ``lock`` is the lock every public method holds: pass
    your own to share it with other components (spec: "Thread Safety"). The default is an
    ``RLock``; if you pass a plain ``threading.Lock``, do not call the manager while holding it:
    a caller's lock is waited for at most ``lock_timeout`` seconds (default 10, None: forever),
    then ``StateError`` says so instead of hanging.

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

    ``on_unreadable="raise"`` (default): a save never replaces a stored state this manager
    could not read (a wrong or missing key, a newer format, damage with no readable retained
    version): it raises ``UnreadableStateError`` (``save_state()`` returns False and logs
    why). ``"replace"`` replaces it on purpose, after keeping its bytes at
    ``<url>.unreadable``. Damage under a running writer, or after a load fell back to a
    readable retained version, is replaced (bytes kept aside) either way.

    ``spool_dir``: when a save cannot reach the storage (unreachable, permission denied, disk
    full), the frame goes to a local spool file there instead (default: ``default_spool_dir()``,
    ``False`` turns the spool off); the save still reports failure, the next successful save or
    ``flush_spool()`` empties the spool, and loads take the newer of primary and spool.

    ``keep_versions`` (default 3, 0 for none): every save also keeps its frame in the sidecar
    ``<url>.versions/`` so the N states before the current one can be listed, loaded and
    restored (``list_versions()``, ``load(version=...)``, ``restore()``); they are also what
    ``load_state()`` falls back to when the current state is unreadable. Costs one more write
    per save.

    ``delta`` (default True): a save writes only the large buffers (and parts of them) that
    the state this manager last saved or loaded does not already have, as one pack in the
    sidecar ``<url>.packs/``, then a small manifest as the state; ``False`` writes one
    self-contained frame per save. See docs/design.md ("Delta saves").

    ``schema_version`` (default 1) is written with every state; older states are brought up to
    date on load by the migrations registered with ``@manager.migration(from_version=k)``.
    ``validator`` (a callable, or a pydantic model class) checks every state before a save
    (nothing is written if it fails) and after a load.
    """

    #: ``kind`` recorded in the frame's meta for states written by this class.
    kind = "state"
    #: How this class splits a state into frame sections (a ``statevault.layers.Layout``).
    layout_class: type[Layout] = FlatLayout

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        lock: LockLike | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        compression: str | None = "zstd",
        compression_level: int | None = None,
        encryption_key: str | bytes | Sequence[str | bytes] | Keyring | None = None,
        key_file: str | os.PathLike[str] | None = None,
        transforms: Sequence[Transform | str] = (),
        registry: TypeRegistry | None = None,
        on_conflict: OnConflict = "raise",
        on_unreadable: OnUnreadable = "raise",
        spool_dir: str | os.PathLike[str] | Literal[False] | None = None,
        keep_versions: int = 3,
        schema_version: int = 1,
        validator: Any = None,
        signing_key: str | bytes | Sequence[str | bytes] | SigningKeyring | None = None,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        on_metrics: MetricsCallback | None = None,
        delta: bool = True,
    ) -> None:
        if on_conflict not in ("raise", "overwrite"):
            raise ValueError(f"on_conflict must be 'raise' or 'overwrite', not {on_conflict!r}")
        # A caller's lock is waited for at most lock_timeout seconds (a caller holding its
        # own plain Lock while calling would hang forever); the manager's own lock, forever.
        self._lock = (
            ReentrantLock(threading.Lock())
            if lock is None
            else ReentrantLock(lock, timeout=lock_timeout)
        )
        store: Store = open_store(url_or_path, storage_options)
        self.registry: TypeRegistry = (registry or default_registry).child()
        self.transform_registry: TransformRegistry = default_transforms.child()
        self._keyring: Keyring | None = resolve_keyring(encryption_key, key_file=key_file)
        # A bad compressor, level or key is an error here, not on every save.
        transform_config = TransformConfig(
            self.transform_registry,
            compression,
            compression_level,
            tuple(transforms),
            self._keyring,
            _signing_keys(signing_key),
            max_state_bytes,
        )
        # The layers, innermost first (docs/design.md): each wraps the one before it.
        # CountingStore only times and counts storage calls, for last_save / last_load.
        self._frames = FrameStore(CountingStore(store), config=transform_config)
        self.migrations = Migrations()
        self._codec = StateCodec(
            self._frames,
            self.layout_class(self.registry),
            self.migrations,
            kind=self.kind,
            schema_version=schema_version,
        )
        self._commit = Commit(
            self._frames,
            self._codec.decode,
            on_conflict,
            on_unreadable,
            DeltaStore(self._frames) if delta else None,
        )
        self._recovery = Recovery(self._commit, keep_versions)
        spool = None
        if spool_dir is not False:
            spool = Spool(default_spool_dir() if spool_dir is None else spool_dir, store.url)
        self._failover = Failover(self._recovery, spool)
        self._validate: Validator | None = None if validator is None else make_validator(validator)
        # Where the last load came from: "primary", "spool", "version N"; None: nothing loaded.
        self.last_load_source: str | None = None
        # What the last load_state()/load(fallback=True) had to skip, for get_state_info().
        self.last_fallback: dict[str, Any] | None = None
        self.last_load_error: BaseException | None = None
        # Figures of the last save()/load() (statevault.metrics); on_metrics gets each one.
        self.on_metrics: MetricsCallback | None = on_metrics
        self.last_save: SaveMetrics | None = None
        self.last_load: LoadMetrics | None = None
        self._measure = Measure(self.url, self._report)
        # Late-bound (lambdas): a subclass's or a test's load/encode is the one update() uses.
        self._updates = Updates(
            self._lock,
            lambda: self.store.lock(),  # noqa: PLW0108
            lambda: self.load(),  # noqa: PLW0108
            lambda state: self._failover.save(self.encode(state), strict=True),
        )

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_env(cls, lock: LockLike | None = None, **options: Any) -> Self:
        """Build a manager from ``STATEVAULT_URL`` and ``STATEVAULT_STORAGE_OPTIONS`` (JSON).

        The key comes from ``STATEVAULT_KEY`` or ``STATEVAULT_KEY_FILE`` as usual; ``options``
        override the rest.
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
        return self._frames.url

    @property
    def store(self) -> Store:
        """The storage adapter (advanced use: tests, tools); the backend's own ``Store``, not
        the metrics layer over it."""
        store = self._frames.store
        return store.inner if isinstance(store, CountingStore) else store

    @property
    def on_conflict(self) -> OnConflict:
        """``"raise"`` or ``"overwrite"`` (see the class docstring); may be changed."""
        return self._commit.on_conflict

    @on_conflict.setter
    def on_conflict(self, value: OnConflict) -> None:
        self._commit.on_conflict = value

    @property
    def schema_version(self) -> int:
        """The schema version written with every state (see ``migration``)."""
        return self._codec.schema_version

    @schema_version.setter
    def schema_version(self, value: int) -> None:
        self._codec.schema_version = value

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
        return self._frames.write_transforms()

    # ------------------------------------------------------------------ layers

    @property
    def layers(self) -> Layers:
        """The layers this manager is composed of (for subclasses and tools such as
        ``statevault.open_state``); use them under ``with manager.lock:``."""
        return Layers(self._frames, self._codec, self._commit, self._recovery, self._failover)

    @property
    def lock(self) -> ReentrantLock:
        """The lock every public method holds (re-entrant for the manager's own calls)."""
        return self._lock

    # ------------------------------------------------------------------ strict core

    def validate(self, state: Mapping[str, Any]) -> None:
        """Run the configured ``validator`` on ``state`` (nothing without one); raises
        ``ValidationError`` as ``save()`` would."""
        if self._validate is not None:
            self._validate(dict(state))

    def encode(self, state: Mapping[str, Any]) -> Snapshot:
        """The first half of a save: validate and encode ``state`` into a ``Snapshot`` (no I/O).

        Raises ``SerializationError`` / ``ValidationError``; nothing is written. ``commit()``
        is the second half. Does not take the manager's lock (it reads only configuration): a
        background saver encodes in the caller's thread (a consistent snapshot) and commits
        later; the snapshot may share memory with numpy arrays of the
        state, so commit before mutating them.
        """
        if not isinstance(state, Mapping):
            raise SerializationError(
                f"the state must be a dict (a Mapping), not {type(state).__name__}"
            )
        # Not under the lock: encoding reads only configuration, and a background saver's
        # caller must not wait for the write its worker holds the lock for.
        if self._validate is not None:
            self._validate(dict(state))
        return self._codec.encode(dict(state))

    def commit(self, snapshot: Snapshot, *, encode_seconds: float = 0.0) -> int:
        """The second half of a save: write an encoded state; return the new generation.

        Raises like ``save()`` (``ConflictError``, ``StorageError`` after spooling it).
        Records ``last_save`` (``encode_seconds``: what the encode took, for that record).
        """
        with self._lock:
            return self._measure.commit(self._failover, snapshot, encode_seconds)

    def _report(self, record: SaveMetrics | LoadMetrics) -> None:
        if isinstance(record, SaveMetrics):
            self.last_save = record
        else:
            self.last_load = record
        emit(record, self.on_metrics)

    def save(self, state: Mapping[str, Any]) -> int:
        """Encode ``state`` and replace the stored state atomically; return the new generation.

        Raises ``SerializationError`` (nothing written) for a value that cannot be encoded,
        ``ConflictError`` if another writer replaced the state since this manager last saw it
        (unless ``on_conflict="overwrite"``), ``StorageError`` subclasses for storage failures.
        On any error the previously stored state is left as it was.
        """
        with self._lock:
            # Encode before touching storage: an unsupported value must not cost a request,
            # and nothing is written unless the whole state encodes.
            start = time.perf_counter()
            try:
                snapshot = self.encode(state)
            except BaseException as e:
                self._measure.encode_failed(time.perf_counter() - start, e)
                raise
            return self.commit(snapshot, encode_seconds=time.perf_counter() - start)

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
            return self._measure.load(
                lambda: self._load(version, fallback),
                version=version,
                commit=self._commit,
                source=lambda: self.last_load_source,
            )

    def _load(self, version: int | None, fallback: bool) -> dict[str, Any]:
        with self._lock:
            if version is not None:
                return self._checked(self._recovery.read_version(version))
            self.last_fallback = None
            try:
                loaded = self._failover.load(fallback=fallback)
            except NothingReadable as e:
                self.last_fallback = {"source": None, "generation": None, "skipped": e.skipped}
                raise e.error from e.error.__cause__
            if loaded.fallback is not None:
                self.last_fallback = {
                    "source": loaded.source,
                    "generation": loaded.fallback.generation,
                    "skipped": loaded.fallback.skipped,
                }
            state = self._checked(loaded.state)
            self.last_load_source = loaded.source
            return state

    def _checked(self, state: dict[str, Any]) -> dict[str, Any]:
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
                current: int | None = self._frames.header().generation
            except StateError:
                current = None
            return [
                {**v.as_dict(), "current": v.generation == current}
                for v in self._recovery.versions()
            ]

    def restore(self, version: int) -> int:
        """Make retained ``version`` the current state, as a new save (so it can be undone).

        Returns the new generation; raises like ``load(version=...)`` and ``save()``.
        """
        with self._lock:
            state = self.load(version)
            generation = self.save(state)
            log.info("%s: restored version %d as generation %d", self.url, version, generation)
            return generation

    def flush_spool(self, *, force: bool = False) -> bool:
        """Push a spooled state to the primary storage now; True if one was pushed.

        A spooled state older than the primary's is dropped (logged). Raises like ``save()``
        (``StorageError`` while the primary is still unreachable, ``ConflictError`` if another
        writer replaced the primary since this manager last saw it). A spooled state saved
        while the primary could not be read at all (its base is unknown) is never dropped:
        over an existing primary it is a ``ConflictError`` and stays spooled
        (``get_state_info()["spool"]``); ``force=True`` pushes it as the next generation.
        """
        with self._lock:
            return self._failover.flush(force=force)

    def discard_spool(self) -> bool:
        """Drop a spooled state without pushing it; True if there was one."""
        with self._lock:
            return self._failover.discard()

    # ------------------------------------------------------------------ read-modify-write

    def update(
        self,
        fn: Callable[[dict[str, Any]], Mapping[str, Any] | None],
        *,
        retries: int = UPDATE_RETRIES,
    ) -> dict[str, Any]:
        """Atomically read, modify and save: ``fn(state)`` returns the new state (or mutates
        ``state`` and returns None); return the state saved.

        Safe across threads (the manager's lock), across managers of one process (the
        store's lock) and across processes (compare-and-swap, whatever ``on_conflict``
        says): on a conflict the state is read again and ``fn`` runs again, up to
        ``retries`` times, then ``ConflictError``. ``fn`` may therefore run more than once:
        keep side effects out of it. A missing state starts as ``{}``. Raises like ``load()``
        and ``save()``.
        """
        return self._updates.update(fn, retries)

    def transaction(self) -> AbstractContextManager[dict[str, Any]]:
        """``with sm.transaction() as state:`` -- modify ``state``; it is saved on exit.

        Holds the manager's lock and the store's lock for the whole block, so threads and
        managers of one process (and, on local files, other processes: ``flock``) are
        excluded; elsewhere another process's save in between is a ``ConflictError`` on
        exit (the block cannot be re-run: use ``update()`` for retries). An exception in the
        block saves nothing.
        """
        return self._updates.transaction()

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
            return self.store.info() is not None

    def delete_state(self) -> bool:
        """Delete the stored state; True if there was one. The next save starts at generation 1."""
        with self._lock:
            deleted = self.store.delete()
            self._failover.clear()  # a spooled state must not bring the deleted one back
            self._commit.observe(None, None)
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
        return self.state_info().as_dict()

    def state_info(self) -> StateInfo:
        """``get_state_info()`` as a typed record (``StateInfo``; ``as_dict()`` is the dict)."""
        with self._lock:
            return describe_state(
                self._frames,
                self._commit,
                self._failover,
                keep_versions=self._recovery.keep,
                last_load_source=self.last_load_source,
                fallback=self.last_fallback,
                history_error=self._recovery.last_error,
            )

    # ------------------------------------------------------------------ keys

    def rotate_keys(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-encrypt the stored state with the first (newest) configured key; return generation.

        Configure the manager with ``encryption_key=[new, old, ...]``. The current state is
        saved again (a new generation, which also empties the spool), and every retained
        version is rewritten in place with the new key (same generation, same contents), so the
        old keys
        can be retired. ``<url>.unreadable``, if present, cannot be decrypted and is left as it
        is. Raises like ``load()`` and ``save()``; a version that cannot be re-encrypted is
        logged and left (``list_versions()`` still shows it). ``progress(done, total)`` is
        called before each retained version is rewritten (the command line draws it).
        """
        with self._lock:
            if self._keyring is None:
                raise StateError("rotate_keys needs encryption_key (newest key first)")
            state = self.load()
            if self._commit.delta is not None:
                self._commit.delta.force_full = True  # every piece anew, with the new key
            generation = self.save(state)
            # A spooled state was loaded (it is newer) and the save cleared it.
            stores = [v.store for v in self._recovery.versions()]
            for done, store in enumerate(stores):
                if progress is not None:
                    progress(done, len(stores))
                try:
                    self._frames.rewrite(store)
                except StateError as e:
                    log.error("%s: could not re-encrypt %s: %s", self.url, store.url, e)
            return generation
