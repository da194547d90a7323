"""numpy handlers (loaded lazily): arrays as raw buffers, scalars with their exact dtype.

Arrays keep dtype (incl. byte order and datetime units), shape and C/Fortran layout; their data
is one buffer, never a JSON list. Object arrays are encoded element by element through the
codec. Structured dtypes (MetaTrader5's rates, ``np.recarray``, nested, aligned, titled,
subarray fields) travel as the raw buffer plus a JSON description of the fields (names,
formats, offsets, itemsize), rebuilt with ``np.dtype(dict)``: never ``eval`` of a ``descr``,
never a pickled dtype. Structured dtypes with object fields are refused.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, list_field, str_field
from statevault.errors import DecodeError

__all__ = ["array_buffer", "decode_array", "describe_dtype", "parse_dtype"]

np: Any = numpy  # untyped alias: numpy's stubs fight dtype-generic code more than they help

_BUFFER_KINDS = frozenset("biufcmMUSV")  # V: plain void (raw bytes) and structured dtypes
_MAX_FIELDS = 4096  # bounds on a stored structured dtype (hostile data must stay cheap)
_MAX_NESTING = 16


def array_buffer(arr: Any) -> tuple[memoryview, str | None]:
    """The bytes of ``arr`` as a 1-D memoryview (no copy if contiguous) and its order flag."""
    if arr.flags.c_contiguous:
        flat, order = arr.reshape(-1), None
    elif arr.flags.f_contiguous:
        flat, order = arr.T.reshape(-1), "F"
    else:
        flat, order = arr.copy(order="C").reshape(-1), None
    return memoryview(flat.view(np.uint8)), order


def describe_dtype(dtype: Any) -> Any:
    """The stored form of a dtype: ``dtype.str``, or for a structured dtype a JSON object.

    ``{"names", "formats", "offsets", "itemsize"}`` plus ``"titles"`` (when any field has one),
    ``"aligned": true`` (``align=True`` dtypes) and ``"rec": true`` (``np.record`` dtypes of
    ``np.recarray``); each format is itself a description, a subarray field's format is
    ``{"sub": description, "shape": [...]}``. Raises ValueError for what cannot be stored.
    """
    if dtype.fields is None:
        if dtype.subdtype is not None:
            base, shape = dtype.subdtype
            return {"sub": describe_dtype(base), "shape": list(shape)}
        if dtype.kind not in _BUFFER_KINDS:
            raise ValueError(f"fields of dtype {dtype} cannot be stored")
        return dtype.str
    names = list(dtype.names)
    formats, offsets, titles = [], [], []
    for name in names:
        info = dtype.fields[name]
        formats.append(describe_dtype(info[0]))
        offsets.append(info[1])
        title = info[2] if len(info) > 2 else None
        if title is not None and type(title) is not str:
            raise ValueError(f"field {name!r} has a title that is not a str: {title!r}")
        titles.append(title)
    out: dict[str, Any] = {
        "names": names,
        "formats": formats,
        "offsets": offsets,
        "itemsize": dtype.itemsize,
    }
    if any(t is not None for t in titles):
        out["titles"] = titles
    if dtype.isalignedstruct:
        out["aligned"] = True
    if dtype.type is not np.void:
        out["rec"] = True
    return out


def _dtype_field(e: Encoder, arr: Any, dtype: Any) -> Any:
    if dtype.fields is None:
        return dtype.str
    if dtype.hasobject:
        raise e.unsupported(
            arr,
            f"structured dtype {dtype} has object fields, which cannot travel as raw bytes: "
            f"store the object fields as their own arrays or lists, e.g. "
            f"{{name: arr[name] for name in arr.dtype.names}}",
        )
    try:
        return describe_dtype(dtype)
    except ValueError as exc:
        raise e.unsupported(arr, f"its structured dtype cannot be stored: {exc}") from exc


def enc_ndarray(e: Encoder, arr: Any, depth: int, tag: str = "np.ndarray") -> Any:
    dtype = arr.dtype
    if dtype.kind == "O":
        shape = arr.shape
        fmt = "[{}]"
        if len(shape) != 1:
            fmt = "[flat {}]"
        return {
            TAG: tag,
            "dtype": "|O",
            "shape": list(shape),
            "items": e.enc_seq(arr.reshape(-1), depth, fmt),
        }
    if dtype.kind not in _BUFFER_KINDS or dtype.subdtype is not None:
        raise e.unsupported(arr, f"arrays of dtype {dtype} are not supported")
    stored = _dtype_field(e, arr, dtype)
    buf, order = array_buffer(arr)
    out = {TAG: tag, "dtype": stored, "shape": list(arr.shape)}
    out["buf"] = e.add_buffer(buf)
    if order:
        out["order"] = order
    return out


def enc_recarray(e: Encoder, arr: Any, depth: int) -> Any:
    return enc_ndarray(e, arr.view(np.ndarray), depth, "np.recarray")


_dtypes: dict[str, Any] = {}


def parse_dtype(text: Any, *, sized: bool = True) -> Any:
    """A stored dtype: a plain numeric/bool/datetime/string/void dtype string, or a structured
    description (see ``describe_dtype``), validated; parsed dtypes are cached."""
    if type(text) is dict:
        return _parse_struct(text)
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


_structs: dict[str, Any] = {}


def _parse_struct(desc: dict[str, Any]) -> Any:
    try:
        key = json.dumps(desc, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise DecodeError("a structured dtype description is not plain JSON") from exc
    dtype = _structs.get(key)
    if dtype is None:
        dtype = _build_struct(desc, 0)
        if dtype.itemsize == 0:
            raise DecodeError("a structured dtype has no size")
        if len(_structs) < 256:
            _structs[key] = dtype
    return dtype


def _format(desc: Any, depth: int) -> Any:
    if type(desc) is str:
        return parse_dtype(desc)
    if type(desc) is not dict:
        raise DecodeError("a field format must be a dtype string or a description")
    if "sub" in desc:
        if set(desc) != {"sub", "shape"}:
            raise DecodeError("a subarray field must hold exactly 'sub' and 'shape'")
        shape = _shape(desc["shape"])
        if not shape or math.prod(shape) > 1 << 24:
            raise DecodeError("a subarray field's shape must be non-empty and bounded")
        base = _format(desc["sub"], depth + 1)
        return np.dtype((base, shape))
    return _build_struct(desc, depth + 1)


def _build_struct(desc: dict[str, Any], depth: int) -> Any:
    if depth > _MAX_NESTING:
        raise DecodeError("a structured dtype nests too deeply")
    allowed = {"names", "formats", "offsets", "itemsize", "titles", "aligned", "rec"}
    if not set(desc) <= allowed:
        raise DecodeError(f"unknown keys in a structured dtype: {sorted(set(desc) - allowed)}")
    names, formats, offsets = desc.get("names"), desc.get("formats"), desc.get("offsets")
    itemsize, titles = desc.get("itemsize"), desc.get("titles")
    aligned, rec = desc.get("aligned", False), desc.get("rec", False)
    n = len(names) if type(names) is list else -1
    if (
        not 0 <= n <= _MAX_FIELDS
        or not all(type(x) is str for x in names)  # type: ignore[union-attr]
        or len(set(names)) != n  # type: ignore[arg-type]
        or type(formats) is not list
        or len(formats) != n
        or type(offsets) is not list
        or len(offsets) != n
        or not all(type(x) is int and x >= 0 for x in offsets)
        or type(itemsize) is not int
        or not 0 <= itemsize <= 1 << 31
        or type(aligned) is not bool
        or type(rec) is not bool
        or not (
            titles is None
            or (
                type(titles) is list
                and len(titles) == n
                and all(t is None or type(t) is str for t in titles)
            )
        )
    ):
        raise DecodeError("a structured dtype description is damaged")
    spec: dict[str, Any] = {
        "names": names,
        "formats": [_format(f, depth) for f in formats],
        "offsets": offsets,
        "itemsize": itemsize,
    }
    if titles is not None:
        spec["titles"] = titles
    try:
        dtype = np.dtype(spec, align=aligned)
        if rec:
            dtype = np.dtype((np.record, dtype))
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"a structured dtype description is invalid: {exc}") from exc
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
    if buf.readonly:
        # Copy the bytes, not the array: ndarray.copy() of a structured dtype copies field by
        # field and would drop the bytes between and after fields.
        buf = memoryview(bytearray(buf))
    flat = np.frombuffer(buf, dtype=dtype)
    return flat if len(shape) == 1 else flat.reshape(shape, order=order)


def dec_recarray(dec: Decoder, d: dict[str, Any]) -> Any:
    return dec_ndarray(dec, d).view(np.recarray)


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


def enc_void(e: Encoder, x: Any, depth: int) -> Any:
    """np.void / np.record: a structured (or raw void) scalar, as its bytes plus its dtype."""
    arr = np.array(x)  # 0-d array of the scalar's dtype: the bytes as they are laid out
    return {
        TAG: "np.void",
        "dtype": _dtype_field(e, x, x.dtype),
        "b64": base64.b64encode(arr.tobytes()).decode("ascii"),
    }


def dec_void(_: Decoder, d: dict[str, Any]) -> Any:
    dtype = parse_dtype(d.get("dtype"))
    if dtype.kind != "V":
        raise DecodeError("a numpy void scalar must have a void or structured dtype")
    raw = base64.b64decode(str_field(d, "b64"), validate=True)
    if len(raw) != dtype.itemsize:
        raise DecodeError("a numpy void scalar's bytes do not match its dtype")
    return np.frombuffer(bytearray(raw), dtype=dtype)[0]


ENCODERS: dict[type[Any], EncodeFn] = {
    np.ndarray: enc_ndarray,
    np.recarray: enc_recarray,
    np.void: enc_void,
    np.record: enc_void,
}
for _char in "?bhilqpBHILQPefdgFDGMmUS":
    ENCODERS[np.dtype(_char).type] = enc_scalar

DECODERS: dict[str, DecodeFn] = {
    "np.ndarray": dec_ndarray,
    "np.recarray": dec_recarray,
    "np.scalar": dec_scalar,
    "np.void": dec_void,
}
