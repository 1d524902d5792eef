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
sizes: computed, and copied to the device, once per pair of sizes; nothing
else crosses from the host per call (no hidden synchronisation).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

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


def _filter_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` in double precision: each output's first input, tap count, weights.

    Returns ``(first, count, weights)``, weights as (out_size, taps), each row
    summing to one over its ``count`` taps (zero beyond).
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)  # shrinking widens the kernel: antialiasing
    support = BICUBIC_SUPPORT * filter_scale
    taps = int(np.ceil(support)) * 2 + 1
    centres = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centres - support + 0.5).astype(np.int64), 0)  # C's (int): truncation
    count = np.minimum((centres + support + 0.5).astype(np.int64), in_size) - first
    weights = np.zeros((out_size, taps))
    total = np.zeros(out_size)
    for tap in range(taps):  # summed tap by tap, in Pillow's order
        kernel = bicubic_kernel(((tap + first) - centres + 0.5) * (1.0 / filter_scale))
        weights[:, tap] = np.where(tap < count, kernel, 0.0)
        total += weights[:, tap]
    normalised = np.divide(weights, total[:, None], out=weights.copy(), where=total[:, None] != 0.0)
    return first, count, normalised


def _fixed_point(weights: np.ndarray) -> np.ndarray:
    """Weights rounded half away from zero to PRECISION_BITS fixed point, as Pillow's ``normalize_coeffs_8bpc``."""
    scaled = weights * (1 << PRECISION_BITS)
    return np.where(weights < 0, -0.5 + scaled, 0.5 + scaled).astype(np.int64)  # astype truncates, as C's (int)


@functools.lru_cache(maxsize=256)
def resample_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) int64 fixed-point bicubic weights for the whole picture, as Pillow uses them.

    Read-only: it is cached.
    """
    first, count, weights = _filter_taps(in_size, out_size)
    fixed = _fixed_point(weights)
    taps = np.arange(weights.shape[1])
    used = taps[None, :] < count[:, None]
    rows = np.broadcast_to(np.arange(out_size)[:, None], used.shape)
    matrix = np.zeros((out_size, in_size), dtype=np.int64)
    matrix[rows[used], (first[:, None] + taps)[used]] = fixed[used]
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=32)
def _device_weights(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """:func:`resample_weights` as float64 on ``device``, copied there once per pair of sizes."""
    return torch.tensor(resample_weights(in_size, out_size), dtype=torch.float64, device=device)


def _fixed_point_pass(pixels: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    """One bicubic pass along ``dim`` (-1: x, -2: y) of float64 whole-number pixels, rounded as Pillow."""
    matrix = _device_weights(pixels.shape[dim], out_size, pixels.device)
    if dim == -1:
        sums = pixels @ matrix.T
    else:
        sums = matrix @ pixels
    rounding = 1 << (PRECISION_BITS - 1)
    return torch.floor((sums + rounding) / (1 << PRECISION_BITS)).clamp_(0, 255)


def bicubic_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, as Pillow's bicubic along x, then along y."""
    along_x = _fixed_point_pass(images.to(torch.float64), size, dim=-1)
    return _fixed_point_pass(along_x, size, dim=-2).to(torch.uint8)


def _block_sizes(length: int, factor: int, device: torch.device) -> torch.Tensor:
    """Pixels along one side of each block: ``factor``, fewer in a last, partial block (built on the device)."""
    starts = torch.arange(0, length, factor, device=device)
    return (length - starts).clamp_(max=factor)


def box_reduce(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) uint8 averaged over ``factor`` x ``factor`` blocks, as Pillow's ``Image.reduce(factor)``."""
    if factor == 1:
        return images
    height, width = images.shape[-2:]
    rows, columns = _block_sizes(height, factor, images.device), _block_sizes(width, factor, images.device)
    padded = F.pad(images, (0, len(columns) * factor - width, 0, len(rows) * factor - height))
    blocks = padded.reshape(*images.shape[:-2], len(rows), factor, len(columns), factor)
    sums = blocks.sum(dim=(-3, -1), dtype=torch.int64)
    counts = rows[:, None] * columns[None, :]
    # Pillow's multiplier, 2**32 / (256 * count) in float32 then truncated: float32 division is exact-rounded
    # (IEEE) on CPUs and CUDA alike, so the same integers come out on both.
    multipliers = (2.0**32 / (256 * counts).float()).long()
    return (((sums + counts // 2) * multipliers) >> 24).to(torch.uint8)


def resize_batch_for_model(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) uint8 upright pictures of one size -> (N, 3, size, size) uint8 model pixels.

    The same pixels as :func:`eat_curate.io.resize.resize_for_model` gives each of them.
    """
    height, width = images.shape[-2:]
    return bicubic_resize(box_reduce(images, pre_reduction(width, height, size)), size)
