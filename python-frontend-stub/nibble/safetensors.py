"""Reading and writing safetensors files with numpy only.

Format: an 8-byte little-endian header length, a JSON header mapping each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
into the data that follows the header), then the data. Reading maps the file
(numpy.memmap): nothing is copied until a tensor is used.
"""

import json
import os
import struct
import tempfile

import numpy as np

from .errors import NibbleError

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits; see bf16_to_f32
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}
_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16",
          np.dtype("i1"): "I8", np.dtype("u1"): "U8",
          np.dtype("<i4"): "I32", np.dtype("<i8"): "I64"}


def bf16_to_f32(bits):
    """bfloat16 bit patterns (uint16) to float32, exactly."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def read(path):
    """Maps `path`; returns {name: (dtype name, numpy array view)}.

    BF16 tensors come back as their uint16 bit patterns with dtype name
    "BF16" (see bf16_to_f32). Raises NibbleError naming the file and what is
    wrong for a malformed file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise NibbleError(f"{path}: {size} bytes, too short for a "
                              "safetensors header length (8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise NibbleError(f"{path}: header length {n} at offset 0 runs "
                              f"past the end of the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise NibbleError(f"{path}: header at offset 8 is not JSON: {e}")
    # Copy-on-write: arrays can be edited in place; the file never changes.
    data = np.memmap(path, dtype=np.uint8, mode="c", offset=8 + n) \
        if size > 8 + n else np.zeros(0, np.uint8)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info.get("dtype")
        if dt not in _DTYPES:
            raise NibbleError(f"{path}: tensor {name}: dtype {dt!r} is not "
                              f"one of {sorted(_DTYPES)}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * _DTYPES[dt].itemsize or end > data.size:
            raise NibbleError(
                f"{path}: tensor {name}: data_offsets [{begin}, {end}) do not "
                f"hold {count} {dt} values inside the {data.size} data bytes")
        out[name] = (dt, data[begin:end].view(_DTYPES[dt]).reshape(shape))
    return out


def write(path, tensors, metadata=None):
    """Writes {name: numpy array} (float32/float16/int8/...) to `path`
    atomically (a temporary file in the same directory, then a rename):
    never a partial file."""
    header = {}
    offset = 0
    arrays = []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = _NAMES.get(a.dtype.newbyteorder("<"))
        if dt is None:
            raise NibbleError(f"tensor {name}: dtype {a.dtype} cannot be "
                              "stored (float32, float16, int8, uint8, int32, "
                              "int64)")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".nibble-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for a in arrays:
                f.write(a.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
