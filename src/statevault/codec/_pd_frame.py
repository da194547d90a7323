"""pandas Series and DataFrame: values, index, name, ``attrs`` and ``allows_duplicate_labels``.

A DataFrame of one numpy dtype is one 2-D buffer; any other is stored column by column, the
column arrays read through pandas' own per-column iterator (no Series built per column),
probed at import against the public ``df.iloc[:, j]`` path and replaced by it on a mismatch.
"""

from __future__ import annotations

from typing import Any

import pandas

from statevault.codec import _numpy
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, list_field
from statevault.codec._pd_common import _enc_array, _enc_values, _name_fields, _values
from statevault.errors import DecodeError

pd: Any = pandas  # untyped alias: pandas-stubs do not describe the constructors used here
np: Any = _numpy.np

# Private: the probes below check what the fast paths build; a pandas without them is fine.
SingleBlockManager: Any = getattr(pd.core.internals, "SingleBlockManager", None)
BlockManager: Any = getattr(pd.core.internals, "BlockManager", None)
new_block_2d: Any = getattr(getattr(pd.core.internals, "blocks", None), "new_block_2d", None)
BlockPlacement: Any = getattr(getattr(pd._libs, "internals", None), "BlockPlacement", None)


def _extras(e: Encoder, obj: Any, depth: int, out: dict[str, Any]) -> dict[str, Any]:
    if obj.attrs:
        out["attrs"] = e.child(dict(obj.attrs), depth, ".attrs")
    if not obj.flags.allows_duplicate_labels:
        out["nodup"] = True
    return out


def _apply_extras(obj: Any, d: dict[str, Any]) -> Any:
    attrs = d.get("attrs")
    if attrs is not None:
        if type(attrs) is not dict:
            raise DecodeError("'attrs' must be a dict")
        obj.attrs = attrs
    if d.get("nodup") is True:
        obj = obj.set_flags(allows_duplicate_labels=False)
    return obj


def enc_series(e: Encoder, s: Any, depth: int) -> Any:
    out = {
        TAG: "pd.Series",
        "index": e.child(s.index, depth, ".index"),
        "v": _enc_values(e, s, depth, ".values"),
    }
    _name_fields(e, s, depth, out)
    return _extras(e, s, depth, out)


def _column(values: Any, index: Any) -> Any:
    _check_values(values)
    if type(values) is np.ndarray and values.dtype.kind == "O":
        # Without an explicit dtype pandas would infer 'str' from object arrays of strings.
        return pd.Series(values, index=index, dtype=object, copy=False)
    return values


def _check_index(value: Any, what: str) -> Any:
    if not isinstance(value, pd.Index):
        raise DecodeError(f"the {what} of a pandas object must be an Index")
    return value


def _check_values(value: Any) -> Any:
    if type(value) is np.ndarray:
        if value.ndim != 1:
            raise DecodeError("Series data must be 1-D")
    elif not isinstance(value, pd.api.extensions.ExtensionArray):
        raise DecodeError("Series data must be a numpy array or a pandas ExtensionArray")
    return value


def dec_series(_: Decoder, d: dict[str, Any]) -> Any:
    values = _check_values(field(d, "v"))
    index = _check_index(field(d, "index"), "index")
    name = d.get("name")
    if type(values) is np.ndarray and values.dtype in _FAST_DTYPES and len(values) == len(index):
        s = _make_series(values, index, name)
    else:
        dtype = object if type(values) is np.ndarray and values.dtype.kind == "O" else None
        s = pd.Series(values, index=index, dtype=dtype, name=name, copy=False)
    return _apply_extras(s, d)


# Plain numeric numpy data (native byte order; no float16, which pandas treats apart): what
# the public constructor would keep as it is, so the block can be built directly.
_FAST_DTYPES = frozenset(np.dtype(c) for c in "?bhilqBHILQfdgFDG")


def _series_public(values: Any, index: Any, name: Any) -> Any:
    return pd.Series(values, index=index, name=name, copy=False)


