"""Which bytes of a buffer are already stored: a buffer as extents of immutable pieces.

Pure and I/O-free: given a buffer's bytes and the plan this writer last saved or loaded for it,
``Planner.plan`` returns the buffer's new plan and the pieces that must be written. A plan only
names pieces by their keyed hash, so a planner never needs the old bytes.

Interface contract (shared by the delta frame store):
- ``Extent(piece, offset, length)``: ``length`` bytes of piece ``piece`` from ``offset``.
- ``BufferPlan.extents`` concatenated give the buffer's bytes exactly.
- ``Planner.plan(data, previous)`` -> ``(plan, new_pieces)``, ``new_pieces`` a list of
  ``(piece_id, bytes-like)`` in the order of first use; every extent's piece is either in
  ``previous``'s extents or in ``new_pieces``. The bytes-like values are views of ``data``:
  write them before ``data`` changes.
- Piece ids are ``Planner.piece_id(bytes)``: keyed BLAKE3 (the key derived from the planner's
  with BLAKE3's KDF mode), 16 bytes.

How (all O(change) in new bytes, each save hashes the whole buffer once to verify it):
- Prefix alignment: the previous extents are re-found at the start of ``data`` (append,
  identical) or shifted left by the dropped bytes (rolling window; the shift comes from an
  in-memory hint, the first ``head_size`` bytes of the first extents). Every reused extent is
  verified by the keyed hash of exactly the bytes it stands for; a fingerprint only proposes.
- Suffix alignment at the end of ``data``, then content-defined chunking (FastCDC) of the gap in
  between, so an edit rewrites at most the chunks it touches (each <= ``max_size``), and chunks
  equal to a previous piece are found by id. A gap at the end is chunked from the last cut.
- Appended bytes form the open (last) chunk: what the last cut left, then pieces that merge
  like a counter (the last two while the earlier is at most twice the later), so after any
  number of appends the open chunk has about log2(open bytes / append size) + 2 extents and
  never more than ``tail_limit`` + 1, and each byte is rewritten O(log) times: amortized
  O(change); the worst single save writes about ``max_size`` plus the new bytes. FastCDC looks
  for a cut once per ``min_size // 4`` appended bytes; when it finds one the closed chunk is
  written as one piece (once per byte), so stored pieces stay at content-defined boundaries
  and a fresh planner (no hints: a manager that just loaded) re-finds them after any shift, at
  the cost of a bounded region (the first and the open chunk, each <= ``max_size``).
- Fragmentation bound: a plan has at most ``size // min_size + tail_limit + 4`` extents; past
  that (many edits) the buffer is re-chunked with FastCDC, rewriting only chunks not already
  stored.

Hints (the planner's memory, never persisted): per extent the keyed hash of its bytes from an
anchor, the first ``head_size`` bytes from there, and whether it ends at a cut. They are only an
optimisation: without them (``previous`` rebuilt from a manifest) plans stay correct.

Measured choices (bench/delta_planner.py, bench/README.md): ``pyfastcdc`` over ``fastcdc``:
2.2-3.2 GB/s against 1.6-2.1 GB/s here; 0.3.1 (2026-10) has wheels for CPython 3.11 and 3.13
(checked) on Linux x86_64/aarch64, macOS arm64 and Windows, where fastcdc 1.7.0 (2024-06) has
cp311/cp312 only (3.13 resolves to its pure-Python 1.1.0); typed (``py.typed``); one
dependency (``typing_extensions``) against four for fastcdc's CLI; both MIT.
Keyed BLAKE3 (``blake3``, wheels for the same platforms, CC0/Apache-2.0, typed) over hashlib:
each save hashes every buffer it reuses, so the hash is most of a tick's planning time. Per
call here: 40 KB 13 us (HMAC-SHA256 with SHA extensions 27 us, keyed BLAKE2b 55 us), 400 KB
100 us (266 us, 560 us), 8 bytes 2.1 us (3.4 us).

Equal buffers planned against the same previous plan (every series of a pair has its own
copy of one index; two pairs share a price) are planned once: within one save the delta store
finds them by comparing their bytes (cheaper than hashing) and reuses the first one's plan;
across saves a buffer of its previous plan's size (possibly unchanged) is looked up under the
keyed hash of all its bytes (32 bytes) and the previous plan, so a buffer changed anywhere,
in place or not, is planned afresh. A buffer whose size changed skips that lookup (its
alignment hashes it anyway). On the bench's M state 300 buffers are about 60 distinct ones.

Size: over 400 lines on purpose: alignment, the open chunk's merging and the hints are one
algorithm whose invariants (every reused extent verified by a keyed hash) are checked together.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from blake3 import blake3
from pyfastcdc import FastCDC

from ..transforms import Buffer

__all__ = ["BufferPlan", "Extent", "Planner"]

ID_SIZE = 16
_KDF_CONTEXT = "statevault 2026-12 delta piece ids"
# Buffers up to this size are one piece: a reference would cost about what the bytes do.
_TINY = 64
# Bytes of ``data``'s start looked up in a head hint to find a rolling window's shift.
_PROBE = 32
_MAX_SHIFTS = 4
# The open chunk's last two pieces merge while the earlier is at most this many times the
# later. Measured (8-byte appends to 40 KB), new bytes and extents a tick: ratio 1: 44 B, 7.4;
# 2: 60 B, 6.3; 3: 78 B, 5.7; 4: 88 B, 5.3. With ~22 manifest bytes an extent the sums are
# within 5 %; 2 keeps bytes low with fewer extents (less planning time too).
_TAIL_RATIO = 2
# Plans remembered by the keyed hash of their buffer's bytes (32 bytes: a collision would be
# another buffer's plan, so the full digest, not a piece id's 16 bytes), and how many.
_SAME_SIZE = 32
_SAME_LIMIT = 4096
# ``retain`` looks at the live plans once the planner's memory (hints + remembered plans) is
# more than twice what the last look kept, plus this many entries.
_RETAIN_SLACK = 1024


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes of the piece named ``piece``, starting ``offset`` bytes into it."""

    piece: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class BufferPlan:
    """One buffer as extents of pieces, and its size (the sum of the extents' lengths)."""

    extents: tuple[Extent, ...]
    size: int


