"""pandas strings as buffers: every StringDtype variant, object columns of str, Arrow strings.

One encoding for all of them (tag ``pd.Strings``): ``n`` items, ``offsets`` (an int32/int64
array of n + 1 byte offsets), ``data`` (one buffer of UTF-8: lone surrogates, which Python str
may hold, are written with ``surrogatepass``), ``valid`` (an Arrow-style validity bitmap, LSB
first, present only when something is missing), and what the data *is*: ``storage``
(``"python"``, ``"pyarrow"`` or ``"object"`` for an object-dtype array of ``str``) and ``na``
(the missing-value semantics: ``"NA"`` for ``pd.NA``, ``"nan"`` for NaN, ``"None"`` for None in
object arrays). It never names a writer's constructor keywords: pandas 2.2's
``StringDtype("pyarrow_numpy")`` and pandas 3's ``StringDtype("pyarrow", na_value=np.nan)`` are
the same data and are written the same way; each reader builds its own spelling of it, or
raises a DecodeError naming what to install or which pandas is needed (never another storage).

Encoding and decoding are vectorised over the whole array: one join, one ``str.encode``, a few
numpy passes to turn code-point offsets into byte offsets (and back), then one slice per item.

Size: over 400 lines on purpose: one encoding of every string flavour, its encoders, its
decoder and its fast paths for short arrays belong together (they share the layout's checks).
"""

from __future__ import annotations

import inspect
import itertools
import math
import struct
from typing import Any

import numpy
import pandas

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, int_field, str_field
from statevault.errors import DecodeError

pd: Any = pandas
np: Any = numpy

_NAN_BITS = struct.pack("<d", math.nan)
ARROW_HINT = "pyarrow (pip install 'statevault[arrow]')"


# --- the buffers ---------------------------------------------------------------------------


def pack_strings(items: list[str]) -> tuple[Any, bytes]:
    """Byte offsets (int32 if the data fits, else int64) and the UTF-8 data of ``items``."""
    n = len(items)
    joined = "".join(items)
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=n)
    char_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=char_offsets[1:])
    if joined.isascii():
        data = joined.encode("ascii")
        offsets = char_offsets
    else:
        data = joined.encode("utf-8", "surrogatepass")
        raw = np.frombuffer(data, dtype=np.uint8)
        # Byte position of every code point (each starts with a non-continuation byte), then
        # the end: code-point offsets index straight into it.
        starts = np.flatnonzero((raw & 0xC0) != 0x80)
        offsets = np.append(starts, len(data))[char_offsets]
    if len(data) < 2**31:
        offsets = offsets.astype(np.int32)
    return offsets, data


# Below this many items, slicing the decoded text beats the NUL-join and split: numpy's
# insert costs about 20 us whatever the size (a DataFrame's 5 column names: 23 us against 2).
_SPLIT_MIN = 128


def unpack_strings(offsets: Any, data: memoryview) -> list[str]:
    """The str items of ``offsets``/``data`` (validated: damaged offsets raise DecodeError)."""
    n = len(offsets) - 1
    size = data.nbytes
    if n < 0 or offsets.dtype.kind not in "iu":
        raise DecodeError("string offsets must be a non-empty int array")
    if 1 < n < _SPLIT_MIN:
        items = _short(offsets.tolist(), bytes(data))
        if items is not None:
            return items
    offs = offsets.astype(np.int64, copy=False)
    if offs[0] != 0 or offs[-1] != size or (n and bool(np.any(offs[1:] < offs[:-1]))):
        raise DecodeError("string offsets do not fit their data: the state is damaged")
    raw_bytes = bytes(data)
    if n <= 1:
        items = [_decode(raw_bytes)] if n else []
    elif n >= _SPLIT_MIN and b"\x00" not in raw_bytes:
        # Fast path: a NUL byte between items (inserted by numpy), one decode, one C-level
        # split. An offset inside a character leaves invalid UTF-8 behind: a DecodeError.
        raw = np.frombuffer(raw_bytes, dtype=np.uint8)
        joined = np.insert(raw, offs[1:-1], 0).tobytes()
        items = _decode(joined).split("\x00")
    else:
        items = _slice(raw_bytes, offs)
    return items


