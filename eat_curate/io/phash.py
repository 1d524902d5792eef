"""A 64-bit perceptual hash (DCT pHash) and the Hamming distance that compares two.

The classic pHash: greyscale, squash to 32x32 (LANCZOS), 2-D DCT-II, keep the
8x8 lowest frequencies just past the DC row and column (the DC term and the
pure-horizontal/vertical averages say little about the picture and would
dominate), then one bit per coefficient: above the block's median or not.
Re-encoding, resizing and small edits move a few bits; different pictures
differ in about half of them. The hash is stored as a signed int64 (the SQL
and Parquet integer type), so bit 63 is the sign.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.fft import dctn

HASH_SIDE = 8  # 8 x 8 = 64 bits
DCT_SIDE = 32
_MASK64 = (1 << 64) - 1


def dct_low_frequencies(image: Image.Image) -> np.ndarray:
    """The (9, 9) top-left DCT coefficients of ``image`` squashed to 32x32 greyscale."""
    grey = image.convert("L").resize((DCT_SIDE, DCT_SIDE), Image.Resampling.LANCZOS)
    coefficients = dctn(np.asarray(grey, dtype=np.float64), type=2)
    return coefficients[: HASH_SIDE + 1, : HASH_SIDE + 1]


def phash(image: Image.Image) -> int:
    """64-bit DCT perceptual hash of ``image`` as a signed int64."""
    block = dct_low_frequencies(image)[1:, 1:]
    bits = (block > np.median(block)).ravel()  # row-major: the first coefficient is the highest bit
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned ints)."""
    return ((a ^ b) & _MASK64).bit_count()
