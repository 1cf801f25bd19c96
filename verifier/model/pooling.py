"""Pooling written with the ops the bounds already know: depthwise convolutions and relus.

AveragePool is a depthwise convolution with weights 1/(kh*kw), plus a per-position factor where the
divisor counts only the real (not padded) elements. MaxPool is a tree of pairwise maxima,
max(a, b) = relu(a - b) + b: every level is one convolution for the differences, a relu, one for the
"b" terms and one that adds the relu outputs back, so ReLU-split branch and bound can split on the
pooling's own decisions as on any other relu. The functions here only build the weights; the
translator emits the nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MaxLevel:
    """One level of the pairwise-maximum tree over `n` candidates per channel (kept in channels
    c*n ... c*n + n-1 of the level's input): pairs (2j, 2j+1) for j < n // 2, an odd last one passed on.

    diff: weights (C * pairs, n_in, kh, kw) of a_j - b_j; select: those of the b_j and the odd one,
    (C * out, n_in, kh, kw); embed: 1x1 weights (C * out, pairs, 1, 1) placing relu(a_j - b_j) among
    the `out` candidates of the next level. All three are depthwise (groups = C).
    """

    diff: torch.Tensor
    select: torch.Tensor
    embed: torch.Tensor
    out: int


def average_weights(channels: int, kernel: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Depthwise conv weights (C, 1, kh, kw) of the mean over a window."""
    kh, kw = kernel
    return torch.full((channels, 1, kh, kw), 1.0 / (kh * kw), dtype=dtype)


def average_divisor_fix(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                        padding: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """(1, H_out, W_out) factors turning the mean over a padded window (count_include_pad) into the mean
    over its real elements only (ONNX's default count_include_pad=0)."""
    ones = torch.ones((1, 1) + tuple(in_hw), dtype=torch.float64)
    with_pad = F.avg_pool2d(ones, kernel, stride, padding, count_include_pad=True)
    without = F.avg_pool2d(ones, kernel, stride, padding, count_include_pad=False)
    return (without / with_pad)[0].to(dtype)


def max_levels(channels: int, kernel: tuple[int, int], dtype: torch.dtype) -> list[MaxLevel]:
    """The levels of the pairwise-maximum tree of a kh x kw window. The first level reads the window
    itself (kernel kh x kw, the candidates are its positions in row-major order); later levels read
    the previous level's candidates (1x1 kernels over n channels per input channel)."""
    kh, kw = kernel
    n = kh * kw
    basis = torch.eye(n, dtype=dtype).reshape(n, 1, kh, kw)  # candidate i of the first level
    levels = []
    while n > 1:
        pairs, odd = n // 2, n % 2
        out = pairs + odd
        diff = torch.stack([basis[2 * j] - basis[2 * j + 1] for j in range(pairs)])
        select = torch.stack([basis[2 * j + 1] for j in range(pairs)] + ([basis[n - 1]] if odd else []))
        embed = torch.eye(out, pairs, dtype=dtype).reshape(out, pairs, 1, 1)
        levels.append(MaxLevel(_per_channel(diff, channels), _per_channel(select, channels),
                               _per_channel(embed, channels), out))
        n = out
        basis = torch.eye(n, dtype=dtype).reshape(n, n, 1, 1)
    return levels


def _per_channel(w: torch.Tensor, channels: int) -> torch.Tensor:
    """The same depthwise filters for every channel: (k, n, kh, kw) -> (C * k, n, kh, kw)."""
    return w.repeat(channels, 1, 1, 1)