def _short(bounds: list[int], raw_bytes: bytes) -> list[str] | None:
    """A few items, checked and sliced in Python (numpy's calls cost more than the work);
    None when the text is not all single-byte (the general path checks character starts)."""
    if bounds[0] != 0 or bounds[-1] != len(raw_bytes) or bounds != sorted(bounds):
        raise DecodeError("string offsets do not fit their data: the state is damaged")
    text = _decode(raw_bytes)
    if len(text) != len(raw_bytes):
        return None
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"string data is not valid UTF-8 (or an offset splits a character): {exc}"
        ) from exc


def _slice(raw_bytes: bytes, offs: Any) -> list[str]:
    """Items by slicing the decoded text (data holding NUL bytes: no separator is free)."""
    size = len(raw_bytes)
    text = _decode(raw_bytes)
    if len(text) != size:
        raw = np.frombuffer(raw_bytes, dtype=np.uint8)
        is_start = (raw & 0xC0) != 0x80
        inner = offs[(offs > 0) & (offs < size)]
        if not bool(np.all(is_start[inner])):
            raise DecodeError("a string offset splits a character: the state is damaged")
        char_at = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(is_start, out=char_at[1:])
        offs = char_at[offs]
    bounds = offs.tolist()
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _bitmap(valid: Any) -> Any:
    return np.packbits(valid, bitorder="little")


def _valid_from(d: dict[str, Any], n: int) -> Any:
    """The validity mask of a decoded ``pd.Strings`` (None when nothing is missing)."""
    bitmap = d.get("valid")
    if bitmap is None:
        return None
    if type(bitmap) is not np.ndarray or bitmap.dtype != np.uint8 or bitmap.ndim != 1:
        raise DecodeError("a string validity bitmap must be a 1-D uint8 array")
    if len(bitmap) != (n + 7) // 8:
        raise DecodeError("a string validity bitmap does not match the item count")
    return np.unpackbits(bitmap, count=n, bitorder="little").astype(bool)


def _doc(
    e: Encoder, depth: int, storage: str, na: str, items: list[str], *, valid: Any
) -> dict[str, Any]:
    offsets, data = pack_strings(items)
    out: dict[str, Any] = {
        TAG: "pd.Strings",
        "storage": storage,
        "na": na,
        "n": len(items),
        "offsets": e.child(offsets, depth, ".offsets"),
        "data": e.add_buffer(memoryview(data)),
    }
    if valid is not None:
        out["valid"] = e.child(_bitmap(valid), depth, ".valid")
    return out


# --- what a StringDtype is, on every pandas ------------------------------------------------

_HAS_NA_VALUE = "na_value" in inspect.signature(pd.StringDtype).parameters


def dtype_semantics(dtype: Any) -> tuple[str, str]:
    """(storage, na) of a StringDtype, in this package's words, on any supported pandas."""
    storage = dtype.storage
    if storage == "pyarrow_numpy":  # pandas 2.1-2.3's spelling of Arrow storage + NaN
        return "pyarrow", "nan"
    na_value = getattr(dtype, "na_value", pd.NA)
    return storage, ("NA" if na_value is pd.NA else "nan")


_dtypes: dict[tuple[str, str], tuple[Any, Any]] = {}


def _string_kind(storage: Any, na: Any) -> tuple[Any, Any]:
    """``string_dtype(storage, na)`` and its array class, cached (dtypes are immutable; the
    class lookup imports a module each time: 5 us of a 5-item column index's 20)."""
    key = (storage, na)
    known = _dtypes.get(key)
    if known is None:
        dtype = string_dtype(storage, na)
        known = _dtypes[key] = (dtype, dtype.construct_array_type())
    return known


def string_dtype(storage: str, na: str) -> Any:
    """This pandas's StringDtype for (storage, na); DecodeError when it cannot represent it."""
    if storage not in ("python", "pyarrow") or na not in ("NA", "nan"):
        raise DecodeError(f"unknown string kind: storage {storage!r}, na {na!r}")
    if storage == "pyarrow":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise DecodeError(
                f"the state holds pandas strings with pyarrow storage: install {ARROW_HINT} "
                f"to load it"
            ) from exc
    try:
        if _HAS_NA_VALUE:
            return pd.StringDtype(storage, na_value=np.nan if na == "nan" else pd.NA)
        if na == "NA":
            return pd.StringDtype(storage)
        if storage == "pyarrow":
            return pd.StringDtype("pyarrow_numpy")
    except ImportError as exc:  # e.g. a pyarrow older than this pandas needs for strings
        raise DecodeError(
            f"the state holds pandas strings with pyarrow storage, which pandas "
            f"{pd.__version__} cannot build here ({exc}): install {ARROW_HINT}"
        ) from exc
    raise DecodeError(
        f"the state holds pandas strings with python storage and NaN as missing value (the "
        f"pandas 3 'str' dtype without pyarrow): pandas {pd.__version__} cannot represent "
        f"them; install pandas>=2.3 (or pyarrow, whose 'str' dtype pandas 2.2 lacks too)"
    )


