"""numpy handlers (loaded lazily): arrays as raw buffers, scalars with their exact dtype.

Arrays keep dtype (incl. byte order and datetime units), shape and C/Fortran layout; their data
is one buffer, never a JSON list. Object arrays are encoded element by element through the
codec. Structured (record) dtypes are refused with an UnsupportedTypeError.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy

from statevault.codec._builtin import field, list_field, str_field
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder, install
from statevault.errors import DecodeError

__all__ = ["array_buffer", "decode_array"]

np: Any = numpy  # untyped alias: numpy's stubs fight dtype-generic code more than they help

_BUFFER_KINDS = frozenset("biufcmMUS")


def array_buffer(arr: Any) -> tuple[memoryview, str | None]:
    """The bytes of ``arr`` as a 1-D memoryview (no copy if contiguous) and its order flag."""
    if arr.flags.c_contiguous:
        flat, order = arr.reshape(-1), None
    elif arr.flags.f_contiguous:
        flat, order = arr.T.reshape(-1), "F"
    else:
        flat, order = arr.copy(order="C").reshape(-1), None
    return memoryview(flat.view(np.uint8)), order


def enc_ndarray(e: Encoder, arr: Any, depth: int) -> Any:
    dtype = arr.dtype
    if dtype.kind == "O":
        shape = arr.shape
        fmt = "[{}]"
        if len(shape) != 1:
            fmt = "[flat {}]"
        return {
            TAG: "np.ndarray",
            "dtype": "|O",
            "shape": list(shape),
            "items": e.enc_seq(arr.reshape(-1), depth, fmt),
        }
    if dtype.kind not in _BUFFER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise e.unsupported(
            arr,
            f"arrays of dtype {dtype} (structured/void) are not supported: store each field "
            f"as its own array, e.g. {{name: arr[name] for name in arr.dtype.names}}",
        )
    buf, order = array_buffer(arr)
    out = {TAG: "np.ndarray", "dtype": dtype.str, "shape": list(arr.shape)}
    out["buf"] = e.add_buffer(buf)
    if order:
        out["order"] = order
    return out


_dtypes: dict[str, Any] = {}


def parse_dtype(text: Any, *, sized: bool = True) -> Any:
    """A stored dtype string, restricted to plain numeric/bool/datetime/string kinds."""
    dtype = _dtypes.get(text) if type(text) is str else None
    if dtype is not None and (dtype.itemsize or not sized):
        return dtype
    if type(text) is not str:
        raise DecodeError("a dtype must be stored as a str")
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"unknown dtype {text[:40]!r}") from exc
    if dtype.kind not in _BUFFER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise DecodeError(f"dtype {text[:40]!r} is not allowed in a buffer")
    if sized and dtype.itemsize == 0:
        raise DecodeError(f"dtype {text[:40]!r} has no size")
    if len(_dtypes) < 1024:  # a cache of parsed, validated dtypes (bounded: keys come from data)
        _dtypes[text] = dtype
    return dtype


def _shape(value: Any) -> tuple[int, ...]:
    if type(value) is list and len(value) == 1:  # the common 1-D case, checked cheaply
        n = value[0]
        if type(n) is int and n >= 0:
            return (n,)
    if type(value) is not list or not all(type(n) is int and n >= 0 for n in value):
        raise DecodeError("an array shape must be a list of non-negative ints")
    return tuple(value)


def decode_array(buf: memoryview, dtype: Any, shape: tuple[int, ...], order: str = "C") -> Any:
    """An array over ``buf`` (zero copy if writable, else a copy: results are always writable)."""
    count = math.prod(shape)
    if buf.nbytes != count * dtype.itemsize:
        raise DecodeError(
            f"array buffer holds {buf.nbytes} bytes, its shape {list(shape)} and dtype "
            f"{dtype.str} need {count * dtype.itemsize}: the state is damaged"
        )
    if count == 0:
        return np.empty(shape, dtype=dtype, order=order)
    flat = np.frombuffer(buf, dtype=dtype)
    if buf.readonly:
        flat = flat.copy()
    return flat if len(shape) == 1 else flat.reshape(shape, order=order)


def dec_ndarray(dec: Decoder, d: dict[str, Any]) -> Any:
    shape = _shape(field(d, "shape"))
    if "items" in d:
        if d.get("dtype") != "|O":
            raise DecodeError("only object arrays are stored as items")
        items = list_field(d, "items")
        if len(items) != math.prod(shape):
            raise DecodeError("object array item count does not match its shape")
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            out[i] = item  # one by one: a sequence item must stay one element
        return out.reshape(shape)
    order = d.get("order", "C")
    if order not in ("C", "F"):
        raise DecodeError("array order must be 'C' or 'F'")
    dtype = parse_dtype(d.get("dtype"))
    return decode_array(dec.buffer(field(d, "buf")), dtype, shape, order)


def enc_scalar(e: Encoder, x: Any, depth: int) -> Any:
    dtype = x.dtype
    kind = dtype.kind
    out: dict[str, Any] = {TAG: "np.scalar", "dtype": dtype.str}
    if kind == "b":
        out["v"] = bool(x)
    elif kind in "iu":
        out["v"] = int(x)
    elif kind == "f" and dtype.itemsize <= 8 and not np.isnan(x):
        out["v"] = float(x)  # exact: float16/32 widen to float64 without rounding
    elif kind == "c" and dtype.itemsize <= 16 and not np.isnan(x):
        out["v"] = [float(x.real), float(x.imag)]
    elif kind in "mM":
        out["v"] = int(np.array(x).view(np.int64))
    elif kind == "U":
        out["v"] = str(x)
    elif kind == "S":
        out["b64"] = base64.b64encode(bytes(x)).decode("ascii")
    else:  # long double, NaN (keeps its payload bits): raw bytes, nothing lost
        out["raw"] = base64.b64encode(np.array(x).tobytes()).decode("ascii")
    if np.dtype(dtype.str).type is not type(x):
        # e.g. numpy.longlong vs numpy.int64: same dtype string, different scalar type
        out["char"] = dtype.char
    return out


def dec_scalar(_: Decoder, d: dict[str, Any]) -> Any:
    dtype = parse_dtype(d.get("dtype"), sized=False)  # np.str_("") has dtype <U0
    if "char" in d:
        alt = np.dtype(str_field(d, "char"))
        if alt != dtype:
            raise DecodeError("a numpy scalar's 'char' does not match its dtype")
        dtype = alt
    kind = dtype.kind
    if "raw" in d:
        raw = base64.b64decode(str_field(d, "raw"), validate=True)
        if len(raw) != dtype.itemsize:
            raise DecodeError("a numpy scalar's raw bytes do not match its dtype")
        return np.frombuffer(raw, dtype=dtype)[0]
    if kind == "S":
        return np.bytes_(base64.b64decode(str_field(d, "b64"), validate=True))
    v = field(d, "v")
    if kind == "b":
        if type(v) is not bool:
            raise DecodeError("a numpy bool must be stored as a bool")
        return np.bool_(v)
    if kind in "iu" or kind in "mM":
        if type(v) is not int:
            raise DecodeError("a numpy integer/datetime must be stored as an int")
        if kind in "mM":
            return np.array(v, dtype=np.int64).view(dtype)[()]
        return dtype.type(v)
    if kind == "f":
        if type(v) not in (float, int):
            raise DecodeError("a numpy float must be stored as a number")
        return dtype.type(v)
    if kind == "c":
        if type(v) is not list or len(v) != 2 or not all(type(p) in (float, int) for p in v):
            raise DecodeError("a numpy complex must be stored as [real, imag]")
        return dtype.type(complex(v[0], v[1]))
    if kind == "U":
        if type(v) is not str:
            raise DecodeError("a numpy str must be stored as a str")
        return np.str_(v)
    raise DecodeError(f"numpy scalars of dtype {dtype.str} are not stored this way")


ENCODERS: dict[type[Any], EncodeFn] = {np.ndarray: enc_ndarray}
for _char in "?bhilqpBHILQPefdgFDGMmUS":
    ENCODERS[np.dtype(_char).type] = enc_scalar

DECODERS: dict[str, DecodeFn] = {"np.ndarray": dec_ndarray, "np.scalar": dec_scalar}

install(ENCODERS, DECODERS)
