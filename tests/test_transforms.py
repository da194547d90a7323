"""Byte transforms: the Transform record, registries, zstd and fernet on their own."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.errors import (
    IntegrityError,
    MissingKeyError,
    StateError,
    TransformError,
    UnknownTransformError,
    WrongKeyError,
)
from statevault.keys import Keyring, generate_key
from statevault.transforms import (
    Buffer,
    Transform,
    TransformRegistry,
    default_transforms,
    fernet,
    register_transform,
    zstd,
)

KEY_A = generate_key()
KEY_B = generate_key()


def xor_transform(key: int) -> Transform:
    table = bytes(i ^ key for i in range(256))
    return Transform(
        "xor",
        lambda d: bytes(d).translate(table),
        lambda d: bytes(d).translate(table),
        {"key": key},
    )


def test_transform_repr_hides_callables_and_keys() -> None:
    ring = Keyring([KEY_A])
    t = fernet(ring)
    text = repr(t)
    assert text == f"Transform(name='fernet', params={{'key_id': '{ring.key_ids[0]}'}})"
    assert KEY_A not in text
    assert "function" not in text
    assert "lambda" not in repr(xor_transform(7))
    assert repr(zstd(5)) == "Transform(name='zstd', params={'level': 5})"


def test_transform_validation() -> None:
    def ident(d: Buffer) -> Buffer:
        return d

    with pytest.raises(ValueError, match="name"):
        Transform("", ident, ident)
    with pytest.raises(ValueError, match="name"):
        Transform("has space", ident, ident)
    with pytest.raises(ValueError, match="reserved"):
        Transform("ok", ident, ident, {"name": "x"})
    with pytest.raises(TypeError, match="JSON"):
        Transform("ok", ident, ident, {"f": object()})
    with pytest.raises(TypeError, match="JSON"):
        Transform("ok", ident, ident, {"f": float("nan")})
    t = Transform("ok", ident, ident, {"a": [1, 2]})
    with pytest.raises(TypeError):
        t.params["b"] = 1  # type: ignore[index]


@pytest.mark.parametrize("level", [-5, 1, 3, 19])
def test_zstd_round_trip_and_any_level_decodes(level: int) -> None:
    data = b"price,qty\n" + b"101.25,7\n" * 5000
    packed = zstd(level).encode(data)
    assert len(packed) < len(data) // 10
    for reader_level in (1, 3, 22):
        out = zstd(reader_level).decode(packed)
        assert isinstance(out, bytearray)  # writable, decompressed in place
        assert out == data
    assert zstd(level).decode(memoryview(packed)) == data


def test_zstd_frame_without_content_size_decodes() -> None:
    data = b"abc" * 1000
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    packed = cctx.compress(data)
    assert zstandard.frame_content_size(packed) == -1
    assert bytes(zstd().decode(packed)) == data
    with pytest.raises(TransformError):
        zstd().decode(packed[:-3])


@pytest.mark.parametrize(
    "bad", [b"", b"not zstd at all", zstandard.ZstdCompressor().compress(b"x" * 100)[:-2]]
)
def test_zstd_garbage_is_transform_error(bad: bytes) -> None:
    with pytest.raises(TransformError, match="zstd") as info:
        zstd().decode(bad)
    assert info.value.__cause__ is not None or "bytes" in str(info.value)


def test_zstd_trailing_garbage_is_rejected() -> None:
    packed = zstd().encode(b"hello" * 100)
    with pytest.raises(TransformError):
        zstd().decode(bytes(packed) + b"junk")


def test_zstd_arguments() -> None:
    with pytest.raises(ValueError, match="level"):
        zstd(23)
    with pytest.raises(TypeError):
        zstd(True)
    with pytest.raises(TypeError):
        zstd(3.0)  # type: ignore[arg-type]


def test_zstd_is_safe_across_threads() -> None:
    t = zstd(3)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(30):
                data = bytes([seed, i]) * (1000 + seed * 37 + i)
                assert bytes(t.decode(t.encode(data))) == data
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_zstd_and_fernet_round_trip(data: bytes) -> None:
    ring = Keyring([KEY_A])
    for t in (zstd(), fernet(ring)):
        assert bytes(t.decode(t.encode(data))) == data


def test_fernet_output_is_writable_and_key_id_recorded() -> None:
    ring = Keyring([KEY_A, KEY_B])
    t = fernet(ring)
    assert dict(t.params) == {"key_id": ring.key_ids[0]}
    out = t.decode(t.encode(b"payload"))
    assert isinstance(out, memoryview)
    assert not out.readonly
    assert bytes(out) == b"payload"


def test_default_registry_has_zstd_and_fernet() -> None:
    assert "zstd" in default_transforms
    assert "fernet" in default_transforms
    assert "nope" not in default_transforms
    z = default_transforms.build("zstd", {"level": 7}, None)
    assert dict(z.params) == {"level": 7}
    # A level this build rejects (or none at all) still decodes.
    for params in ({"level": 99}, {"level": "x"}, {}):
        t = default_transforms.build("zstd", params, None)
        assert bytes(t.decode(zstd(19).encode(b"q" * 500))) == b"q" * 500


def test_fernet_without_keyring_is_missing_key() -> None:
    with pytest.raises(MissingKeyError) as info:
        default_transforms.build("fernet", {"key_id": "00000000"}, None)
    assert str(info.value) == (
        "this state is encrypted; pass encryption_key=... or set STATEVAULT_KEY"
    )


def test_fernet_built_from_frame_params_picks_the_key() -> None:
    old = Keyring([KEY_A])
    token = fernet(old).encode(b"secret")
    # Rotated reader: the key id in the params selects the old key.
    rotated = old.rotated(KEY_B)
    t = default_transforms.build("fernet", {"key_id": old.key_ids[0]}, rotated)
    assert bytes(t.decode(token)) == b"secret"
    # Writing with the rebuilt transform uses the reader's first key and says so.
    assert dict(t.params) == {"key_id": rotated.key_ids[0]}
    # Not rotated: the key id is unknown -> WrongKeyError naming it.
    t = default_transforms.build("fernet", {"key_id": old.key_ids[0]}, Keyring([KEY_B]))
    with pytest.raises(WrongKeyError, match=old.key_ids[0]):
        t.decode(token)
    # No key id stored: every key is tried.
    t = default_transforms.build("fernet", {}, rotated)
    assert bytes(t.decode(token)) == b"secret"
    t = default_transforms.build("fernet", {}, Keyring([KEY_B]))
    with pytest.raises(WrongKeyError):
        t.decode(token)


def test_fernet_altered_ciphertext_with_right_key_is_integrity_error() -> None:
    ring = Keyring([KEY_A])
    token = bytearray(fernet(ring).encode(b"secret" * 20))
    token[30] ^= 0x10
    t = default_transforms.build("fernet", {"key_id": ring.key_ids[0]}, ring)
    with pytest.raises(IntegrityError, match="altered"):
        t.decode(token)


def test_unknown_transform_says_how_to_register() -> None:
    registry = TransformRegistry()
    with pytest.raises(UnknownTransformError) as info:
        registry.build("rot13", {}, None)
    assert "'rot13'" in str(info.value)
    assert "register_transform" in str(info.value)


def test_register_factory_decorator_and_last_wins() -> None:
    registry = TransformRegistry()

    @registry.register("xor")
    def make_xor(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        return xor_transform(int(params["key"]))

    assert make_xor({"key": 1}, None).name == "xor"  # the decorator returns the factory
    t = registry.build("xor", {"key": 42}, None)
    assert bytes(t.decode(t.encode(b"abc"))) == b"abc"
    assert bytes(t.encode(b"\x00")) == b"*"

    registry.register("xor", lambda params, keyring: xor_transform(5))
    assert bytes(registry.build("xor", {"key": 42}, None).encode(b"\x00")) == b"\x05"


def test_register_fixed_transform_instance() -> None:
    registry = TransformRegistry()
    fixed = xor_transform(9)
    registry.register("xor", fixed)
    assert registry.build("xor", {"key": 9}, None) is fixed
    with pytest.raises(TransformError, match="fixed Transform"):
        registry.build("xor", {"key": 10}, None)
    with pytest.raises(ValueError, match="under the name"):
        registry.register("other", fixed)
    with pytest.raises(TypeError):
        registry.register("xor", 42)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="name"):
        registry.register("bad name", fixed)


def test_child_registries_inherit_and_override_locally() -> None:
    parent = TransformRegistry()
    parent.register("xor", lambda p, k: xor_transform(1))
    child = parent.child()
    assert "xor" in child
    child.register("xor", lambda p, k: xor_transform(2))
    assert bytes(child.build("xor", {}, None).encode(b"\x00")) == b"\x02"
    assert bytes(parent.build("xor", {}, None).encode(b"\x00")) == b"\x01"
    # The default registry is untouched by a child of it.
    mine = default_transforms.child()
    mine.register("zstd", lambda p, k: xor_transform(3))
    assert default_transforms.build("zstd", {"level": 3}, None).name == "zstd"


def test_register_transform_is_the_default_registry() -> None:
    @register_transform("test-transforms-xor")
    def make(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        t = xor_transform(3)
        return Transform("test-transforms-xor", t.encode, t.decode)

    assert "test-transforms-xor" in default_transforms
    assert default_transforms.child().build("test-transforms-xor", {}, None).name == (
        "test-transforms-xor"
    )


def test_failing_factories_become_transform_errors() -> None:
    registry = TransformRegistry()

    def broken(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        raise KeyError("level")

    registry.register("broken", broken)
    with pytest.raises(TransformError, match="'broken' failed: KeyError") as info:
        registry.build("broken", {}, None)
    assert isinstance(info.value.__cause__, KeyError)

    registry.register("liar", lambda p, k: zstd())
    with pytest.raises(TransformError, match="did not return one"):
        registry.build("liar", {}, None)

    def needs_key(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        raise MissingKeyError("need a key")

    registry.register("needs-key", needs_key)
    with pytest.raises(MissingKeyError):
        registry.build("needs-key", {}, None)
    assert issubclass(TransformError, StateError)
