"""Read a legacy (pre-zip) PyTorch ``.pth`` state dict into numpy arrays, without torch.

Why not torch: the runtime needs onnxruntime only, and torch is a multi-GB install. Why a
restricted unpickler: a ``.pth`` is a pickle, and a pickle may call anything it names; this
one resolves only the handful of names a state dict uses (an ``OrderedDict``, typed storages,
``_rebuild_tensor_v2``) and refuses every other.

The legacy layout (torch.serialization's ``_legacy_save``) is five things in a row: a pickled
magic number, a pickled protocol version (1001), a pickled dict of system facts (endianness,
type sizes), the object pickle whose tensors point at storages through persistent ids
``('storage', StorageType, key, location, numel, view_metadata)``, a pickled list of storage
keys, and then, for each key in that order, the storage as a little-endian int64 element
count followed by its raw bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's typed storages -> the numpy dtype of their elements.
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightsError(ValueError):
    """The file is not a legacy torch state dict we can read; the message says why."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


class _Storage:
    """A storage named by the object pickle, filled once the raw bytes are read."""

    def __init__(self, dtype: np.dtype[Any], numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise WeightsError("a tensor points at a storage the file never wrote")
        if not self.size:
            return data[self.offset : self.offset + 1].reshape(()).copy()
        itemsize = data.dtype.itemsize
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        if needed >= data.size:
            raise WeightsError(f"a tensor of shape {self.size} overruns its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(
    storage: _Storage,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRef:
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise WeightsError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise WeightsError("storage views are not supported")
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"unknown storage type {storage_type!r}")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return storage


class _PlainUnpickler(pickle.Unpickler):
    """The small header pickles: plain data only, no names resolved."""

    def find_class(self, module: str, name: str) -> Any:
        raise WeightsError(f"refusing to load {module}.{name} from a header pickle")


def _load_plain(file: IO[bytes]) -> Any:
    return _PlainUnpickler(file).load()


def read_state_dict(source: Path | bytes) -> dict[str, np.ndarray]:
    """Every tensor of a legacy ``.pth`` state dict, by name, as a contiguous numpy array."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data[:4] == b"PK\x03\x04":
        raise WeightsError("this is a zip-format torch file; only the legacy format is read here")
    file = io.BytesIO(data)
    try:
        magic = _load_plain(file)
        if magic != LEGACY_MAGIC:
            raise WeightsError("not a legacy torch file (wrong magic number)")
        protocol = _load_plain(file)
        if protocol != LEGACY_PROTOCOL:
            raise WeightsError(f"unsupported legacy torch protocol {protocol!r}")
        sys_info = _load_plain(file)
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise WeightsError("only little-endian torch files are supported")
        unpickler = _StateDictUnpickler(file)
        state = unpickler.load()
        keys = _load_plain(file)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise WeightsError(f"not a readable legacy torch file ({exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"the file holds a {type(state).__name__}, not a state dict")
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise WeightsError("the storage key list does not match the storages the tensors use")
    for key in keys:
        storage = unpickler.storages[key]
        count = int.from_bytes(file.read(8), "little", signed=True)
        if count != storage.numel:
            raise WeightsError(f"storage {key} holds {count} elements, expected {storage.numel}")
        raw = file.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise WeightsError(f"the file ends inside storage {key}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise WeightsError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
        out[str(name)] = value.materialise()
    return out
