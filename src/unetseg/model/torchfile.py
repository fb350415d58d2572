"""Read a state dict from PyTorch's legacy (pre-1.6, non-zip) `.pth` format without importing torch.

The legacy file is a run of pickles: a magic number, a protocol version, a dict of system facts, the
object itself (tensors as `torch._utils._rebuild_tensor_v2` calls whose storages are persistent ids),
the list of storage keys, then each storage as an int64 element count and its raw little-endian bytes.
A pickle can run any code it names, so the unpickler resolves only the handful of names a state dict
needs and refuses every other one.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from unetseg.core.errors import DataError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch's storage classes and the numpy type of their elements (bfloat16 has no numpy type).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    """A storage named in the object pickle, before its bytes (which follow the pickle) are read."""

    key: str
    dtype: type
    numel: int
    view: tuple[str, int] | None = None  # (root key, element offset) for old torch's storage views


@dataclass
class _Tensor:
    """A tensor as `_rebuild_tensor_v2` describes it: a strided window onto one storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *_unused) -> _Tensor:
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_unused):
    return data  # a Parameter is its tensor plus requires_grad, which a state dict does not need


class _StorageType:
    """Stands for a torch storage class: only its element type is used."""

    def __init__(self, name: str):
        self.dtype = STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    """An unpickler that knows only the names of a state dict and refuses all others."""

    def __init__(self, file: BinaryIO, path: Path):
        super().__init__(file)
        self.path = path
        self.storages: dict[str, _Storage] = {}  # by root key: what the bytes after the pickle hold

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise DataError(f"{self.path}: refused to load {module}.{name}: not a name a state dict uses")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise DataError(f"{self.path}: unknown persistent id {str(pid)[:60]!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise DataError(f"{self.path}: storage {key} has no known storage type")
        storage = _Storage(str(key), storage_type.dtype, int(numel))
        self.storages.setdefault(storage.key, storage)
        if len(pid) == 6 and pid[5] is not None:
            view_key, view_offset, view_numel = pid[5]
            root = (storage.key, int(view_offset))
            return _Storage(str(view_key), storage_type.dtype, int(view_numel), root)
        return storage


def _array(tensor: _Tensor, buffers: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The tensor's elements as a fresh contiguous float32 array (integer tensors keep their type)."""
    storage = tensor.storage
    key, start = storage.view if storage.view else (storage.key, 0)
    if key not in buffers:
        raise DataError(f"{path}: storage {key} is named by a tensor but not stored")
    flat = buffers[key][start + tensor.offset :]
    if tensor.size and all(n > 0 for n in tensor.size):
        last = sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
        if last >= flat.size:
            raise DataError(f"{path}: a tensor of shape {tensor.size} reaches past its storage {key}")
    strides = tuple(s * flat.itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(flat, tensor.size, strides, writeable=False)
    dtype = np.float32 if np.issubdtype(view.dtype, np.floating) else view.dtype
    return np.array(view, dtype=dtype, order="C")  # C order: the file's strides may be any permutation


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy `.pth` state dict as numpy arrays, by the dict's keys in its order."""
    path = Path(path)
    with open(path, "rb") as file:
        if file.read(2) == b"PK":
            raise DataError(f"{path}: a zip-format .pth (torch >= 1.6), not the legacy format")
        file.seek(0)
        try:
            if _Unpickler(file, path).load() != MAGIC_NUMBER:
                raise DataError(f"{path}: not a legacy .pth file (no torch magic number)")
            if _Unpickler(file, path).load() != PROTOCOL_VERSION:
                raise DataError(f"{path}: unsupported legacy .pth protocol version")
            info = _Unpickler(file, path).load()
            if not isinstance(info, dict) or not info.get("little_endian", True):
                raise DataError(f"{path}: big-endian .pth files are not supported")
            unpickler = _Unpickler(file, path)
            state = unpickler.load()
            keys = _Unpickler(file, path).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as error:
            raise DataError(f"{path}: not a readable legacy .pth file ({type(error).__name__})") from None
        tensors = state.values() if isinstance(state, dict) else [None]
        if not all(isinstance(t, _Tensor) and isinstance(t.storage, _Storage) for t in tensors):
            raise DataError(f"{path}: the object stored is not a state dict of tensors")
        buffers = {}
        for key in map(str, keys):
            if key not in unpickler.storages:
                raise DataError(f"{path}: storage {key} is listed but no tensor names it")
            head = file.read(8)
            if len(head) < 8:
                raise DataError(f"{path}: truncated: storage {key} is missing")
            (numel,) = struct.unpack("<q", head)
            if numel < 0:
                raise DataError(f"{path}: storage {key} has a negative size")
            dtype = np.dtype(unpickler.storages[key].dtype).newbyteorder("<")
            size = numel * dtype.itemsize
            data = file.read(size)
            if len(data) < size:
                raise DataError(f"{path}: truncated: storage {key} has {len(data)} of its {size} bytes")
            buffers[key] = np.frombuffer(data, dtype)
    return {str(name): _array(tensor, buffers, path) for name, tensor in state.items()}
