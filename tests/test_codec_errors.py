"""Every failure path of the codec: unsupported values with their path, bad documents, damaged
payloads. Nothing but StateError subclasses may escape, and nothing named by data is imported."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import json
import re
import struct
import sys
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault.codec import Codec, Encoded, TypeRegistry
from statevault.errors import (
    CorruptStateError,
    DecodeError,
    SerializationError,
    StateError,
    TruncatedStateError,
    UnknownTypeTagError,
    UnsupportedFormatError,
    UnsupportedTypeError,
)

from strategies import values

codec = Codec()


class Opaque:
    pass


# --- unsupported values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "path"),
    [
        (Opaque(), "state"),
        ({"pair_states": {"EURUSD-GBPUSD": {"model": Opaque()}}}, None),
        ([1, [2, Opaque()]], "state[1][1]"),
        ((1, (Opaque(),)), "state[1][0]"),
        ({"s": {1, Opaque()}}, None),
        ({1: {"x": Opaque()}}, "state[1]['x']"),
        ({(1, 2): [Opaque()]}, "state[(1, 2)][0]"),
        ({Opaque(): 1}, "state<key 0>"),
        ({"a": 1, "$t": Opaque()}, "state['$t']"),
        (collections.OrderedDict(k=Opaque()), "state['k']"),
        (np.array([1, Opaque()], dtype=object), "state[1]"),
    ],
)
def test_unsupported_type_names_type_and_path(state: Any, path: str | None) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        codec.encode(state)
    err = info.value
    assert err.type_name == f"{__name__}.Opaque"
    assert "register_type" in str(err)
    if path is None and "pair_states" in str(state):
        path = "state['pair_states']['EURUSD-GBPUSD']['model']"
    if path is None:  # set elements have no stable position: the path names the element slot
        assert err.path.startswith("state['s']<element ")
    else:
        assert err.path == path
    assert err.path in str(err)
    assert isinstance(err, SerializationError)
    assert isinstance(err, TypeError)


def test_root_name_is_used_in_paths() -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        codec.dumps({"a": Opaque()}, root="section[3]")
    assert info.value.path == "section[3]['a']"


def test_subclasses_of_builtins_do_not_lose_their_type() -> None:
    point = collections.namedtuple("point", "x y")

    class MyDict(dict[str, Any]):
        pass

    class Level(enum.IntEnum):
        LOW = 1

    @dataclasses.dataclass
    class Unregistered:
        x: int

    class MyStr(str):
        pass

    cases = [
        (point(1, 2), "_asdict"),
        (MyDict(a=1), "subclass of dict"),
        (Level.LOW, "register_type(Level)"),
        (Unregistered(1), "register_type(Unregistered)"),
        (MyStr("x"), "subclass of str"),
        (collections.defaultdict(int), "subclass of dict"),
    ]
    for value, hint in cases:
        with pytest.raises(UnsupportedTypeError) as info:
            codec.encode({"v": value})
        assert hint in str(info.value), str(info.value)
        assert info.value.path == "state['v']"
        assert type(value).__qualname__ in info.value.type_name


def test_structured_dtype_with_object_fields_is_refused_clearly() -> None:
    # Structured dtypes are supported (tests/test_codec_structured.py); object fields are not.
    arr = np.zeros(2, dtype=[("a", "i4"), ("b", "O")])
    with pytest.raises(UnsupportedTypeError, match=r"structured dtype .* object fields") as info:
        codec.encode({"rec": arr})
    assert info.value.path == "state['rec']"
    with pytest.raises(UnsupportedTypeError, match=r"np.asarray\(value\)") as info:
        codec.encode(np.ma.masked_array([1, 2]))
    assert "register_type(" not in str(info.value)


def test_failing_user_encode_is_chained_with_path() -> None:
    reg = TypeRegistry()

    class Boom:
        pass

    def explode(obj: Boom) -> Any:
        raise ValueError("no way")

    reg.register_type(Boom, "Boom", encode=explode, decode=lambda v: Boom())
    with pytest.raises(SerializationError, match="no way") as info:
        Codec(reg).encode({"x": [Boom()]})
    assert isinstance(info.value.__cause__, ValueError)
    assert "state['x'][0]" in str(info.value)

    reg.register_type(Boom, "Boom", encode=lambda o: o, decode=lambda v: Boom())
    with pytest.raises(SerializationError, match="itself"):
        Codec(reg).encode(Boom())


def test_failing_serializer_is_chained() -> None:
    reg = TypeRegistry()

    def bad(obj: Any) -> Any:
        raise KeyError("k")

    reg.register_serializer("bad", bad)
    with pytest.raises(SerializationError, match="serializer 'bad'") as info:
        Codec(reg).encode({"o": Opaque()})
    assert isinstance(info.value.__cause__, KeyError)


# --- documents ----------------------------------------------------------------------------------


def test_unknown_tag_never_imports_or_evaluates() -> None:
    before = set(sys.modules)
    for doc in (
        {"$t": "os.system", "v": "echo hacked"},
        {"$t": "antigravity"},
        {"$t": "builtins.eval", "v": "1+1"},
        {"$t": "np.os.system", "v": "x"},
        {"$t": "pd.read_pickle", "v": "/tmp/x"},
    ):
        with pytest.raises(UnknownTypeTagError) as info:
            codec.decode(Encoded(doc, []))
        assert info.value.tag == doc["$t"]
        payload = json.dumps(doc).encode()
        with pytest.raises(UnknownTypeTagError):
            codec.loads(_payload(payload))
    assert "antigravity" not in sys.modules
    ours = ("numpy", "pandas", "statevault.codec.")  # lazy handlers for the np./pd. prefixes
    assert {m for m in set(sys.modules) - before if not m.startswith(ours)} == set()


def test_unknown_registered_name_says_how_to_register() -> None:
    doc = {"k": [{"$t": "user", "n": "os.system", "v": "rm"}]}
    with pytest.raises(UnknownTypeTagError) as info:
        codec.decode(Encoded(doc, []))
    assert info.value.tag == "os.system"
    assert info.value.path == "state['k'][0]"
    assert "register_type(YourClass, 'os.system'" in str(info.value)


def test_missing_deserializer_says_register_deserializer() -> None:
    reg = TypeRegistry()
    reg.register_serializer("custom", lambda o: {"x": 1} if isinstance(o, Opaque) else o)
    payload = b"".join(Codec(reg).dumps({"a": Opaque()}))
    with pytest.raises(UnknownTypeTagError, match=r"register_deserializer\('custom'") as info:
        Codec(TypeRegistry()).loads(payload)
    assert info.value.path == "state['a']"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"$t": "tuple"}, "state"),
        ({"a": {"$t": "datetime", "v": 5}}, "state['a']"),
        ({"a": [0, {"$t": "datetime", "v": "2024-01-01T00:00:00+01:00"}]}, "state['a'][1]"),
        ({"$t": "datetime", "v": "2024-01-01", "tz": 5}, "state"),
        ({"$t": "datetime", "v": "2024-01-01", "fold": 2}, "state"),
        ({"$t": "dict", "kv": [1]}, "state"),
        ({"$t": "set", "v": [[1]]}, "state"),
        ({"$t": "int", "hex": "12"}, "state"),
        ({"$t": "bytes", "b64": "!!"}, "state"),
        ({"$t": "bytes", "buf": 0}, "state"),
        ({"$t": "complex", "v": [1]}, "state"),
        ({"$t": "timedelta", "v": [10**10, 0, 0]}, "state"),
        ({"$t": "zoneinfo", "key": "../../etc/passwd"}, "state"),
        ({"$t": "zoneinfo", "key": "Nowhere/Nothing"}, "state"),
        ({"$t": "path", "kind": "Evil", "v": "/"}, "state"),
        ({"$t": "decimal", "v": "one"}, "state"),
        ({"$t": "uuid", "v": "zz"}, "state"),
        ({"$t": "ref", "id": 3}, "state"),
        ({"$t": "range", "v": [1, 2]}, "state"),
        ({"x": {"$t": "np.ndarray", "dtype": "<f8", "shape": [2], "buf": 0}}, "state['x']"),
        ({"$t": "np.ndarray", "dtype": "|O", "shape": [2]}, "state"),
        ({"$t": "np.ndarray", "dtype": "|O", "shape": [3], "items": [1]}, "state"),
        ({"$t": "np.ndarray", "dtype": "f8,f8", "shape": [1], "buf": 0}, "state"),
        ({"$t": "np.ndarray", "dtype": {"names": "ab"}, "shape": [1], "buf": 0}, "state"),
        ({"$t": "np.ndarray", "dtype": "not a dtype", "shape": [1], "buf": 0}, "state"),
        ({"$t": "np.ndarray", "dtype": "<f8", "shape": [-1], "buf": 0}, "state"),
        ({"$t": "np.scalar", "dtype": "<i2", "v": 10**9}, "state"),
        ({"$t": "np.scalar", "dtype": "<f8", "v": "x"}, "state"),
        ({"$t": "pd.Timestamp", "v": 1, "unit": "fortnight"}, "state"),
        ({"$t": "pd.Series", "v": [1], "index": None}, "state"),
        ({"$t": "pd.DatetimeIndex", "v": [1]}, "state"),
        ({"$t": "pd.MultiIndex", "levels": [], "codes": [], "names": []}, "state"),
        ({"$t": "pd.Categorical", "codes": 1, "categories": [], "ordered": True}, "state"),
        ({"$t": "pd.StringArray", "v": ["a"], "storage": "python", "na": "??"}, "state"),
        ({"$t": "user"}, "state"),
    ],
)
def test_malformed_documents_raise_decode_error_with_path(doc: Any, path: str) -> None:
    buffers = [memoryview(b"\x00" * 8)] if "buf" in json.dumps(doc) else []
    if doc.get("$t") == "bytes":
        buffers = []
    with pytest.raises(DecodeError) as info:
        codec.decode(Encoded(doc, buffers))
    assert info.value.path == path, str(info.value)
    with pytest.raises(DecodeError):
        codec.loads(_payload(json.dumps(doc).encode(), buffers))


def test_non_json_values_in_doc_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="not JSON") as info:
        codec.decode(Encoded({"a": [Opaque()]}, []))
    assert info.value.path == "state['a'][0]"


def test_failing_user_decode_is_chained() -> None:
    reg = TypeRegistry()

    class Thing:
        pass

    def bad_decode(value: Any) -> Thing:
        raise RuntimeError("cannot rebuild")

    reg.register_type(Thing, "Thing", encode=lambda t: 1, decode=bad_decode)
    c = Codec(reg)
    payload = b"".join(c.dumps({"t": Thing()}))
    with pytest.raises(DecodeError, match="cannot rebuild") as info:
        c.loads(payload)
    assert info.value.path == "state['t']"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_deeply_nested_hostile_document_is_a_decode_error() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(StateError):
        codec.loads(_payload(text.encode()))
    doc: Any = 1
    for _ in range(5000):
        doc = [doc]
    with pytest.raises(DecodeError, match="too deeply"):
        codec.decode(Encoded(doc, []))


# --- payloads -----------------------------------------------------------------------------------


def _payload(doc: bytes, buffers: list[memoryview] | None = None) -> bytes:
    from statevault.codec._payload import pack

    return b"".join(pack(doc, buffers or []))


SAMPLE = {
    "a": np.arange(10.0),
    "b": [1, "two", (3,)],
    "c": b"z" * 700,
    "d": Decimal("1.5"),
}


def test_truncated_payload_at_every_length_is_a_state_error() -> None:
    payload = b"".join(codec.dumps(SAMPLE))
    for cut in range(len(payload)):
        with pytest.raises(StateError):
            codec.loads(payload[:cut])
    with pytest.raises(TruncatedStateError):
        codec.loads(payload[:-1])
    with pytest.raises(TruncatedStateError):
        codec.loads(payload[:10])


def test_payload_header_checks() -> None:
    payload = bytearray(b"".join(codec.dumps(SAMPLE)))
    with pytest.raises(CorruptStateError, match="SVCD"):
        codec.loads(b"XXXX" + payload[4:])
    newer = bytearray(payload)
    newer[4] = 2
    with pytest.raises(UnsupportedFormatError, match="upgrade"):
        codec.loads(newer)
    reserved = bytearray(payload)
    reserved[5] = 1
    with pytest.raises(CorruptStateError):
        codec.loads(reserved)
    with pytest.raises(CorruptStateError, match="after its end"):
        codec.loads(payload + b"\x00")
    moved = bytearray(payload)
    offset, length = struct.unpack_from("<QQ", moved, 16)
    struct.pack_into("<QQ", moved, 16, offset + 64, length)
    with pytest.raises(CorruptStateError, match="offset"):
        codec.loads(moved)
    with pytest.raises(CorruptStateError):
        codec.loads("not bytes")  # type: ignore[arg-type]


def test_damaged_document_bytes_are_corrupt_state() -> None:
    with pytest.raises(CorruptStateError, match="JSON"):
        codec.loads(_payload(b'{"a": [1, 2'))
    with pytest.raises(CorruptStateError, match="UTF-8"):
        codec.loads(_payload(b'"\xff\xfe"'))


def test_non_contiguous_and_typed_views_are_accepted() -> None:
    payload = b"".join(codec.dumps(SAMPLE))
    assert len(payload) % 4 == 0  # ends with a 700-byte buffer at a 64-aligned offset
    assert codec.loads(memoryview(payload).cast("I"))["b"] == [1, "two", (3,)]
    doubled = bytearray(len(payload) * 2)
    doubled[::2] = payload
    assert codec.loads(memoryview(doubled)[::2])["b"] == [1, "two", (3,)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values(max_leaves=6, pandas=False),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10**6),
)
def test_damaged_payloads_raise_only_state_errors(
    value: Any, flips: list[tuple[int, int]], cut: int
) -> None:
    payload = bytearray(b"".join(codec.dumps(value)))
    for position, byte in flips:
        payload[position % len(payload)] = byte
    for data in (payload, bytes(payload[: cut % (len(payload) + 1)])):
        with contextlib.suppress(StateError):
            codec.loads(data)


_OLD_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\\n\u00e9/'),
        lambda kids: (
            st.lists(kids, max_size=4)
            | st.dictionaries(st.text(alphabet='k[]{}"\\', max_size=4), kids, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_the_bracket_scan_sees_what_a_string_aware_regex_sees(value: Any) -> None:
    # check_nesting's structure scan (escapes, then adjacent quotes, removed) against the
    # plain regex over every JSON string it replaced, on documents full of tricky strings.
    from statevault.codec._decoder import _brackets

    for ascii_only in (True, False):
        doc = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
        outside = _OLD_STRING.sub(b"", doc)
        assert _brackets(doc) == bytes(c for c in outside if c in b"[]{}")
