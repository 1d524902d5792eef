"""``resize_for_model`` on a torch device, bit for bit: for pictures decoded on the GPU.

The CPU path squashes a picture with Pillow (:mod:`eat_curate.io.resize`):
``Image.reduce`` by :func:`~eat_curate.io.resize.pre_reduction`, then
Pillow's bicubic. The model tells apart pixels that differ by one grey level
here and there (torch's own antialiased bicubic, which rounds once instead of
after each pass, moved scores of the built-in model by 0.035 on average), so
this module repeats Pillow's integer arithmetic exactly instead:

- ``reduce``: each output pixel is ``((sum + n // 2) * m) >> 24`` over the
  ``n`` pixels of its block (fewer in a last, partial row or column), with
  ``m = uint32(float32(2**32) / float32(256 * n))``;
- bicubic (a = -0.5), one pass along x then one along y, each with the
  weights Pillow computes in double precision and rounds to 22-bit fixed
  point, and each rounding to uint8: ``clip((2**21 + sum(p * w)) >> 22)``.

The fixed-point sums are whole numbers below 2**31, so float64 matrix
products hold them exactly on any device. The weights depend only on the
sizes and are computed once per pair of sizes.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from eat_curate.io.resize import pre_reduction

PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling: 32 - 8 - 2
BICUBIC_A = -0.5
BICUBIC_SUPPORT = 2.0


def bicubic_kernel(x: np.ndarray) -> np.ndarray:
    """Pillow's bicubic filter, operation for operation (the order matters for the last bit)."""
    x = np.abs(x)
    near = ((BICUBIC_A + 2.0) * x - (BICUBIC_A + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * BICUBIC_A
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=256)
def resample_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) int64 fixed-point bicubic weights, as Pillow's ``precompute_coeffs``.

    For the whole picture (Pillow's default box); read-only (it is cached).
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filter_scale
    taps = int(np.ceil(support)) * 2 + 1
    centres = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centres - support + 0.5).astype(np.int64), 0)  # C's (int): truncation
    count = np.minimum((centres + support + 0.5).astype(np.int64), in_size) - first
    raw = np.zeros((out_size, taps))
    total = np.zeros(out_size)
    for tap in range(taps):  # summed tap by tap, in Pillow's order
        used = tap < count
        raw[:, tap] = np.where(used, bicubic_kernel(((tap + first) - centres + 0.5) * (1.0 / filter_scale)), 0.0)
        total += raw[:, tap]
    normalised = np.divide(raw, total[:, None], out=raw.copy(), where=total[:, None] != 0.0)
    fixed = np.where(normalised < 0, -0.5 + normalised * (1 << PRECISION_BITS),
                     0.5 + normalised * (1 << PRECISION_BITS)).astype(np.int64)
    weights = np.zeros((out_size, in_size), dtype=np.int64)
    rows = np.repeat(np.arange(out_size), taps)
    columns = (first[:, None] + np.arange(taps)).ravel()
    inside = (np.arange(taps)[None, :] < count[:, None]).ravel()
    weights[rows[inside], columns[inside]] = fixed.ravel()[inside]
    weights.flags.writeable = False
    return weights


def _fixed_point_pass(pixels: torch.Tensor, weights: np.ndarray, dim: int) -> torch.Tensor:
    """One bicubic pass along ``dim`` (-1: x, -2: y) of float64 whole-number pixels, rounded as Pillow."""
    matrix = torch.from_numpy(weights).to(pixels.device, torch.float64)
    if dim == -1:
        sums = pixels @ matrix.T
    else:
        sums = matrix @ pixels
    rounding = 1 << (PRECISION_BITS - 1)
    return torch.floor((sums + rounding) / (1 << PRECISION_BITS)).clamp_(0, 255)


def bicubic_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, as Pillow's ``resize((size, size), BICUBIC)``."""
    height, width = images.shape[-2:]
    along_x = _fixed_point_pass(images.to(torch.float64), resample_weights(width, size), dim=-1)
    return _fixed_point_pass(along_x, resample_weights(height, size), dim=-2).to(torch.uint8)


@functools.lru_cache(maxsize=64)
def _reduce_multiplier(count: int) -> int:
    """Pillow's ``division_UINT32(count, 8)``: 2**32 / (256 * count) in float32, truncated."""
    return int(np.float32(2.0**32) / np.float32(256 * count))


def _block_counts(length: int, factor: int) -> list[int]:
    """Pixels along one side of each block: ``factor``, and what is left for a last, partial block."""
    counts = [factor] * (length // factor)
    return counts + [length % factor] if length % factor else counts


def box_reduce(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) uint8 averaged over ``factor`` x ``factor`` blocks, as Pillow's ``Image.reduce(factor)``."""
    if factor == 1:
        return images
    height, width = images.shape[-2:]
    rows, columns = _block_counts(height, factor), _block_counts(width, factor)
    padded = torch.nn.functional.pad(images, (0, len(columns) * factor - width, 0, len(rows) * factor - height))
    blocks = padded.reshape(*images.shape[:-2], len(rows), factor, len(columns), factor)
    sums = blocks.sum(dim=(-3, -1), dtype=torch.int64)
    counts = np.outer(rows, columns)
    amends = torch.from_numpy(counts // 2).to(images.device)
    multipliers = torch.from_numpy(np.vectorize(_reduce_multiplier)(counts).astype(np.int64)).to(images.device)
    return (((sums + amends) * multipliers) >> 24).to(torch.uint8)


def resize_batch_for_model(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) uint8 upright pictures of one size -> (N, 3, size, size) uint8 model pixels.

    The same pixels as :func:`eat_curate.io.resize.resize_for_model` gives each of them.
    """
    height, width = images.shape[-2:]
    return bicubic_resize(box_reduce(images, pre_reduction(width, height, size)), size)
