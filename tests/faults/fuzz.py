"""The loader fuzzer's worker: mutate real frames structurally, load each, classify the outcome.

Run as ``python -m faults.fuzz SEED COUNT HYPOTHESIS_EXAMPLES`` (with ``tests/`` on the path)
in a subprocess whose address space the caller limits (RLIMIT_AS): an allocation a forged
frame asks for then fails the run instead of the machine. Prints one JSON summary line.

Mutations reach the parser that must judge them: checksums, and the section bindings of
unencrypted frames, are recomputed (``faults.frames``). The kinds: a header field set to a
hostile JSON value, a meta field, the transform list, the section table, the section-0
document (byte flips, inserted tokens, swapped type tags, huge numbers), the payload's buffer
table, raw stored bytes, the prefix's version. Every ``load()``, ``load_state()`` and
``get_state_info()`` must end in a state or a ``StateError``: anything else (another
exception, RecursionError, a MemoryError anywhere in the cause chain, a hang) is a finding.
A mutation of the header, meta or table only must not change what loads.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from statevault import StateError, StateManager
from statevault.codec import Codec
from statevault.codec._payload import pack, unpack
from statevault.keys import generate_key

from .frames import Frame, split

KEY = generate_key()
HANG_SECONDS = 20

HOSTILE: list[Any] = [
    None,
    True,
    False,
    -1,
    0,
    1,
    2**31,
    2**63,
    2**64 - 1,
    2**64,
    10**400,
    -(10**400),
    1e300,
    -1e300,
    0.5,
    float("nan"),
    float("inf"),
    "",
    "x" * 5000,
    "\ud800",
    [],
    {},
    [1, 2],
    {"name": "zstd"},
    [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]],
]
TAGS = ["tuple", "set", "bytes", "datetime", "ndarray", "decimal", "dict", "user", "hook", "ref"]
TOKENS = ["[", "{", "]", "}", '"$t":', "1e999", "-0", '"', ",", "null", "9" * 500, '"\\ud800"']


KINDS = ["field", "meta", "transforms", "table", "doc", "buffers", "bytes", "version"]


class Hang(Exception):
    pass


def _alarm(*_: Any) -> None:
    raise Hang


def base_states() -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd

    return [
        {"n": 1, "s": "text", "f": 1.5, "l": [1, [2, [3]]], "d": {"k": {"j": None}}},
        {
            "t": (1, "a"),
            "set": {1, 2},
            "b": b"\x00\xff",
            "when": datetime(2024, 3, 4, 13, 2, tzinfo=UTC),
            "dec": Decimal("1.25"),
            "ints": {1: "one", 2: "two"},
        },
        {
            "arr": np.arange(12, dtype="<f8").reshape(3, 4),
            "series": pd.Series([1.0, 2.5], index=["a", "b"]),
            "frame": pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}),
        },
    ]


def base_frames(root: Path) -> list[tuple[bytes, dict[str, Any], str]]:
    out = []
    for i, state in enumerate(base_states()):
        for name, kw in (
            ("plain", {"compression": None}),
            ("zstd", {}),
            ("fernet", {"encryption_key": KEY}),
        ):
            path = root / f"base-{i}-{name}.sv"
            # Self-contained frames: the fuzzer mutates the codec payloads inside sections.
            StateManager(path, keep_versions=0, spool_dir=False, delta=False, **kw).save(state)
            out.append((path.read_bytes(), state, name))
    return out


def _doc_mutation(doc: str, rng: random.Random) -> str:
    kind = rng.randrange(5)
    if not doc:
        return "["
    pos = rng.randrange(len(doc))
    if kind == 0:
        return doc[:pos] + chr(rng.randrange(32, 127)) + doc[pos + 1 :]
    if kind == 1:
        return doc[:pos] + rng.choice(TOKENS) + doc[pos:]
    if kind == 2 and '"$t":"' in doc:
        start = doc.index('"$t":"') + 6
        end = doc.find('"', start)
        return doc[:start] + rng.choice(TAGS) + (doc[end:] if end >= 0 else "")
    if kind == 3:
        return doc[:pos]
    digits = [i for i, c in enumerate(doc) if c.isdigit()]
    if digits:
        p = rng.choice(digits)
        return doc[:p] + rng.choice(["9" * 30, "-1", "1e308", "0.0", "99999999999"]) + doc[p + 1 :]
    return doc + "]"


def mutate(frame: Frame, rng: random.Random, hostile: Any) -> tuple[str, bytes]:
    """One structured mutation of ``frame`` (a fresh copy); returns (kind, bytes)."""
    kind = rng.choice(
        ["field", "meta", "transforms", "table", "doc", "buffers", "bytes", "version"]
    )
    if frame.payloads is None and kind in ("doc", "buffers"):
        kind = "bytes"
    header = frame.header
    if kind == "field":
        key = rng.choice(["generation", "created", "meta", "transforms", "sections", "extra"])
        if rng.random() < 0.1:
            header.pop(key, None)
        else:
            header[key] = hostile
        if key == "sections":
            return kind, frame.assemble(keep_table=True)
        return kind, frame.assemble()
    if kind == "meta":
        meta = dict(header.get("meta", {}))
        meta[rng.choice(["schema_version", "kind", "writer", "pairs", "x"])] = hostile
        header["meta"] = meta
        return kind, frame.assemble()
    if kind == "transforms":
        options: list[Any] = [
            [{"name": "zstd"}],
            [{"name": "zstd", "level": hostile}],
            [{"name": "nope"}],
            [{"name": "fernet"}],
            [{"name": "fernet", "extra": hostile}],
            [{"name": "zstd"}, {"name": "zstd"}],
            [],
            [{"name": str(hostile)}],
            [{"name": "zstd"}] * 40,
        ]
        header["transforms"] = rng.choice(options)
        return kind, frame.assemble()
    if kind == "table":
        table = [list(e) for e in header["sections"]]
        choice = rng.randrange(4)
        if choice == 0 and table:
            table[rng.randrange(len(table))][rng.randrange(2)] = hostile
        elif choice == 1:
            table.append([rng.choice([0, 1, 2**40, 2**62]), 0])
        elif choice == 2 and table:
            table.pop()
        else:
            header["sections"] = hostile
            return kind, frame.assemble(keep_table=True)
        header["sections"] = table
        return kind, frame.assemble(keep_table=True)
    if kind in ("doc", "buffers"):
        assert frame.payloads is not None
        payload = bytearray(frame.payloads[0])
        if kind == "buffers":
            for _ in range(rng.randint(1, 3)):
                payload[rng.randrange(min(len(payload), 64))] = rng.randrange(256)
        else:
            doc, buffers = unpack(bytes(payload))
            text = str(doc, "utf-8", "surrogatepass")
            for _ in range(rng.randint(1, 3)):
                text = _doc_mutation(text, rng)
            payload = bytearray(
                b"".join(bytes(c) for c in pack(text.encode("utf-8", "surrogatepass"), buffers))
            )
        frame.payloads[0] = bytes(payload)
        return kind, frame.assemble()
    if kind == "bytes":
        index = rng.randrange(len(frame.stored))
        stored = bytearray(frame.stored[index])
        if stored:
            for _ in range(rng.randint(1, 4)):
                stored[rng.randrange(len(stored))] ^= 1 << rng.randrange(8)
        frame.stored[index] = bytes(stored)
        return kind, frame.assemble(rebind=False)
    return kind, frame.assemble(version=rng.choice([0, 2, 2**32 - 1]))


def _canonical(codec: Codec, state: Any) -> bytes:
    return b"".join(bytes(c) for c in codec.dumps(state))


def _memory_in_chain(e: BaseException) -> bool:
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def judge(data: bytes, path: Path, original: Any, kind: str, codec: Codec) -> str:
    """Load ``data`` three ways; return "ok", "changed", an error class name, or "BAD ..."."""
    path.write_bytes(data)
    sm = StateManager(path, keep_versions=0, spool_dir=False, encryption_key=KEY, delta=False)
    outcome = "ok"
    signal.alarm(HANG_SECONDS)
    try:
        try:
            state = sm.load()
            if _canonical(codec, state) != _canonical(codec, original):
                outcome = "changed"
                if kind in ("meta", "table", "version"):
                    return f"BAD {kind} mutation changed the state"
        except StateError as e:
            if _memory_in_chain(e):
                return f"BAD over-allocation ({type(e).__name__}: {e})"
            outcome = type(e).__name__
        sm.load_state()
        info = sm.get_state_info()
        if not isinstance(info, dict):
            return "BAD get_state_info"
    except Hang:
        return "BAD hang"
    except RecursionError as e:
        return f"BAD RecursionError: {e}"
    except MemoryError:
        return "BAD MemoryError"
    except Exception as e:
        return f"BAD {type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
    return outcome


def main(argv: list[str]) -> int:
    seed, count, examples = int(argv[0]), int(argv[1]), int(argv[2])
    import logging

    logging.disable(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="statevault-fuzz-"))
    bases = base_frames(root)
    codec = Codec()
    target = root / "fuzzed.sv"
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    findings: list[dict[str, Any]] = []

    def one(base: int, local: random.Random, hostile: Any) -> None:
        data, original, _ = bases[base]
        kind, mutated = mutate(split(data), local, hostile)
        kinds[kind] += 1
        result = judge(mutated, target, original, kind, codec)
        if result.startswith("BAD over-allocation"):
            label = "BAD over-allocation"  # issue 10 item 8: bounded decompression
        elif result.startswith("BAD"):
            label = "BAD"
        else:
            label = result
        outcomes[label] += 1
        if label.startswith("BAD") and sum(f["label"] == label for f in findings) < 10:
            findings.append(
                {"label": label, "kind": kind, "result": result, "frame": mutated[:512].hex()}
            )

    for _ in range(count):
        one(rng.randrange(len(bases)), random.Random(rng.getrandbits(64)), rng.choice(HOSTILE))

    if examples:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=12,
        )

        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            base=st.integers(0, len(bases) - 1),
            seed=st.integers(0, 2**32),
            hostile=json_values,
        )
        def run(base: int, seed: int, hostile: Any) -> None:
            one(base, random.Random(seed), hostile)

        run()

    total = sum(outcomes.values())
    print(
        json.dumps(
            {
                "mutations": total,
                "outcomes": dict(outcomes),
                "kinds": dict(kinds),
                "findings": findings,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
