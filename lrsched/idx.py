"""The IDX file format (LeCun's MNIST format): read, verify and write, with clear errors.

An IDX file is a magic number (two zero bytes, a type code, the number of dimensions), one
big-endian ``uint32`` per dimension, then the data, big-endian. Files are often gzip-compressed.

Errors (the dataset modules add two more, see :mod:`lrsched.fetch`)::

    DataError          base of every dataset error
    ├── IdxFormatError not an IDX file, truncated, trailing bytes, or a broken gzip stream
    └── ChecksumError  a file whose sha256 is not the published one
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from pathlib import Path

import numpy as np


class DataError(RuntimeError):
    """Base of the dataset errors."""


class IdxFormatError(DataError, ValueError):
    """A file that is not a well-formed IDX file (or gzip of one)."""


class ChecksumError(DataError):
    """A file whose sha256 differs from the published one."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{path} has sha256 {actual}, but the published file has {expected}; the file is "
            "corrupt or a different version: delete it and fetch it again"
        )


#: IDX type codes (the third byte of the magic number) and their big-endian numpy types.
_IDX_TYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def parse_idx(raw: bytes, *, name: str = "the data") -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into an array in native byte order.

    Raises:
        IdxFormatError: a broken gzip stream, a wrong magic number, too few or too many bytes for
            the dimensions the header declares.
    """
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise IdxFormatError(
                f"{name} is not a complete gzip file ({error}); it is truncated or corrupt: "
                "delete it and fetch it again"
            ) from None
    if len(raw) < 4:
        raise IdxFormatError(f"{name} holds {len(raw)} bytes, too few for an IDX header")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise IdxFormatError(
            f"{name} does not start with an IDX magic number (got 0x{raw[:4].hex()}; expected "
            "00 00, a type code such as 08 for unsigned bytes, and the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(
            f"{name} is truncated inside its header ({len(raw)} of {header} bytes)"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise IdxFormatError(
            f"{name} is truncated: its header declares dimensions {dims} ({expected} bytes of "
            f"data) but only {actual} bytes follow; delete it and fetch it again"
        )
    if actual > expected:
        raise IdxFormatError(
            f"{name} has {actual - expected} bytes after the {expected} its header declares "
            f"(dimensions {dims}); it is not a valid IDX file"
        )
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: Path, *, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain), checking its sha256 first when one is given.

    Raises:
        ChecksumError: the file's sha256 is not `sha256`.
        IdxFormatError: the file is not a well-formed IDX file.
    """
    raw = Path(path).read_bytes()
    if sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha256:
            raise ChecksumError(Path(path), sha256, actual)
    return parse_idx(raw, name=str(path))


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> None:
    """Write `array` as an IDX file (gzip-compressed when `compress`): the inverse of read_idx."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    array = np.asarray(array)
    code = codes[array.dtype.newbyteorder("=")]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
