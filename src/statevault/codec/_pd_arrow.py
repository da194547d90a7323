"""pandas ``ArrowDtype`` arrays (any Arrow type) carried as one Arrow IPC stream buffer.

``read_parquet(dtype_backend="pyarrow")`` and ``convert_dtypes(dtype_backend="pyarrow")`` give
``ArrowExtensionArray`` columns of any Arrow type: ints, floats, bool, timestamps with tz,
dictionary, list, struct, decimal, string, binary. Arrow's IPC stream format describes exactly
that (type, nullability, chunks) as data, never code, so the array is written as one IPC stream
of a one-column schema (field ``v``), one record batch per chunk, and read back with the same
chunks. pyarrow stays optional: it is needed only to load a state that held such arrays (a
DecodeError names the extra otherwise). pyarrow >= 14.0.1 never unpickles extension types from
IPC metadata (the PyExtensionType auto-load that CVE-2023-47248 was about is off); unknown
extension types load as their storage type with their metadata kept.
"""

from __future__ import annotations

from typing import Any

import pandas

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field
from statevault.codec._pd_strings import ARROW_HINT
from statevault.errors import DecodeError

pd: Any = pandas


def enc_arrow_array(e: Encoder, arr: Any, depth: int) -> Any:
    import pyarrow as pa

    chunked = arr.__arrow_array__()
    schema = pa.schema([pa.field("v", chunked.type)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for chunk in chunked.chunks:
            writer.write_batch(pa.record_batch([chunk], schema=schema))
    return {TAG: "pd.ArrowArray", "ipc": e.add_buffer(memoryview(sink.getvalue()))}


def dec_arrow_array(dec: Decoder, d: dict[str, Any]) -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise DecodeError(
            f"the state holds a pandas ArrowDtype array: install {ARROW_HINT} to load it"
        ) from exc
    buf = dec.buffer(field(d, "ipc"))
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(buf))
        schema = reader.schema
        if len(schema) != 1 or schema.names != ["v"]:
            raise DecodeError("an Arrow array must be stored as a one-column IPC stream 'v'")
        chunks = [batch.column(0) for batch in reader]
        chunked = pa.chunked_array(chunks, type=schema.field(0).type)
        for chunk in chunks:
            chunk.validate(full=True)
    except pa.ArrowException as exc:
        raise DecodeError(f"the stored Arrow IPC stream is damaged: {exc}") from exc
    return pd.arrays.ArrowExtensionArray(chunked)


ENCODERS: dict[type[Any], EncodeFn] = {}
_cls = getattr(pd.arrays, "ArrowExtensionArray", None)
if isinstance(_cls, type):
    ENCODERS[_cls] = enc_arrow_array
DECODERS: dict[str, DecodeFn] = {"pd.ArrowArray": dec_arrow_array}