# --- encoders ------------------------------------------------------------------------------


def enc_python_strings(e: Encoder, arr: Any, depth: int) -> Any:
    """StringArray / StringArrayNumpySemantics (python storage): an object array inside."""
    storage, na = dtype_semantics(arr.dtype)
    values = np.asarray(arr, dtype=object)
    mask = np.asarray(arr.isna(), dtype=bool)
    if mask.any():
        values = np.where(mask, "", values)
        return _doc(e, depth, storage, na, values.tolist(), valid=~mask)
    return _doc(e, depth, storage, na, values.tolist(), valid=None)


def enc_arrow_strings(e: Encoder, arr: Any, depth: int) -> Any:
    """ArrowStringArray (and pandas 2's ArrowStringArrayNumpySemantics): Arrow's own buffers."""
    import pyarrow as pa

    storage, na = dtype_semantics(arr.dtype)
    chunked = arr.__arrow_array__()
    a = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    if a.type != pa.large_string():
        a = a.cast(pa.large_string())
    n = len(a)
    _, offsets_buf, data_buf = a.buffers()
    offs = np.frombuffer(offsets_buf, dtype="<i8", count=n + 1, offset=a.offset * 8)
    start, end = int(offs[0]), int(offs[-1])
    data = memoryview(data_buf)[start:end] if data_buf is not None else memoryview(b"")
    # int32 whenever the data fits (every reader accepts either width): the offsets are most
    # of the bytes of short strings, and the load widens them back in one Arrow pass
    if end - start < 2**31:
        offs = (offs - start if start else offs).astype(np.int32)
    elif start:
        offs = offs - start
    out: dict[str, Any] = {
        TAG: "pd.Strings",
        "storage": storage,
        "na": na,
        "n": n,
        "offsets": e.child(offs, depth, ".offsets"),
        "data": e.add_buffer(data),
    }
    if a.null_count:
        valid = a.is_valid().to_numpy(zero_copy_only=False)
        out["valid"] = e.child(_bitmap(valid), depth, ".valid")
    return out


def object_strings(e: Encoder, values: Any, depth: int) -> dict[str, Any] | None:
    """An object array of exact ``str`` (missing as all None or all NaN) as ``pd.Strings``.

    None for anything else (mixed types, str subclasses, other missing markers): such arrays
    are encoded element by element. NaN must be the plain ``float('nan')`` bits to qualify.
    """
    if type(values) is not np.ndarray or values.dtype.kind != "O" or values.ndim != 1:
        return None
    if not len(values) or type(values[0]) not in (str, float, type(None)):
        return None  # cheap rejection of the common non-string object column
    items = values.tolist()
    kinds = set(map(type, items))
    if kinds == {str}:
        return _doc(e, depth, "object", "None", items, valid=None)
    if len(kinds) != 2 or str not in kinds:
        return None
    (other,) = kinds - {str}
    if other is type(None):
        na = "None"
        missing = [x is None for x in items]
    elif other is float:
        na = "nan"
        missing = [type(x) is float for x in items]
        if not all(
            struct.pack("<d", x) == _NAN_BITS for x, m in zip(items, missing, strict=True) if m
        ):
            return None
    else:
        return None
    mask = np.array(missing, dtype=bool)
    texts = ["" if m else x for x, m in zip(items, missing, strict=True)]
    return _doc(e, depth, "object", na, texts, valid=~mask)


# --- decoder -------------------------------------------------------------------------------