def _series_fast(values: Any, index: Any, name: Any) -> Any:
    # What Series.__init__ ends in for such data (sanitize_array keeps it, the manager wraps
    # it in one block with fresh references), without its checks of data it cannot have
    # here (dicts, lists, Series, managers, dtypes to cast to): about 4 us instead of 9.
    mgr = SingleBlockManager.from_array(values, index)
    s = pd.Series._from_mgr(mgr, axes=mgr.axes)
    s.name = name  # the public setter: an unhashable name still raises
    return s


def _series_facts(s: Any, values: Any, index: Any) -> tuple[Any, ...]:
    block = s._mgr.blocks[0]
    return (
        type(s),
        sorted(vars(s)),
        type(s._mgr),
        sorted(vars(s._mgr)),
        type(block),
        block.values is values,
        block.mgr_locs.as_slice,
        len(block.refs.referenced_blocks),
        s.index is index,
        s.dtype,
        s.name,
        s.attrs,
        s.flags.allows_duplicate_labels,
        s.to_numpy(copy=False).flags.writeable,
        np.shares_memory(s.to_numpy(copy=False), values),
    )


def _probe_series() -> bool:
    """True if the fast Series is the public one, fact for fact, on this pandas."""
    try:
        index = pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC", name="t")
        for dtype in _FAST_DTYPES:
            for name in (None, "x", ("a", 1)):
                one, two = np.zeros(3, dtype=dtype), np.zeros(3, dtype=dtype)
                fast, slow = _series_fast(one, index, name), _series_public(two, index, name)
                if _series_facts(fast, one, index) != _series_facts(slow, two, index):
                    return False
        return True
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return False


def enc_frame(e: Encoder, df: Any, depth: int) -> Any:
    out: dict[str, Any] = {
        TAG: "pd.DataFrame",
        "index": e.child(df.index, depth, ".index"),
        "columns": e.child(df.columns, depth, ".columns"),
    }
    arrays = _column_arrays(df)
    first = arrays[0].dtype if arrays else None
    if isinstance(first, np.dtype) and first.kind != "O" and all(a.dtype == first for a in arrays):
        # One homogeneous numpy block: a single 2-D buffer (a view, Fortran order, no copy).
        out["block"] = e.child(df.to_numpy(), depth, ".values")
    else:
        columns = df.columns
        out["cols"] = [
            _enc_array(e, values, depth, f"[{_label(columns[j])}].values")
            for j, values in enumerate(arrays)
        ]
    return _extras(e, df, depth, out)


def _column_arrays_public(df: Any) -> list[Any]:
    return [_values(df.iloc[:, j]) for j in range(df.shape[1])]


def _column_arrays_fast(df: Any) -> list[Any]:
    # pandas' own per-column iterator (2.2 to 3.x): each column's array as its block stores
    # it, read-only use only, no Series built; numpy-dtype extension arrays (a naive
    # DatetimeArray) are turned into the ndarray that Series.to_numpy() gives (a view).
    return [
        np.asarray(a) if type(a) is not np.ndarray and isinstance(a.dtype, np.dtype) else a
        for a in df._iter_column_arrays()
    ]


def _same_arrays(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        type(x) is type(y)
        and x.dtype == y.dtype
        and len(x) == len(y)
        and bool(np.all(np.asarray(x, dtype=object) == np.asarray(y, dtype=object)))
        for x, y in zip(a, b, strict=True)
    )


