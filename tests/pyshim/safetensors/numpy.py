"""Stand-in for `safetensors.numpy.save_file`, used by the tests only when the real package is not
installed (it is not on the development machine). It writes the published format: an unsigned
64-bit little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} padded with
spaces to a multiple of 8 bytes, then the tensors' bytes, little-endian, in header order."""
import json
import struct

import numpy as np

DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("uint8"): "U8"}


def save_file(tensors, filename, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(filename, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
