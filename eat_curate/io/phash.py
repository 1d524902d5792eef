"""A 64-bit perceptual hash (DCT pHash) and the Hamming distance that compares two.

The classic pHash: greyscale, squash to 32x32 (LANCZOS), 2-D DCT-II, keep the
8x8 lowest frequencies just past the DC row and column (the DC term and the
pure-horizontal/vertical averages say little about the picture and would
dominate), then one bit per coefficient: above the block's median or not.
Re-encoding, resizing and small edits move a few bits; different pictures
differ in about half of them. The hash is stored as a signed int64 (the SQL
and Parquet integer type), so bit 63 is the sign.

``phash`` hashes one Pillow image; ``phash_tensor`` gives the same hashes for
a batch of pixel tensors, on their device (the GPU decoding path), and
``phash_batch`` brings them to the host. Only those two and their helpers
need torch, and import it themselves: CPU decoding (Ray's decode workers
among it) then starts without torch's seconds of import.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

HASH_SIDE = 8  # 8 x 8 = 64 bits
DCT_SIDE = 32
_MASK64 = (1 << 64) - 1
# Coefficients closer than this count as equal, so that a flat picture (whose
# coefficients are rounding noise around zero) gets one hash on every path.
_DECIMALS = 6


def dct_low_frequencies(image: Image.Image) -> np.ndarray:
    """The (9, 9) top-left DCT coefficients of ``image`` squashed to 32x32 greyscale.

    As scipy's unnormalised 2-D DCT-II (``dctn(grey, type=2)``), but only the
    81 coefficients the hash reads, as two small matrix products (8 us
    against scipy's 38 us here), and no scipy import (0.25 s) in every
    decoding process.
    """
    grey = np.asarray(image.convert("L").resize((DCT_SIDE, DCT_SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    cosines = _cosines()
    return cosines @ grey @ cosines.T


def phash(image: Image.Image) -> int:
    """64-bit DCT perceptual hash of ``image`` as a signed int64."""
    return _hash_of(dct_low_frequencies(image)[1:, 1:].ravel())


def _hash_of(block: np.ndarray) -> int:
    """The hash of the 64 coefficients past the DC row and column, in row-major order."""
    block = np.round(block, _DECIMALS)
    ordered = np.sort(block)  # np.median's value (the mean of the middle two) in a twentieth of its time
    middle = len(block) // 2
    bits = block > (ordered[middle - 1] + ordered[middle]) / 2  # the first coefficient is the highest bit
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def phash_batch(pixels: torch.Tensor) -> list[int]:
    """:func:`phash` of each of (N, 3, H, W) uint8 RGB images, computed together on their device.

    :func:`phash_tensor`, brought to the host as Python ints.
    """
    return phash_tensor(pixels).tolist()


def phash_tensor(pixels: torch.Tensor) -> torch.Tensor:
    """(N,) int64 on the pixels' device: :func:`phash` of each of (N, 3, H, W) uint8 RGB images.

    For the GPU decoding path, where the pixels already are on the GPU: one
    batch of small matrix products instead of a Pillow round trip per image,
    and nothing brought to the host (no synchronisation: the hashes travel
    back with the scores). It repeats Pillow's integer arithmetic (its
    greyscale weights, its 8-bit LANCZOS resampling with 22-bit fixed-point
    weights and rounding after each pass), in float64, where those integers
    are exact, then :func:`_hash_of`'s rounding, median and bit order, so the
    hashes equal :func:`phash`'s bit for bit. Every constant is copied to the
    device once per size and device (cached).
    """
    import torch

    if len(pixels) == 0:
        return torch.zeros(0, dtype=torch.int64, device=pixels.device)
    # Pillow's RGB -> L: (R*19595 + G*38470 + B*7471 + 2**15) >> 16. The weights sum to 2**16,
    # so every partial sum stays under 2**24: exact in float32.
    luma = _luma_weights(pixels.device)
    grey = torch.floor((torch.einsum("nchw,c->nhw", pixels.float(), luma) + 2**15) / 2**16).double()
    height, width = grey.shape[1:]
    rows = _pillow_lanczos_weights(width, DCT_SIDE, pixels.device)  # (32, W)
    columns = _pillow_lanczos_weights(height, DCT_SIDE, pixels.device)  # (32, H)
    squashed = _fixed_point_round(grey @ rows.T)  # horizontal pass first, as Pillow
    squashed = _fixed_point_round(columns @ squashed)  # (N, 32, 32)
    cosines = _dct_matrix(pixels.device)
    coefficients = cosines @ squashed @ cosines.T  # as dct_low_frequencies
    # _hash_of on the device: numpy's round (x * 1e6, to even, / 1e6), numpy's median of 64 values
    # (the mean of the two middle ones), then the bits packed first-highest into a signed int64.
    block = torch.round(coefficients[:, 1:, 1:].reshape(len(pixels), -1), decimals=_DECIMALS)
    middle = block.sort(dim=1).values[:, HASH_SIDE * HASH_SIDE // 2 - 1 : HASH_SIDE * HASH_SIDE // 2 + 1]
    bits = block > (middle[:, 0] + middle[:, 1])[:, None] / 2
    return (bits.long() * _bit_values(pixels.device)).sum(dim=1)


@lru_cache(maxsize=4)
def _luma_weights(device: torch.device) -> torch.Tensor:
    import torch

    return torch.tensor([19595.0, 38470.0, 7471.0]).to(device)


@lru_cache(maxsize=4)
def _bit_values(device: torch.device) -> torch.Tensor:
    """The int64 value of each of the 64 bits, first (the sign bit: -2**63) to last (1).

    A sum of distinct ones never overflows, whatever the order of the additions.
    """
    import torch

    return torch.tensor([-(2**63)] + [2 ** (62 - bit) for bit in range(63)], dtype=torch.int64).to(device)


_PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling


def _fixed_point_round(sums: torch.Tensor) -> torch.Tensor:
    """Pillow's 8-bit rounding of a weighted sum: add half, shift right, clip to 0..255."""
    return ((sums + 2 ** (_PRECISION_BITS - 1)) / 2**_PRECISION_BITS).floor_().clamp_(0, 255)