@dataclass(slots=True)
class _Hint:
    """What the planner knows of an extent: keyed hash of piece[start:end], its first bytes."""

    start: int
    digest: bytes
    head: bytes
    cut: bool


class Planner:
    """Plans buffers into content-defined pieces; see the module docstring for the algorithm.

    ``min_size``/``avg_size``/``max_size`` are FastCDC's (chunks of at least ``min_size`` and
    at most ``max_size`` bytes, except where a buffer ends); an edit rewrites at most the chunks
    it touches. ``tail_limit`` bounds the open chunk's extents, ``head_size`` the largest drop a
    rolling window may make in one save and still be referenced, ``hint_limit`` the number of
    remembered hints (least recently used forgotten first). Not thread-safe: one per writer.
    """

    def __init__(
        self,
        key: bytes,
        *,
        min_size: int = 16 * 1024,
        avg_size: int = 32 * 1024,
        max_size: int = 256 * 1024,
        tail_limit: int = 16,
        head_size: int = 2048,
        hint_limit: int = 1 << 16,
    ) -> None:
        # FastCDC's ranges (pyfastcdc refuses others)
        if not (
            64 <= min_size <= avg_size <= max_size
            and min_size <= 1 << 20
            and 256 <= avg_size <= 1 << 22
            and 1024 <= max_size <= 1 << 24
        ):
            raise ValueError(
                "chunk sizes must satisfy min_size <= avg_size <= max_size, min_size in "
                "[64, 1 MiB], avg_size in [256, 4 MiB], max_size in [1 KiB, 16 MiB]"
            )
        if tail_limit < 1 or head_size < _PROBE or hint_limit < 1:
            raise ValueError(f"tail_limit >= 1, head_size >= {_PROBE}, hint_limit >= 1")
        self._key = key
        # BLAKE3's keyed mode takes 32 bytes: derived from any key with its KDF mode.
        self._keyed = blake3(key=blake3(key, derive_key_context=_KDF_CONTEXT).digest())
        self._cdc = FastCDC(avg_size, min_size=min_size, max_size=max_size)
        self._min, self._max = min_size, max_size
        self._tail_limit, self._head_size, self._hint_limit = tail_limit, head_size, hint_limit
        # keyed by (piece, end): what verifies any extent of that piece ending there
        self._hints: dict[tuple[bytes, int], _Hint] = {}
        # (keyed hash of a whole buffer, its previous plan) -> its plan, new pieces' spans
        self._same: dict[
            tuple[bytes, BufferPlan | None], tuple[BufferPlan, list[tuple[bytes, int, int]]]
        ] = {}
        self._kept = 0  # entries the last ``retain`` kept

    def retain(self, plans: Iterable[BufferPlan]) -> None:
        """Forget the hints and remembered plans that no plan in ``plans`` can use again.

        The caller passes every plan it may plan against next (those it last saved or
        loaded, and those it is saving). Why: the planner's memory is objects Python's cyclic
        collector tracks, and left to grow to ``hint_limit`` it made every full collection of a
        long-running bot cost twice as much (bench/README.md, "Delta saves over 1,000
        ticks"). Amortized: ``plans`` is only iterated once the memory has grown to twice
        what the last pruning kept, plus a slack, so most calls cost nothing. Forgetting is
        always safe: without a hint an extent is verified by its piece id, and plans stay
        correct (see the module docstring).
        """
        if len(self._hints) + len(self._same) <= 2 * self._kept + _RETAIN_SLACK:
            return
        live = set(plans)
        keys = {(e.piece, e.offset + e.length) for plan in live for e in plan.extents}
        self._hints = {k: h for k, h in self._hints.items() if k in keys}
        # An entry can hit again only when a buffer is planned against its previous plan.
        self._same = {k: v for k, v in self._same.items() if k[1] in live}
        self._kept = len(self._hints) + len(self._same)

    def piece_id(self, data: Buffer) -> bytes:
        """The piece's name: keyed BLAKE3 of its bytes, 16 bytes (reveals nothing)."""
        h = self._keyed.copy()
        h.update(data)
        return h.digest(ID_SIZE)

    def _mac2(self, head: Buffer, body: Buffer) -> bytes:
        """``piece_id(head + body)`` without joining them."""
        h = self._keyed.copy()
        h.update(head)
        h.update(body)
        return h.digest(ID_SIZE)

    def plan(
        self, data: Buffer, previous: BufferPlan | None
    ) -> tuple[BufferPlan, list[tuple[bytes, Buffer]]]:
        """The plan of ``data`` and the pieces to write (those ``previous`` does not name)."""
        view = memoryview(data).cast("B")
        n = len(view)
        same: tuple[bytes, BufferPlan | None] | None = None
        if n > _TINY and (previous is None or previous.size == n):
            # Equal buffers (the index every series of a pair shares, a price two pairs
            # share) planned against the same previous plan get the same plan: looked up
            # by the keyed hash of all their bytes, so a buffer changed in place anywhere
            # has another key. Costs one hash of the buffer; saves the alignment. Not
            # looked for when the size changed (an append, a roll that grew): such a buffer
            # is not the unchanged one, and the store finds a save's equal buffers by
            # comparing bytes, so the hash would be a second pass over it for nothing.
            h = self._keyed.copy()
            h.update(view)
            same = (h.digest(_SAME_SIZE), previous)
            hit = self._same.get(same)
            if hit is not None:
                return hit[0], [(pid, view[a:b]) for pid, a, b in hit[1]]
        old = previous.extents if previous is not None else ()
        run = _Run(self, view, {e.piece for e in old})
        if n and (not old or n <= _TINY):
            run.chunk(0, n, open_end=True)
        elif n:
            self._align(run, old)
        if len(run.extents) > n // self._min + self._tail_limit + 4:
            run = _Run(self, view, run.known)  # too fragmented: re-chunk, keep what matches
            run.chunk(0, n, open_end=True)
        plan, fresh = run.finish()
        if same is not None:
            if len(self._same) >= _SAME_LIMIT:
                self._same.clear()
            new_ids = {pid for pid, _ in fresh}
            at, spans = 0, list[tuple[bytes, int, int]]()
            for e in plan.extents:
                if e.offset == 0 and e.piece in new_ids:
                    new_ids.discard(e.piece)
                    spans.append((e.piece, at, at + e.length))
                at += e.length
            if len(spans) == len(fresh):  # every new piece is a whole extent (always so)
                self._same[same] = (plan, spans)
        return plan, fresh

    # -- alignment -------------------------------------------------------------------------

    def _verified(self, e: Extent, drop: int, region: memoryview) -> bool | None:
        """Whether ``region`` is exactly ``e``'s bytes without the first ``drop`` (keyed hash):
        None if not, else whether the extent ends at a cut (from its hint)."""
        hint = self._hints.get((e.piece, e.offset + e.length))
        if hint is not None:
            skip = e.offset + drop - hint.start
            if skip == 0 and self.piece_id(region) == hint.digest:
                return hint.cut
            if 0 < skip <= len(hint.head) and self._mac2(hint.head[:skip], region) == hint.digest:
                return hint.cut
        if drop == 0 and e.offset == 0 and self.piece_id(region) == e.piece:
            return False
        return None

    def _shifts(
        self, view: memoryview, old: tuple[Extent, ...], starts: list[int]
    ) -> Iterator[int]:
        """Candidate numbers of bytes dropped at the start: 0, then where hints place data[:32]."""
        probe = bytes(view[:_PROBE])
        first = self._hints.get((old[0].piece, old[0].offset + old[0].length))
        base = old[0].offset - first.start if first is not None else -1
        if first is None or not 0 <= base <= len(first.head) - _PROBE:
            yield 0  # no head to rule it out
        elif first.head[base : base + _PROBE] == probe:
            yield 0  # the head agrees: worth hashing
        seen = {0}
        for j in range(min(2, len(old))):
            e = old[j]
            hint = self._hints.get((e.piece, e.offset + e.length))
            if hint is None or len(probe) < _PROBE:
                continue
            base = e.offset - hint.start  # where e starts inside the hint's head
            at = hint.head.find(probe, max(base, 0))
            tries = 0
            while at >= 0 and tries < _MAX_SHIFTS:
                drop = starts[j] + at - base
                if 0 < drop < starts[-1] and drop not in seen:
                    seen.add(drop)
                    tries += 1
                    yield drop
                at = hint.head.find(probe, at + 1)

    def _align(self, run: _Run, old: tuple[Extent, ...]) -> None:
        view, n = run.view, len(run.view)
        starts = [0]
        for e in old:
            starts.append(starts[-1] + e.length)
        best: tuple[list[tuple[Extent, bool]], int, int] = ([], 0, 0)
        for drop in self._shifts(view, old, starts):
            got = self._prefix(view, old, starts, drop)
            if got[1] > best[1] or (got[2] == len(old) and best[2] < len(old)):
                best = got
            if got[2] == len(old):
                break
        prefix, q, i = best
        for e, cut in prefix:
            run.add(e, cut)
        suffix: list[tuple[Extent, bool]] = []
        r = n
        for e in reversed(old[i:]):
            if r - e.length < q:
                break
            ends_cut = self._verified(e, 0, view[r - e.length : r])
            if ends_cut is None:
                break
            suffix.append((e, ends_cut))
            r -= e.length
        if r == n:
            self._tail(run, q)
            return
        run.chunk(q, r, open_end=False)
        for e, cut in reversed(suffix):
            run.add(e, cut)

    def _prefix(
        self, view: memoryview, old: tuple[Extent, ...], starts: list[int], drop: int
    ) -> tuple[list[tuple[Extent, bool]], int, int]:
        """Old extents (and cut flags) re-found from data's start when ``drop`` bytes are gone."""
        j = bisect_right(starts, drop) - 1
        out: list[tuple[Extent, bool]] = []
        q, i, n = 0, j, len(view)
        while i < len(old):
            e = old[i]
            d = drop - starts[j] if i == j else 0
            length = e.length - d
            cut = self._verified(e, d, view[q : q + length]) if q + length <= n else None
            if cut is None:
                break
            out.append((Extent(e.piece, e.offset + d, length) if d else e, cut))
            q += length
            i += 1
        return out, q, i

    def _tail(self, run: _Run, q: int) -> None:
        """Bytes from ``q`` on are new: chunk them with the open chunk, then merge the tail."""
        view, n = run.view, len(run.view)
        if q == n:
            return
        s, k = q, len(run.extents)
        while k > 0:
            e = run.extents[k - 1]
            if run.cuts[k - 1]:  # a content-defined cut ends it: the open chunk is after
                break
            if q - s + e.length > self._max or len(run.extents) - k > self._tail_limit:
                break
            s -= e.length
            k -= 1
        open_segs = list(zip(run.starts[k:], run.extents[k:], run.cuts[k:], strict=True))
        run.truncate(k)
        grain = max(self._min // 4, 1)
        if n - s < self._min or ((n - s) // grain == (q - s) // grain and n - s < self._max):
            # No cut possible yet, or none a grain ago: FastCDC's first cut depends only on
            # the bytes from s, so looking once a grain finds the same cut, a bit later.
            cuts: list[int] = []
        else:
            cuts = [s + c.offset + c.length for c in self._cdc.cut_buf(view[s:n])][:-1]
            if n - (cuts[-1] if cuts else s) >= self._max:
                cuts.append(n)  # a chunk of max_size is closed even at the end
        a = s
        for b in cuts:  # closed chunks: an old extent if one is exactly the chunk
            same = [e for p, e, _ in open_segs if p == a and e.length == b - a]
            if same:
                run.add(same[0], cut=True)
            else:
                run.new(a, b, cut=True)
            a = b
        tail_from = len(run.extents)
        for p, seg, cut in open_segs:
            end = p + seg.length
            if end <= a:
                continue
            if p < a:  # the open chunk starts inside this extent: reference its rest
                run.add(Extent(seg.piece, seg.offset + (a - p), end - a), cut=False)
            else:
                run.add(seg, cut)
        if max(a, q) < n:
            run.new(max(a, q), n, cut=False)
        # The open chunk's first piece (what the last cut left) is not merged into: it is
        # rewritten once, when the chunk closes, unless the count passes tail_limit + 1.
        while len(run.extents) - tail_from > self._tail_limit + 1 or (
            len(run.extents) - tail_from >= 3
            and run.extents[-2].length <= _TAIL_RATIO * run.extents[-1].length
        ):
            run.truncate(len(run.extents) - 2)
            run.new(run.end, n, cut=False)


class _Run:
    """The plan being built: extents in order with their positions, and the new pieces' bytes."""

    def __init__(self, planner: Planner, view: memoryview, known: set[bytes]) -> None:
        self.planner, self.view, self.known = planner, view, known
        self.extents: list[Extent] = []
        self.starts: list[int] = []
        self.cuts: list[bool] = []
        self.created: dict[bytes, memoryview] = {}
        self.end = 0

    def add(self, e: Extent, cut: bool) -> None:
        self.extents.append(e)
        self.starts.append(self.end)
        self.end += e.length
        self.cuts.append(cut)

    def truncate(self, k: int) -> None:
        """Forget the extents from the ``k``-th on."""
        if k < len(self.extents):
            self.end = self.starts[k]
            del self.extents[k:], self.starts[k:], self.cuts[k:]

    def new(self, a: int, b: int, cut: bool) -> None:
        """Bytes ``view[a:b]`` as one piece (new unless already known)."""
        body = self.view[a:b]
        pid = self.planner.piece_id(body)
        if pid not in self.known:
            self.created.setdefault(pid, body)
        self.add(Extent(pid, 0, b - a), cut)

    def chunk(self, a: int, b: int, open_end: bool) -> None:
        """``view[a:b]`` cut by FastCDC; the last chunk is open (no cut) if ``open_end``."""
        for c in self.planner._cdc.cut_buf(self.view[a:b]):
            end = a + c.offset + c.length
            self.new(a + c.offset, end, cut=not open_end or end < b)

    def finish(self) -> tuple[BufferPlan, list[tuple[bytes, Buffer]]]:
        p, view, created = self.planner, self.view, self.created
        hints, head_size = p._hints, p._head_size
        fresh: list[tuple[bytes, Buffer]] = []
        for i, e in enumerate(self.extents):
            if created:
                body = created.pop(e.piece, None)
                if body is not None:
                    fresh.append((e.piece, body))
            key = (e.piece, e.offset + e.length)
            hint = hints.pop(key, None)  # popped and put back: the newest hints are kept
            cut = self.cuts[i]
            if hint is not None:
                hint.cut = cut
            elif e.offset == 0:  # verified by its piece id or just written: the whole piece
                hint = _Hint(0, e.piece, b"", cut)
            else:
                start = self.starts[i]
                hint = _Hint(e.offset, p.piece_id(view[start : start + e.length]), b"", cut)
            skip = e.offset - hint.start  # where the extent starts in the hint's head
            room = len(hint.head) - skip  # head bytes left for later drops
            if skip < 0 or room < 0 or (i < 2 and room < min(head_size // 2, e.length)):
                # Re-anchor at this extent (its bytes are verified); the first two extents
                # carry their first bytes, to find and verify a rolling window's drop.
                start = self.starts[i]
                body = view[start : start + e.length]
                if skip:
                    hint.digest = p.piece_id(body)
                    hint.start = e.offset
                hint.head = bytes(body[:head_size]) if i < 2 else b""
            hints[key] = hint
        while len(hints) > p._hint_limit:
            del hints[next(iter(hints))]
        return BufferPlan(tuple(self.extents), self.end), fresh
