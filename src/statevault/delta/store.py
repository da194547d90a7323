"""The delta frame store: a save writes only the pieces the stored state does not have.

``DeltaStore`` sits beside the commit layer of one manager and remembers what it last saved
or loaded (``Knowledge``: the HEAD's token, its index and each buffer's plan). A save
(``prepare``) splits every section's chunks into small data, kept inline in a manifest, and
large buffers, planned by the ``Planner`` into extents of immutable pieces; the pieces no
stored HEAD has go into ONE new pack (a plain frame whose sections are pieces, through the
same transforms), written before the HEAD; the HEAD is a manifest frame. It also compacts
(bounded packs per HEAD, bounded extents per buffer) and collects garbage (retired packs past
a grace period that no retained version may need). docs/design.md ("Delta saves") says why
this is safe between writers; docs/format.md has the layout.

Not thread-safe by itself: the manager's lock covers every call.

Size: longer than 400 lines on purpose: the save's planning, the retired list and garbage
collection share one writer's knowledge and must be read together to check the safety
argument; the pure parts live in ``manifest``, ``compact`` and ``reader``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final

from ..errors import StateError
from ..frame import MANIFEST_VERSION, FrameHeader, header_length, parse_header
from ..storage import ANY, ObjectInfo, Store
from ..storage.base import byte_view
from ..transforms import Buffer, Transform
from .compact import Compaction, compact_plan, merge_set
from .manifest import (
    Index,
    Inline,
    PackRef,
    PieceLoc,
    Retired,
    Segment,
    compress_sections,
    decode_section,
    encode_index,
    encode_section,
    plans_of,
)
from .planner import BufferPlan, Extent, Planner
from .reader import PACKS, DeltaReader, pack_path
from .sweep import SWEEP_EVERY, Sweep

__all__ = ["DeltaSave", "DeltaStore", "Knowledge"]

log = logging.getLogger("statevault")

#: Chunks of a section at least this long become extents of pieces; smaller stay inline.
#: 4 KiB, not 64: the bench's M state keeps each series in 40 KB buffers.
THRESHOLD: Final = 4096
#: A HEAD references at most this many packs; beyond it a save merges the smallest ones.
MAX_PACKS: Final = 12
#: A buffer made of more extents than this is rewritten as one piece.
MAX_EXTENTS: Final = 24
#: Seconds a retired pack stays before garbage collection may delete it (readers of an older
#: HEAD finish within it; clocks of writers may differ by less than it).
GRACE: Final = 600.0
#: Garbage collection runs after every this many saves of one manager (it reads the version
#: slots' headers: keep_versions + 1 small reads).
GC_EVERY: Final = 16
_NAME_DOMAIN: Final = b"statevault.delta.names"


@dataclass
class Knowledge:
    """What this writer last saved or loaded as the current state (HEAD ``token``)."""

    token: str
    generation: int
    index: Index
    # (section, ordinal of the buffer in it) -> its plan and the fingerprint of its first bytes
    plans: dict[tuple[int, int], tuple[BufferPlan, int]]


@dataclass
class DeltaSave:
    """One prepared delta save: the pack to write first, the new knowledge, the spool frame."""

    generation: int
    pack: bytes | None
    pack_chunks: list[Buffer]
    index: Index
    plans: dict[tuple[int, int], tuple[BufferPlan, int]]
    full: Callable[[], list[Buffer]]
    new_bytes: int = 0
    reused: bool = False
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class _Buf:
    plan: BufferPlan
    data: memoryview
    mark: int


_STEP: Final = 1 << 16


def _equal(a: memoryview, b: memoryview) -> bool:
    """Whether two byte views hold the same bytes.

    With numpy loaded (it is whenever the buffers are arrays) as 8-byte words in one pass,
    else 64 KiB at a time: memoryview's own ``==`` goes item by item (20x slower) and one
    ``bytes`` copy of a large buffer costs more in page faults than the comparison. Per 400 KB
    here: numpy 13 us, 64 KiB slices 28 us, keyed BLAKE3 66 us.
    """
    n = a.nbytes
    if n != b.nbytes:
        return False
    np: Any = sys.modules.get("numpy")
    if np is not None and n >= _STEP:
        w = n // 8 * 8
        x, y = np.frombuffer(a[:w], np.uint64), np.frombuffer(b[:w], np.uint64)
        return bool(np.array_equal(x, y)) and a[w:].tobytes() == b[w:].tobytes()
    return all(a[i : i + _STEP].tobytes() == b[i : i + _STEP].tobytes() for i in range(0, n, _STEP))


def _header_of(chunks: Sequence[Buffer]) -> FrameHeader:
    """The header of a frame given as chunks (built in memory; no I/O)."""
    from ..layers.framestore import frame_prefix

    end = header_length(frame_prefix(chunks, 24))
    return parse_header(frame_prefix(chunks, end))


class DeltaStore:
    """Delta saves for one manager's frame store (``frames``: a ``FrameStore``)."""

    def __init__(self, frames: Any) -> None:
        self.frames = frames
        self.threshold = THRESHOLD
        self.max_packs = MAX_PACKS
        self.max_extents = MAX_EXTENTS
        self.grace = GRACE
        self.gc_every = GC_EVERY
        self.sweep_every = SWEEP_EVERY
        self._sweep = Sweep()
        self.planner_class: Callable[[bytes], Planner] = Planner
        self.knowledge: Knowledge | None = None
        # Packs written whose HEAD never committed (a conflict, a storage error): retired by
        # the next HEAD this writer commits, so garbage collection deletes them.
        self.orphans: list[bytes] = []
        # Packs deleted by garbage collection: left out of the next HEAD's retired list.
        self.deleted: set[bytes] = set()
        # The next save writes every piece anew (key rotation).
        self.force_full = False
        self._saves = 0
        self._planners: dict[tuple[bytes, bytes], Planner] = {}

    # -- names

    def _secret(self) -> bytes:
        keyring = self.frames.keyring
        if keyring is None:
            return b""
        key = keyring.keys[0]
        return bytes(key.signing) + bytes(key.encryption)

    def planner(self, salt: bytes) -> Planner:
        """The planner for a state's ``salt``: piece names keyed by the encryption key (if
        any) and the salt, so they reveal nothing about the data."""
        secret = self._secret()
        cached = self._planners.get((salt, secret))
        if cached is None:
            key = hashlib.blake2b(_NAME_DOMAIN + salt, key=secret, digest_size=32).digest()
            cached = self._planners[(salt, secret)] = self.planner_class(key)
        return cached

    def pack_store(self, name: bytes) -> Store:
        store: Store = self.frames.packs_base.sibling(pack_path(name))
        return store

    # -- what this writer knows

    def learn(self, data: Any, token: str, generation: int) -> None:
        """A load decoded the current HEAD ``data`` (``token``): the next save deltas from it."""
        try:
            reader = self.frames.reader(data)
            if not isinstance(reader, DeltaReader):
                return  # a plain frame: no pieces to share (the stale knowledge's packs stay
                # known, so the next full save retires them)
            index = reader.index()
            ids = list(index.pieces)
            sections = []
            for i in range(len(reader.header.sections)):
                marks: list[int] = []
                segs = decode_section(reader.head.section(i), lambda: ids, marks, reader.stored)
                sections.append((segs, marks))
        except StateError:
            self.knowledge = None
            return
        self.knowledge = Knowledge(token, generation, index, plans_of(sections))

    def knows(self, token: object) -> bool:
        """Whether a save expecting ``token`` can share this writer's known pieces."""
        k = self.knowledge
        return k is not None and isinstance(token, str) and token == k.token and not self.force_full

    # -- a save

    def prepare(
        self,
        sections: Sequence[Sequence[Buffer]],
        *,
        generation: int,
        meta: dict[str, Any],
        transforms: Sequence[Transform],
        base_token: object,
        stored: tuple[bytes, int] | None = None,
        unreadable: bool = False,
    ) -> tuple[list[Buffer], DeltaSave]:
        """The HEAD's chunks and the pack to write before it.

        ``base_token``: the token of the HEAD this save replaces (None: unknown); pieces are shared
        only with it, and only if it is the HEAD this writer last saved or loaded. ``stored``:
        the first bytes and size of the stored HEAD as the expectation read them (b"": none).
        No I/O, except on a full save over a HEAD larger than those bytes that this writer
        does not know: ranged reads of its index, so its packs are retired, not leaked.
        ``unreadable``: the HEAD replaced is one this writer could not read (kept aside in
        ``.unreadable``): no pack it or this writer's knowledge references is retired, so
        what could not be read is never destroyed (they stay until deleted by hand)."""
        base = self.knowledge if self.knows(base_token) and not unreadable else None
        now = time.time()
        salt = base.index.salt if base is not None else os.urandom(16)
        planner = self.planner(salt)
        known = base.index.pieces if base is not None else {}
        fresh: dict[bytes, Buffer] = {}
        layout: list[list[Inline | _Buf]] = []
        # The previous plan of a buffer: the one whose first bytes had the same
        # fingerprint (an append or an edit past them), else the one at its place.
        # Grouped once per save (per section it was sections x buffers lookups).
        marks_of: dict[int, dict[int, list[int]]] = {}
        twins: dict[tuple[int, int], list[tuple[memoryview, BufferPlan | None, BufferPlan]]] = {}
        if base is not None:
            for (sec, j), (_, m) in base.plans.items():
                marks_of.setdefault(sec, {}).setdefault(m, []).append(j)
        for s, chunks in enumerate(sections):
            segs: list[Inline | _Buf] = []
            small: list[memoryview] = []
            k = 0
            by_mark = marks_of.get(s, {})
            taken: set[int] = set()
            for chunk in chunks:
                view = byte_view(chunk)
                if view.nbytes < self.threshold:
                    small.append(view)
                    continue
                if small:
                    segs.append(Inline(b"".join(small)))
                    small = []
                mark = int.from_bytes(planner.piece_id(view[:256])[:8], "little")
                previous = None
                if base is not None:
                    found = next((j for j in by_mark.get(mark, ()) if j not in taken), None)
                    if found is None and k not in taken and (s, k) in base.plans:
                        found = k
                    if found is not None:
                        taken.add(found)
                        previous = base.plans[(s, found)][0]
                # An equal buffer met earlier in this save against the same previous plan
                # (the index every series of a pair copies, a price two pairs share) gets
                # its plan: found by size and mark, proved equal by comparing the bytes.
                same = twins.setdefault((mark, view.nbytes), [])
                plan = next((p for v, b, p in same if b == previous and _equal(v, view)), None)
                if plan is None:
                    plan = self._plan(planner, view, previous, known, fresh)
                    same.append((view, previous, plan))
                segs.append(_Buf(plan, view, mark))
                k += 1
            if small:
                segs.append(Inline(b"".join(small)))
            layout.append(segs)

        bufs = [seg for segs in layout for seg in segs if isinstance(seg, _Buf)]
        merge = merge_set([b.plan for b in bufs], base.index, self.max_packs) if base else set()
        moved: set[bytes] = set()  # pieces compaction rewrites (even under a known name)
        for buf in bufs:
            buf.plan = compact_plan(
                buf.plan,
                buf.data,
                Compaction(known, merge, planner, fresh, moved, self.max_extents),
            )

        # What the planner may plan against next: this save's plans, or (if it does not
        # commit) the ones it replaces.
        planner.retain(
            chain((b.plan for b in bufs), (p for p, _ in base.plans.values()) if base else ())
        )
        # The pieces the new HEAD references, in order of first use; the new ones form a pack.
        used: dict[bytes, None] = {}
        for segs in layout:
            for seg in segs:
                if isinstance(seg, _Buf):
                    for e in seg.plan.extents:
                        used.setdefault(e.piece)
        new = [pid for pid in used if pid not in known or pid in moved]
        index = Index(salt)
        pack_name: bytes | None = None
        pack_chunks: list[Buffer] = []
        new_bytes = 0
        if new:
            nonce = os.urandom(16)
            pack_name = hashlib.blake2b(
                nonce + b"".join(new), key=planner.piece_id(b"pack"), digest_size=16
            ).digest()
            payloads = [fresh[pid] for pid in new]
            pack_chunks = self.frames.build(
                [[p] for p in payloads],
                generation=generation,
                meta={"kind": "statevault.pack", "nonce": nonce.hex()},
                transforms=transforms,
            )
            header = _header_of(pack_chunks)
            raw = sum(memoryview(p).nbytes for p in payloads)
            new_bytes = raw
            index.packs[pack_name] = PackRef(
                pack_name, header.digest, header.size, header.header_size, raw
            )
        slot = {pid: j for j, pid in enumerate(new)}
        for pid in used:
            if pid in slot:
                assert pack_name is not None
                index.pieces[pid] = PieceLoc(pack_name, slot[pid], memoryview(fresh[pid]).nbytes)
            else:
                loc = known[pid]
                index.pieces[pid] = loc
                if base is not None and loc.pack not in index.packs:
                    index.packs[loc.pack] = base.index.packs[loc.pack]
        index.retired = self._retired(base, index, generation, now, stored, unreadable=unreadable)

        number = {pid: i for i, pid in enumerate(index.pieces)}
        raw_sections: list[bytes] = []
        plans: dict[tuple[int, int], tuple[BufferPlan, int]] = {}
        for s, segs in enumerate(layout):
            out: list[Segment] = []
            marks: list[int] = []
            for seg in segs:
                if isinstance(seg, _Buf):
                    out.append(seg.plan)
                    plans[(s, len(marks))] = (seg.plan, seg.mark)
                    marks.append(seg.mark)
                else:
                    out.append(seg)
            raw_sections.append(encode_section(out, number, marks))
        manifests: list[list[Buffer]] = [[p] for p in compress_sections(raw_sections)]
        manifests.append([encode_index(index)])
        head = self.frames.build(
            manifests,
            generation=generation,
            meta=meta,
            transforms=transforms,
            version=MANIFEST_VERSION,
        )

        def full() -> list[Buffer]:
            chunks: list[Buffer] = self.frames.build(
                sections, generation=generation, meta=meta, transforms=transforms
            )
            return chunks

        save = DeltaSave(
            generation,
            pack_name,
            pack_chunks,
            index,
            plans,
            full,
            new_bytes=new_bytes,
            reused=base is not None,
        )
        return head, save

    @staticmethod
    def _plan(
        planner: Planner,
        view: memoryview,
        previous: BufferPlan | None,
        known: dict[bytes, PieceLoc],
        fresh: dict[bytes, Buffer],
    ) -> BufferPlan:
        """``view``'s plan (its new pieces added to ``fresh``), held to the planner's contract."""
        plan, pieces = planner.plan(view, previous)
        offered = {pid for pid, _ in pieces}
        if plan.size != view.nbytes or any(
            e.piece not in known and e.piece not in offered for e in plan.extents
        ):  # not the planner's contract: store the buffer as one piece
            pid = planner.piece_id(view)
            plan, pieces = BufferPlan((Extent(pid, 0, view.nbytes),), view.nbytes), [(pid, view)]
        for pid, data in pieces:
            fresh.setdefault(pid, data)
        return plan

    def _retired(
        self,
        base: Knowledge | None,
        index: Index,
        generation: int,
        now: float,
        stored: tuple[bytes, int] | None,
        *,
        unreadable: bool = False,
    ) -> list[Retired]:
        """The new HEAD's retired packs: the old list (less what was deleted), the packs the
        base referenced and this HEAD does not (none over an unreadable HEAD), and this
        writer's orphans."""
        out: dict[bytes, Retired] = {}
        sources: list[Index] = []
        if base is not None:
            sources.append(base.index)
        else:
            # A full save replaces a HEAD this writer does not know (or no longer trusts):
            # everything its packs and ours were is retired, so nothing leaks.
            if self.knowledge is not None:
                sources.append(self.knowledge.index)
            found = self._stored_index(stored)
            if found is not None:
                sources.append(found)
        for src in sources:
            for r in src.retired:
                if r.name not in self.deleted and r.name not in index.packs:
                    out.setdefault(r.name, r)
            for name in () if unreadable else src.packs:
                if name not in index.packs:
                    out.setdefault(name, Retired(name, generation, now))
        for name in self.orphans:
            if name not in index.packs:
                out.setdefault(name, Retired(name, generation, now))
        return list(out.values())

    def _stored_index(self, stored: tuple[bytes, int] | None) -> Index | None:
        """The index of the stored HEAD (None: none stored, not a manifest, unreadable)."""
        try:
            if stored is not None and len(stored[0]) == stored[1]:
                if not stored[1]:
                    return None  # nothing is stored
                reader = self.frames.reader(stored[0])  # the whole HEAD came with the probe
            else:
                reader, _ = self.frames.ranged_reader()
            return reader.index() if isinstance(reader, DeltaReader) else None
        except StateError:
            return None

    # -- after the writes

    def prepare_snapshot(
        self,
        snapshot: Any,
        generation: int,
        base_token: object,
        stored: Any,
        unreadable: bool = False,
    ) -> tuple[list[Buffer], DeltaSave]:
        """``prepare`` for a ``Snapshot``; ``stored``: the commit layer's (token, first bytes,
        size) of the stored HEAD, or None."""
        return self.prepare(
            snapshot.sections,
            generation=generation,
            meta=snapshot.meta,
            transforms=snapshot.transforms,
            base_token=base_token,
            stored=None if stored is None else (stored[1], stored[2]),
            unreadable=unreadable,
        )

    def write(self, save: DeltaSave, write_head: Callable[[], ObjectInfo]) -> ObjectInfo:
        """Write the save's pack, then its HEAD (``write_head``); the HEAD's outcome decides
        whether the pack is what the next save shares or an orphan to retire."""
        self.write_pack(save)
        try:
            info = write_head()
        except BaseException:
            self.failed(save)
            raise
        self.committed(save, info.token)
        return info

    def write_pack(self, save: DeltaSave) -> None:
        """Write the save's pack (before its HEAD); ``StorageError`` as the store raises it."""
        if save.pack is None:
            return
        try:
            self.pack_store(save.pack).write(save.pack_chunks, expect=ANY)
        except BaseException:
            self.orphans.append(save.pack)  # it may have landed all the same
            raise

    def committed(self, save: DeltaSave, token: str) -> None:
        """The HEAD of ``save`` is stored as ``token``: it is what the next save deltas from."""
        self.knowledge = Knowledge(token, save.generation, save.index, save.plans)
        self.orphans = [o for o in self.orphans if o != save.pack]
        self.orphans = [o for o in self.orphans if o not in {r.name for r in save.index.retired}]
        self.deleted.clear()
        self.force_full = False
        self._saves += 1

    def failed(self, save: DeltaSave) -> None:
        """The HEAD of ``save`` was not (knowingly) stored: its pack is an orphan."""
        if save.pack is not None and save.pack not in self.orphans:
            self.orphans.append(save.pack)

    # -- garbage collection

    def collect(self, slots: Callable[[], list[tuple[int, int]]], *, force: bool = False) -> int:
        """Delete retired packs past the grace period that no retained manifest may need.

        ``slots()`` gives (format version, generation) of every readable version slot: a pack
        retired at generation r may still be referenced by a manifest of a generation below r.
        Runs every ``gc_every`` saves (``force``: now). Returns how many packs it deleted;
        never raises for a storage failure (logged: the save stands).
        """
        k = self.knowledge
        if k is None or not k.index.retired:
            return 0
        if not force and self._saves % self.gc_every:
            return 0
        due_before = time.time() - self.grace
        due = [r for r in k.index.retired if r.at <= due_before and r.name not in self.deleted]
        if not due:
            return 0
        try:
            fence = min((g for v, g in slots() if v == MANIFEST_VERSION), default=None)
        except StateError as e:
            log.warning("%s: garbage collection skipped: %s", self.frames.url, e)
            return 0
        deleted = 0
        for r in due:
            if fence is not None and fence < r.generation:
                continue  # a retained manifest older than the retirement may reference it
            try:
                store = self.pack_store(r.name)
                store.delete()
                store.discard_lock()  # a collected pack is never written again
            except (StateError, OSError) as e:
                log.warning("%s: garbage collection stopped: %s", self.frames.url, e)
                break
            self.deleted.add(r.name)
            deleted += 1
        return deleted

    def sweep(self, named: Callable[[], set[bytes] | None], *, force: bool = False) -> int:
        """Delete packs named by nothing for two sweeps ``grace`` apart (see ``sweep``).

        ``named()``: every pack the current HEAD, the readable version slots and their
        retired lists name (None: cannot tell, no sweep). Runs every ``sweep_every`` saves
        (``force``: now); never raises for a storage failure (logged). Returns the count."""
        if not force and (not self._saves or self._saves % self.sweep_every):
            return 0
        try:
            names = named()
            listing = None if names is None else self.frames.packs_base.sibling(PACKS).list_dir()
        except StateError as e:
            log.warning("%s: orphan sweep skipped: %s", self.frames.url, e)
            return 0
        if names is None or listing is None:
            return 0
        keep = {n.hex() for n in names}
        if self.knowledge is not None:  # what this writer is about to share
            keep.update(n.hex() for n in self.knowledge.index.packs)
        deleted = 0
        for name in self._sweep.step(listing, keep, time.monotonic(), self.grace):
            try:
                raw = bytes.fromhex(name)
            except ValueError:
                continue  # not a pack's name: not ours to delete
            try:
                store = self.pack_store(raw)
                store.delete()
                store.discard_lock()
            except (StateError, OSError) as e:
                log.warning("%s: orphan sweep stopped: %s", self.frames.url, e)
                break
            self.deleted.add(raw)
            deleted += 1
        return deleted