def _lanczos(x: float) -> float:
    def sinc(value: float) -> float:
        return 1.0 if value == 0.0 else math.sin(math.pi * value) / (math.pi * value)

    return sinc(x) * sinc(x / 3.0) if -3.0 <= x < 3.0 else 0.0


@lru_cache(maxsize=16)
def _pillow_lanczos_weights(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """(out_size, in_size) weights of Pillow's LANCZOS resize along one axis, as its 22-bit integers.

    Pillow's precompute_coeffs and normalize_coeffs_8bpc (Resample.c): each
    output sample weighs the inputs within 3 x the scale of its centre,
    normalised to sum to one, then rounded half away from zero to fixed point.
    """
    import torch

    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 3.0 * filter_scale
    weights = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        taps = np.array([_lanczos((x - centre + 0.5) / filter_scale) for x in range(first, last)])
        if taps.sum() != 0.0:
            taps /= taps.sum()
        weights[out, first:last] = np.trunc(taps * 2**_PRECISION_BITS + np.where(taps < 0, -0.5, 0.5))
    return torch.from_numpy(weights).to(device)  # cached on the device: no copy per batch


@lru_cache(maxsize=1)
def _cosines() -> np.ndarray:
    """The (9, 32) first rows of the unnormalised DCT-II of length 32: 2 cos(pi k (2n + 1) / 64), read-only."""
    k, n = np.arange(HASH_SIDE + 1)[:, None], np.arange(DCT_SIDE)[None, :]
    cosines = 2 * np.cos(np.pi * k * (2 * n + 1) / (2 * DCT_SIDE))
    cosines.flags.writeable = False  # shared by every call (and thread)
    return cosines


@lru_cache(maxsize=4)
def _dct_matrix(device: torch.device) -> torch.Tensor:
    """:func:`_cosines` on ``device``."""
    import torch

    return torch.from_numpy(_cosines().copy()).to(device)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned ints)."""
    return ((a ^ b) & _MASK64).bit_count()