def _probe_columns() -> bool:
    """True if the fast column arrays are exactly the public ones on this pandas."""
    try:
        n = 3
        frame = pd.DataFrame(
            {
                "i": np.arange(n, dtype=np.int32),
                "f": np.linspace(0.0, 1.0, n),
                "o": np.array(["a", 1, None], dtype=object),
                "s": pd.array(["x", "y", "z"], dtype="string"),
                "m": np.array([0, 1, 2], dtype="M8[ns]"),
                "t": pd.date_range("2024-01-01", periods=n, tz="UTC"),
                "c": pd.Categorical(["u", "v", "u"]),
                "n": pd.array([1, 2, 3], dtype="Int64"),
                "b": np.array([True, False, True]),
            }
        )
        frame.insert(1, "f2", frame["f"] * 2)  # a second float block, not consolidated
        return _same_arrays(_column_arrays_fast(frame), _column_arrays_public(frame))
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return False


def _label(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dec_frame(_: Decoder, d: dict[str, Any]) -> Any:
    index = _check_index(field(d, "index"), "index")
    columns = _check_index(field(d, "columns"), "columns")
    if "block" in d:
        block = field(d, "block")
        if type(block) is not np.ndarray or block.ndim != 2 or block.dtype.kind == "O":
            raise DecodeError("a DataFrame block must be a 2-D numeric numpy array")
        # (no columns: the public path, which builds no block at all)
        if block.dtype in _FAST_DTYPES and block.shape == (len(index), len(columns) or -1):
            df = _make_frame(block, index, columns)
        else:
            df = pd.DataFrame(block, index=index, columns=columns, copy=False)
    else:
        cols = list_field(d, "cols")
        data = {j: _column(values, index) for j, values in enumerate(cols)}
        df = pd.DataFrame(data, index=index, copy=False)
        df.columns = columns
    return _apply_extras(df, d)


def _frame_public(block: Any, index: Any, columns: Any) -> Any:
    return pd.DataFrame(block, index=index, columns=columns, copy=False)


def _frame_fast(block: Any, index: Any, columns: Any) -> Any:
    # What DataFrame.__init__ ends in for one numeric 2-D block (ndarray_to_mgr: the
    # transposed array as one block, consolidated): 3 us instead of 25.
    nb = new_block_2d(block.T, placement=BlockPlacement(slice(len(columns))))
    mgr = BlockManager((nb,), [columns, index], verify_integrity=False)
    mgr._consolidate_inplace()
    return pd.DataFrame._from_mgr(mgr, axes=mgr.axes)


def _frame_facts(df: Any, block: Any, index: Any, columns: Any) -> tuple[Any, ...]:
    mgr = df._mgr
    (b,) = mgr.blocks
    return (
        type(df),
        sorted(vars(df)),
        type(mgr),
        mgr._is_consolidated,
        mgr._known_consolidated,
        type(b),
        b.shape,
        list(b.mgr_locs.as_array),
        len(b.refs.referenced_blocks),
        b.values.flags.c_contiguous,
        b.values.flags.writeable,
        np.shares_memory(b.values, block),
        df.index is index,
        df.columns is columns,
        list(df.dtypes),
        df.attrs,
        df.flags.allows_duplicate_labels,
    )


def _probe_frame() -> bool:
    """True if the fast DataFrame is the public one, fact for fact, on this pandas."""
    try:
        index = pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC", name="t")
        for dtype in _FAST_DTYPES:
            for columns in (pd.Index(["a", "b"], dtype=object), pd.RangeIndex(1)):
                shape = (3, len(columns))
                one = np.zeros(shape, dtype=dtype, order="F")
                two = np.zeros(shape, dtype=dtype, order="F")
                fast = _frame_fast(one, index, columns)
                slow = _frame_public(two, index, columns)
                if _frame_facts(fast, one, index, columns) != _frame_facts(
                    slow, two, index, columns
                ):
                    return False
        return True
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return False


_column_arrays = _column_arrays_fast if _probe_columns() else _column_arrays_public
_make_series = _series_fast if _probe_series() else _series_public
_make_frame = _frame_fast if _probe_frame() else _frame_public


ENCODERS: dict[type[Any], EncodeFn] = {pd.Series: enc_series, pd.DataFrame: enc_frame}
DECODERS: dict[str, DecodeFn] = {"pd.Series": dec_series, "pd.DataFrame": dec_frame}