def dec_strings(dec: Decoder, d: dict[str, Any]) -> Any:
    n = int_field(d, "n")
    storage = str_field(d, "storage")
    na = str_field(d, "na")
    offsets = field(d, "offsets")
    if type(offsets) is not np.ndarray or offsets.ndim != 1 or len(offsets) != n + 1:
        raise DecodeError("string offsets must be a 1-D int array of n + 1 items")
    data = dec.buffer(field(d, "data"))
    valid = _valid_from(d, n)
    if storage == "object":
        if na not in ("None", "nan"):
            raise DecodeError(f"unknown missing value {na!r} for object strings")
        out = np.empty(n, dtype=object)
        out[:] = unpack_strings(offsets, data)
        if valid is not None:
            out[~valid] = None if na == "None" else math.nan
        return out
    dtype, array_type = _string_kind(storage, na)  # may raise: pyarrow or a newer pandas
    if storage == "pyarrow":
        return _arrow_strings(dtype, n, offsets, data, valid)
    values = np.empty(n, dtype=object)
    values[:] = unpack_strings(offsets, data)
    if valid is not None:
        values[~valid] = dtype.na_value
    return array_type._from_sequence(values, dtype=dtype, copy=False)


def _is_ascii(data: memoryview) -> bool:
    """True if every byte is below 0x80: then any split of it is valid UTF-8.

    Arrow's full validation checks UTF-8 item by item (about 10 ns per item, most of a load of
    short strings); with monotonic in-bounds offsets (checked before) ASCII data needs no more.
    """
    return not data.nbytes or int(np.frombuffer(data, dtype=np.uint8).max()) < 0x80


def _arrow_strings(dtype: Any, n: int, offsets: Any, data: memoryview, valid: Any) -> Any:
    import pyarrow as pa

    if offsets.dtype.kind not in "iu":
        raise DecodeError("string offsets must be an int array")
    # Checked in the stored width (int32 since offsets are written narrow, int64 before): both
    # widths are read, and any other int width is widened first.
    offs = offsets
    if offs[0] != 0 or offs[-1] != data.nbytes or (n and bool(np.any(offs[1:] < offs[:-1]))):
        raise DecodeError("string offsets do not fit their data: the state is damaged")
    if offs.dtype == np.dtype("<i4"):
        arrow_type = pa.string()
    else:
        arrow_type = pa.large_string()
        offs = offs.astype("<i8", copy=False)
    bitmap = None if valid is None else pa.py_buffer(_bitmap(valid))
    null_count = 0 if valid is None else int(n - valid.sum())
    arr = pa.Array.from_buffers(
        arrow_type,
        n,
        [bitmap, pa.py_buffer(np.ascontiguousarray(offs)), pa.py_buffer(data)],
        null_count=null_count,
    )
    try:
        # Buffer sizes against n always; strict UTF-8 (no surrogates) of every item unless the
        # data is ASCII. The offsets (monotonic, within the data) were checked above.
        arr.validate(full=not _is_ascii(data))
    except pa.ArrowException as exc:
        raise DecodeError(f"stored Arrow string data is damaged: {exc}") from exc
    if arrow_type != pa.large_string():
        # pandas's ArrowStringArray holds large_string on every version: widen the offsets
        # here (the data buffer is shared, not copied), so the type never depends on pandas
        arr = arr.cast(pa.large_string())
    return dtype.construct_array_type()._from_sequence(arr, dtype=dtype, copy=False)


# --- the old list form (statevault 0.1 wrote it; still read) ------------------------------


def dec_string_list(_: Decoder, d: dict[str, Any]) -> Any:
    values = field(d, "v")
    if type(values) is not list or not all(v is None or type(v) is str for v in values):
        raise DecodeError("a StringArray's 'v' must be a list of str or None")
    storage = str_field(d, "storage")
    na = str_field(d, "na")
    if storage == "pyarrow_numpy":
        storage, na = "pyarrow", "nan"
    dtype = string_dtype(storage, na)
    return pd.array(values, dtype=dtype)


def _string_classes() -> dict[type[Any], EncodeFn]:
    """Every string array class this pandas has, each with its encoder."""
    import pandas.core.arrays.string_ as string_mod

    out: dict[type[Any], EncodeFn] = {pd.arrays.StringArray: enc_python_strings}
    numpy_semantics = getattr(string_mod, "StringArrayNumpySemantics", None)
    if numpy_semantics is not None:
        out[numpy_semantics] = enc_python_strings
    try:
        import pandas.core.arrays.string_arrow as arrow_mod
    except ImportError:  # pragma: no cover - pandas without the module
        return out
    for name in ("ArrowStringArray", "ArrowStringArrayNumpySemantics"):
        cls = getattr(arrow_mod, name, None)
        if isinstance(cls, type):
            out[cls] = enc_arrow_strings
    return out


ENCODERS = _string_classes()
DECODERS: dict[str, DecodeFn] = {"pd.Strings": dec_strings, "pd.StringArray": dec_string_list}
