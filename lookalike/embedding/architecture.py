"""EfficientNet-Lite0 as a list of convolutions with BatchNorm folded in (pure numpy).

The network (Tan & Le 2019, the "lite" variant): a 3x3/2 stem, 16 MBConv blocks in 7
stages, a 1x1 head to 1280 channels; ReLU6 everywhere, no squeeze-and-excitation, stem and
head widths fixed. Every convolution is followed by BatchNorm in inference mode, which is an
affine map per channel, so it folds into the convolution's weights and a bias: fewer
operations, and the graph no longer depends on running statistics at all.

TensorFlow's "SAME" padding (what the weights were trained with) pads asymmetrically when
the padding is odd, more at the end; with a fixed input size every pad is known here, so the
graph gets explicit pads instead of a dynamic padding op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lookalike.embedding.weights import WeightsError

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# (repeats, kernel, stride, expand ratio, input channels, output channels) per stage, as in
# efficientnet_lite_builder.py; width and depth multipliers are 1.0 for Lite0.
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class ConvSpec:
    """One convolution with its BatchNorm folded in, and what follows it."""

    name: str
    weight: np.ndarray  # (out, in / groups, k, k), float32
    bias: np.ndarray  # (out,), float32
    stride: int
    groups: int
    pads: tuple[int, int, int, int]  # ONNX order: top, left, bottom, right
    relu6: bool
    out_size: int  # spatial side of the output


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block: its convolutions in order, and whether its input is added back."""

    convs: tuple[ConvSpec, ...]
    residual: bool


@dataclass(frozen=True)
class NetworkSpec:
    input_size: int
    stem: ConvSpec
    blocks: tuple[BlockSpec, ...]
    head: ConvSpec

    @property
    def feature_size(self) -> int:
        return self.head.out_size


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow SAME padding for a square input: (before, after, output size)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def fold_batchnorm(
    weight: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of conv-then-BatchNorm as one convolution (computed in float64)."""
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
    folded = weight.astype(np.float64) * scale[:, None, None, None]
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def _conv(
    state: dict[str, np.ndarray],
    conv: str,
    bn: str,
    size: int,
    stride: int,
    groups: int,
    relu6: bool,
) -> ConvSpec:
    try:
        weight = state[f"{conv}.weight"]
        folded, bias = fold_batchnorm(
            weight,
            state[f"{bn}.weight"],
            state[f"{bn}.bias"],
            state[f"{bn}.running_mean"],
            state[f"{bn}.running_var"],
        )
    except KeyError as exc:
        raise WeightsError(
            f"the weights have no tensor {exc.args[0]!r}: not EfficientNet-Lite0"
        ) from exc
    kernel = weight.shape[-1]
    before, after, out = same_pads(size, kernel, stride)
    return ConvSpec(
        name=conv,
        weight=folded,
        bias=bias,
        stride=stride,
        groups=groups,
        pads=(before, before, after, after),
        relu6=relu6,
        out_size=out,
    )


def lite0(state: dict[str, np.ndarray], input_size: int = 224) -> NetworkSpec:
    """The network of an EfficientNet-Lite0 state dict, for a square input of that size."""
    stem = _conv(state, "_conv_stem", "_bn0", input_size, 2, 1, relu6=True)
    size = stem.out_size
    blocks: list[BlockSpec] = []
    for repeats, kernel, stride, expand, c_in, c_out in STAGES:
        for r in range(repeats):
            inp = c_in if r == 0 else c_out
            s = stride if r == 0 else 1
            prefix = f"_blocks.{len(blocks)}"
            hidden = inp * expand
            convs: list[ConvSpec] = []
            if expand != 1:
                convs.append(
                    _conv(state, f"{prefix}._expand_conv", f"{prefix}._bn0", size, 1, 1, relu6=True)
                )
            depthwise = _conv(
                state, f"{prefix}._depthwise_conv", f"{prefix}._bn1", size, s, hidden, relu6=True
            )
            if depthwise.weight.shape[-1] != kernel:
                raise WeightsError(
                    f"{prefix}: kernel {depthwise.weight.shape[-1]}, expected {kernel}"
                )
            convs.append(depthwise)
            size = depthwise.out_size
            convs.append(
                _conv(state, f"{prefix}._project_conv", f"{prefix}._bn2", size, 1, 1, relu6=False)
            )
            blocks.append(BlockSpec(tuple(convs), residual=(s == 1 and inp == c_out)))
    head = _conv(state, "_conv_head", "_bn1", size, 1, 1, relu6=True)
    if head.weight.shape[0] != HEAD_CHANNELS or stem.weight.shape[0] != STEM_CHANNELS:
        raise WeightsError("stem/head widths are not EfficientNet-Lite0's (32/1280)")
    return NetworkSpec(input_size=input_size, stem=stem, blocks=tuple(blocks), head=head)
