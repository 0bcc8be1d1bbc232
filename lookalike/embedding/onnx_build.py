"""Write a ``NetworkSpec`` as an ONNX graph: RGB pixels in, pooled 1280-d features out.

The graph takes float32 pixels in 0..255, shape (batch, 3, size, size), normalises them
as the weights were trained ((x - 127) / 128), runs the folded convolutions (explicit
asymmetric pads for TensorFlow's SAME, ``Clip`` 0..6 for ReLU6, ``Add`` for residuals) and
pools the head's feature map to one vector per image: the plain average
(``GlobalAveragePool``), or generalised-mean pooling (GeM, mean of x^p then the p-th root),
which weighs strong activations more. Same spec and pooling, same bytes: the build is
deterministic, so a converted file can be checked against a fresh conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lookalike.embedding.architecture import HEAD_CHANNELS, ConvSpec, NetworkSpec

OPSET = 17
INPUT = "pixels"
OUTPUT = "features"
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0
GEM_EPS = 1e-6  # GeM's clamp: x^p of an exact zero is fine, its p-th root's gradient is not


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv(self, x: str, spec: ConvSpec, clip: tuple[str, str]) -> str:
        w = self.const(f"{spec.name}.w", spec.weight)
        b = self.const(f"{spec.name}.b", spec.bias)
        k = int(spec.weight.shape[-1])
        y = self.node(
            "Conv",
            [x, w, b],
            f"{spec.name}.conv",
            kernel_shape=[k, k],
            strides=[spec.stride, spec.stride],
            pads=list(spec.pads),
            group=spec.groups,
        )
        if spec.relu6:
            y = self.node("Clip", [y, *clip], f"{spec.name}.relu6")
        return y


def build(spec: NetworkSpec, pooling: str = "avg", gem_p: float = 3.0) -> bytes:
    """The serialised ONNX model of the network, with the given pooling of its head."""
    g = _Graph()
    clip = (
        g.const("relu6.min", np.array(0.0, np.float32)),
        g.const("relu6.max", np.array(6.0, np.float32)),
    )
    x = g.node(
        "Sub", [INPUT, g.const("pixel.mean", np.array(PIXEL_MEAN, np.float32))], "pixels.centred"
    )
    x = g.node(
        "Div", [x, g.const("pixel.scale", np.array(PIXEL_SCALE, np.float32))], "pixels.normalised"
    )
    x = g.conv(x, spec.stem, clip)
    for n, block in enumerate(spec.blocks):
        inp = x
        for conv in block.convs:
            x = g.conv(x, conv, clip)
        if block.residual:
            x = g.node("Add", [x, inp], f"_blocks.{n}.residual")
    x = g.conv(x, spec.head, clip)
    if pooling == "avg":
        x = g.node("GlobalAveragePool", [x], "pooled")
    elif pooling == "gem":
        x = g.node("Max", [x, g.const("gem.eps", np.array(GEM_EPS, np.float32))], "gem.clamped")
        x = g.node("Pow", [x, g.const("gem.p", np.array(gem_p, np.float32))], "gem.pow")
        x = g.node("GlobalAveragePool", [x], "gem.mean")
        x = g.node("Pow", [x, g.const("gem.inv_p", np.array(1.0 / gem_p, np.float32))], "pooled")
    else:
        raise ValueError(f"unknown pooling {pooling!r}")
    g.node("Flatten", [x], OUTPUT, axis=1)

    size = spec.input_size
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0_features",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", HEAD_CHANNELS])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lookalike",
        ir_version=8,
    )
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString(deterministic=True)
    return data
