"""The torch-free reader of legacy ``.pth`` files, on the real weights and on crafted files."""

from __future__ import annotations

import collections
import io
import pickle
import sys
import types
from collections.abc import Iterator

import numpy as np
import pytest

from lookalike.embedding.model import weights_path
from lookalike.embedding.weights import LEGACY_MAGIC, LEGACY_PROTOCOL, WeightsError, read_state_dict

# What torch.load (torch 2.13) reads from the same file: shape, float64 sum, first values.
TORCH_READS = {
    "_conv_stem.weight": (
        (32, 3, 3, 3),
        -26.811376610887237,
        [-1.1103360652923584, -1.3087704181671143, -0.010156914591789246],
    ),
    "_blocks.15._project_conv.weight": (
        (320, 1152, 1, 1),
        39.96609939538757,
        [0.03738270327448845, 0.029342927038669586],
    ),
    "_conv_head.weight": ((1280, 320, 1, 1), -21.113805372136994, [0.060557201504707336]),
    "_bn1.running_var": ((1280,), 13721.746045589447, [9.722968101501465]),
    "_fc.bias": ((1000,), -0.04981697298353538, [0.032053910195827484]),
}


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return read_state_dict(weights_path())


def test_reads_every_tensor_of_the_real_weights(state: dict[str, np.ndarray]) -> None:
    assert len(state) == 296
    for name, (shape, total, first) in TORCH_READS.items():
        tensor = state[name]
        assert tensor.shape == shape and tensor.dtype == np.float32
        assert tensor.astype(np.float64).sum() == pytest.approx(total, rel=1e-9)
        assert tensor.ravel()[: len(first)].tolist() == first
    assert state["_blocks.3._bn0.num_batches_tracked"].dtype == np.int64
    assert state["_blocks.3._bn0.num_batches_tracked"].shape == ()
    assert all(np.isfinite(t).all() for t in state.values())


# A tiny legacy file written here the way torch's _legacy_save writes one, with a tensor that
# starts inside its storage and one that is a transposed (non-contiguous) view.


class _FakeStorage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key, self.values = key, values


class _FakeTensor:
    def __init__(
        self, storage: _FakeStorage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:  # only pickled by reference, never run
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    yield torch


def _legacy_bytes(
    torch: types.ModuleType, state: dict[str, _FakeTensor], storages: list[_FakeStorage]
) -> bytes:
    buf = io.BytesIO()
    for header in (
        LEGACY_MAGIC,
        LEGACY_PROTOCOL,
        {
            "protocol_version": 1001,
            "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4},
        },
    ):
        pickle.dump(header, buf, protocol=2)

    class P(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, _FakeStorage):
                kind = torch.FloatStorage if obj.values.dtype == np.float32 else torch.LongStorage
                return ("storage", kind, obj.key, "cpu", obj.values.size, None)
            return None

    P(buf, protocol=2).dump(collections.OrderedDict(state))
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for s in storages:
        buf.write(s.values.size.to_bytes(8, "little"))
        buf.write(s.values.astype(s.values.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue()


def test_offsets_and_strides_of_a_crafted_file(fake_torch: types.ModuleType) -> None:
    values = np.arange(20, dtype=np.float32)
    storage = _FakeStorage("0", values)
    counts = _FakeStorage("1", np.array([7], dtype=np.int64))
    state = {
        "tail": _FakeTensor(storage, 14, (2, 3), (3, 1)),
        "transposed": _FakeTensor(storage, 0, (4, 3), (1, 4)),
        "count": _FakeTensor(counts, 0, (), ()),
    }
    out = read_state_dict(_legacy_bytes(fake_torch, state, [storage, counts]))
    assert out["tail"].tolist() == [[14, 15, 16], [17, 18, 19]]
    assert np.array_equal(out["transposed"], values[:12].reshape(3, 4).T)
    assert out["count"].dtype == np.int64 and int(out["count"]) == 7


def test_refuses_a_pickle_that_names_anything_else() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return os.system, ("echo pwned",)

    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    pickle.dump({"x": Evil()}, buf, protocol=2)
    with pytest.raises(WeightsError, match="refusing to load"):
        read_state_dict(buf.getvalue())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04rest", "zip-format"),
        (pickle.dumps(12345, protocol=2), "wrong magic"),
        (b"", "not a readable"),
        (b"\x00\x01garbage", "not a readable"),
    ],
)
def test_clear_errors_for_files_that_are_not_legacy_weights(data: bytes, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        read_state_dict(data)


def test_a_truncated_file_is_an_error_not_a_short_tensor() -> None:
    data = weights_path().read_bytes()
    with pytest.raises(WeightsError, match="ends inside storage"):
        read_state_dict(data[: len(data) - 1000])
