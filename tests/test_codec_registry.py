"""Type registries: per-instance vs default, decorator forms, last registration wins, the
spec's name-based serializer/deserializer hooks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest

import statevault.codec as codec_module
from statevault.codec import Codec, TypeRegistry, default_registry, register_type
from statevault.errors import UnknownTypeTagError, UnsupportedTypeError

from strategies import assert_same


def round_trip(codec: Codec, value: Any) -> Any:
    return codec.loads(b"".join(codec.dumps(value)))


class Position:
    def __init__(self, symbol: str, qty: float, opened: dt.datetime) -> None:
        self.symbol, self.qty, self.opened = symbol, qty, opened

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "qty": self.qty, "opened": self.opened}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Position:
        return cls(d["symbol"], d["qty"], d["opened"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Position) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def test_call_form_with_nested_codec_types() -> None:
    reg = TypeRegistry()
    result = reg.register_type(
        Position, "Position", encode=Position.to_dict, decode=Position.from_dict
    )
    assert result is Position
    pos = Position("EURUSD", 1.5, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    codec = Codec(reg)
    out = round_trip(codec, {"active_positions": {"EURUSD": pos}})
    got = out["active_positions"]["EURUSD"]
    assert type(got) is Position
    assert got == pos
    assert got.opened.tzinfo is dt.UTC
    assert codec.encode(pos).doc["n"] == "Position"


def test_decorator_forms() -> None:
    reg = TypeRegistry()

    @reg.register_type
    @dataclasses.dataclass
    class Fill:
        price: Decimal
        when: dt.date
        tags: set[str] = dataclasses.field(default_factory=set)
        seen: int = dataclasses.field(default=0, init=False)

    @reg.register_type(name="Side")
    class Side(enum.Enum):
        BUY = "b"
        SELL = "s"

    @reg.register_type("Perm")
    class Perm(enum.IntFlag):
        R = 4
        W = 2

    @reg.register_type(
        name="Money",
        encode=lambda m: str(m.amount),
        decode=lambda s: Money(s),  # noqa: PLW0108 (Money is bound only after decoration)
    )
    class Money:
        def __init__(self, amount: str) -> None:
            self.amount = Decimal(amount)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Money) and other.amount == self.amount

        __hash__ = None  # type: ignore[assignment]

    fill = Fill(Decimal("1.10"), dt.date(2024, 5, 1), {"a"})
    fill.seen = 3
    value = [fill, Side.SELL, Perm.R | Perm.W, Money("2.50")]
    codec = Codec(reg)
    out = round_trip(codec, value)
    assert_same(value[:3], out[:3])
    assert out[3] == Money("2.50")
    assert out[0].seen == 3
    assert str(out[0].price) == "1.10"
    assert codec.encode(Side.BUY).doc == {"$t": "user", "n": "Side", "v": "BUY"}
    assert codec.encode(fill).doc["n"] == "test_decorator_forms.<locals>.Fill"


def test_per_instance_registry_does_not_touch_default_and_child_sees_parent() -> None:
    class Local:
        pass

    own = TypeRegistry()
    own.register_type(Local, "Local", encode=lambda o: 0, decode=lambda v: Local())
    assert type(round_trip(Codec(own), Local())) is Local
    with pytest.raises(UnsupportedTypeError):
        Codec().encode(Local())

    child = default_registry.child()
    assert child.parent is default_registry
    # strategies registered Color/Point on the default registry: the child sees them
    from strategies import Color

    assert round_trip(Codec(child), Color.RED) is Color.RED

    child.register_type(Local, "Local", encode=lambda o: 1, decode=lambda v: "child decode")
    assert round_trip(Codec(child), Local()) == "child decode"
    with pytest.raises(UnsupportedTypeError):
        Codec(default_registry).encode(Local())


def test_child_overrides_parent_and_last_registration_wins() -> None:
    class Thing:
        pass

    parent = TypeRegistry()
    parent.register_type(Thing, "Thing", encode=lambda t: "p", decode=lambda v: ("parent", v))
    child = parent.child()
    child.register_type(Thing, "Thing", encode=lambda t: "c", decode=lambda v: ("child", v))
    assert round_trip(Codec(child), Thing()) == ("child", "c")
    assert round_trip(Codec(parent), Thing()) == ("parent", "p")
    parent.register_type(Thing, "Thing", encode=lambda t: "p2", decode=lambda v: ("p2", v))
    assert round_trip(Codec(parent), Thing()) == ("p2", "p2")


def test_registry_changes_after_codec_creation_are_seen() -> None:
    class Late:
        pass

    reg = TypeRegistry()
    codec = Codec(reg)
    with pytest.raises(UnsupportedTypeError):
        codec.encode(Late())
    reg.register_type(Late, "Late", encode=lambda o: None, decode=lambda v: Late())
    assert type(round_trip(codec, Late())) is Late


def test_renamed_type_still_loads_old_name_and_name_takeover_drops_old_class() -> None:
    class Old:
        pass

    class New:
        pass

    reg = TypeRegistry()
    reg.register_type(Old, "v1", encode=lambda o: 1, decode=lambda v: Old())
    old_payload = b"".join(Codec(reg).dumps(Old()))
    reg.register_type(Old, "v2", encode=lambda o: 2, decode=lambda v: "v2 decode")
    assert type(Codec(reg).loads(old_payload)) is Old  # old files still load
    assert Codec(reg).encode(Old()).doc["n"] == "v2"

    reg.register_type(New, "v2", encode=lambda o: 3, decode=lambda v: New())
    assert type(round_trip(Codec(reg), New())) is New
    with pytest.raises(UnsupportedTypeError):  # "v2" now means New: Old has no handler left
        Codec(reg).encode(Old())


def test_user_registration_overrides_builtin_and_builtin_data_still_loads() -> None:
    builtin_payload = b"".join(Codec().dumps(Decimal("1.5")))
    reg = TypeRegistry()
    reg.register_type(Decimal, "MyDecimal", encode=float, decode=lambda f: Decimal(repr(f)))
    codec = Codec(reg)
    assert codec.encode(Decimal("1.5")).doc == {"$t": "user", "n": "MyDecimal", "v": 1.5}
    assert codec.loads(builtin_payload) == Decimal("1.5")

    reg.register_type(list, "Reversed", encode=tuple, decode=lambda t: list(reversed(t)))
    assert round_trip(codec, [1, "a", [2, 3]]) == [[3, 2], "a", 1]


def test_registration_errors() -> None:
    reg = TypeRegistry()

    class Plain:
        pass

    with pytest.raises(UnsupportedTypeError, match="encode= and decode="):
        reg.register_type(Plain)
    with pytest.raises(UnsupportedTypeError, match="both"):
        reg.register_type(Plain, "P", encode=lambda o: 1)
    with pytest.raises(UnsupportedTypeError, match="class"):
        reg.register_type(Plain(), "P", encode=lambda o: 1, decode=lambda v: 1)  # type: ignore[call-overload]
    with pytest.raises(UnsupportedTypeError, match="non-empty"):
        reg.register_type(Plain, "", encode=lambda o: 1, decode=lambda v: 1)
    with pytest.raises(UnsupportedTypeError, match="callable"):
        reg.register_type(Plain, "P", encode=1, decode=2)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedTypeError):
        reg.register_serializer("", lambda o: o)
    with pytest.raises(UnsupportedTypeError):
        reg.register_deserializer("x", "not callable")  # type: ignore[arg-type]


def test_module_level_register_type_is_the_default_registry() -> None:
    assert register_type == default_registry.register_type
    assert codec_module.register_type == default_registry.register_type


# --- the spec's "Custom Serializers" example, as written there --------------------------------


class MyCustomClass:
    def __init__(self, a: int, b: str) -> None:
        self.a, self.b = a, b

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MyCustomClass:
        return cls(d["a"], d["b"])


def custom_serializer(obj: Any) -> Any:
    if isinstance(obj, MyCustomClass):
        return {"type": "MyCustomClass", "data": obj.to_dict()}
    return obj


def custom_deserializer(obj: Any) -> Any:
    if isinstance(obj, dict) and obj.get("type") == "MyCustomClass":
        return MyCustomClass.from_dict(obj["data"])
    return obj


def test_spec_custom_serializer_example() -> None:
    state_manager = TypeRegistry()  # the registry the spec's state_manager delegates to
    state_manager.register_serializer("custom", custom_serializer)
    state_manager.register_deserializer("custom", custom_deserializer)
    codec = Codec(state_manager)
    state = {"key": "value", "obj": MyCustomClass(3, "x"), "when": dt.datetime(2024, 1, 1)}
    out = round_trip(codec, state)
    assert type(out["obj"]) is MyCustomClass
    assert out["obj"].to_dict() == {"a": 3, "b": "x"}
    assert out["key"] == "value"
    assert out["when"] == dt.datetime(2024, 1, 1)
    assert codec.encode(state).doc["obj"]["$t"] == "hook"


def test_serializers_are_tried_only_for_uncovered_values_in_order() -> None:
    calls: list[Any] = []

    def first(obj: Any) -> Any:
        calls.append(type(obj).__name__)
        return obj  # declines everything

    reg = TypeRegistry()
    reg.register_serializer("first", first)
    reg.register_serializer("custom", custom_serializer)
    reg.register_deserializer("custom", custom_deserializer)
    codec = Codec(reg)
    out = round_trip(codec, [1, "a", 2.5, None, (1,), MyCustomClass(1, "y")])
    assert calls == ["MyCustomClass"]
    assert type(out[5]) is MyCustomClass

    child = reg.child()
    child.register_serializer("custom", lambda o: "child" if isinstance(o, MyCustomClass) else o)
    child.register_deserializer("custom", lambda v: ("child got", v))
    assert round_trip(Codec(child), MyCustomClass(1, "z")) == ("child got", "child")


def test_hooks_cannot_see_or_break_builtin_tags() -> None:
    reg = TypeRegistry()
    reg.register_deserializer("tuple", lambda v: "hijacked")
    reg.register_type(
        MyCustomClass, "datetime", encode=MyCustomClass.to_dict, decode=MyCustomClass.from_dict
    )
    codec = Codec(reg)
    value = [(1, 2), dt.datetime(2024, 1, 1), MyCustomClass(5, "q")]
    out = round_trip(codec, value)
    assert out[0] == (1, 2)
    assert out[1] == dt.datetime(2024, 1, 1)
    assert type(out[2]) is MyCustomClass


def test_missing_user_type_on_load_names_the_registration() -> None:
    reg = TypeRegistry()
    reg.register_type(Position, "Position", encode=Position.to_dict, decode=Position.from_dict)
    payload = b"".join(Codec(reg).dumps({"p": Position("X", 1.0, dt.datetime(2024, 1, 1))}))
    with pytest.raises(UnknownTypeTagError, match=r"register_type\(YourClass, 'Position'") as info:
        Codec(TypeRegistry()).loads(payload)
    assert info.value.tag == "Position"
    assert info.value.path == "state['p']"
