"""Squashing a picture to the model's input: the one resize every decoder, trainer and benchmark uses.

As the paper's AVA protocol: S x S without keeping the aspect ratio, with
Pillow's bicubic (its default, as the published code used), which filters
as it shrinks (antialiased: its kernel widens with the scale). It needs no
torch, so decoding processes (Ray's decode workers) start without torch's
seconds of import; normalising the pixels is the predictor's half
(``eat_curate.scoring.preprocess``).

One rule, on every path, so that an image gets the same pixels (hence the
same score) however it is decoded: a picture may first be averaged down by
a power of two, but only while its short side stays longer than
``PRE_REDUCTION_MARGIN`` times the model's input; one bicubic resize does
the rest. A JPEG decoder may do that first reduction itself, in the DCT
domain (libjpeg's scaled decoding, Pillow's ``draft``: see
:func:`draft_request`); whatever it leaves, :func:`resize_for_model` does by
averaging (:func:`pre_reduction` of what it is given). The GPU decoder
(``eat_curate.scoring.gpu_decode``) does the same two steps bit for bit.

Why a margin: libjpeg's DCT-scaled decoding and averaging give slightly
different reduced pictures (each rounded to 8 bits), and a model trained on
sharpness sees the difference when the bicubic that follows has few source
pixels per output pixel. Drafting down to the input size itself (the rule
before this one) moved the built-in model's scores by 0.08-0.10 on average
and up to 0.6 on real photos; keeping the short side over three times the
input moves them by 0.02-0.045 (up to 0.17). Not zero: pictures that are
averaged (full decode, GPU path, non-JPEG formats) get identical pixels whatever
decodes them; drafted JPEGs do not. ``bench decode`` measures it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Chosen by measurement (bench decode, built-in model, Debian's wallpaper photos and 12/24 MP copies):
# 3 keeps 70-85% of the speed of drafting down to the input and moves scores 2-4x less; 4 moves them
# less again on 4-12 MP photos but costs a third of the speed there; 2 is no faster at 12 MP. It is also
# the reducing gap the built-in model's training pictures were made with (training/recipes/crops.py).
PRE_REDUCTION_MARGIN = 3


def least_side(size: int) -> int:
    """The short side a picture bound for a ``size`` model input must keep (exceed) when pre-reduced."""
    return PRE_REDUCTION_MARGIN * size


def pre_reduction(width: int, height: int, size: int) -> int:
    """The power of two to average a ``width`` x ``height`` picture down by before the bicubic resize.

    The largest that leaves the short side longer than :func:`least_side`.
    "Longer than", not "at least": a reduced side is rounded up
    (``ceil(side / factor)``), and ``ceil(side / a) > n`` exactly when
    ``side > a * n``, so a picture already reduced by a power of two ``a``
    gets the rest of the same total factor.
    """
    factor = 1
    while min(width, height) > 2 * factor * least_side(size):
        factor *= 2
    return factor


def draft_request(size: int) -> tuple[int, int]:
    """The size to pass to Pillow's ``draft`` so a JPEG's DCT scaling reduces no further than the rule.

    Pillow picks the largest scale (1/2, 1/4, 1/8) that keeps both sides
    at least the request; asking one pixel more keeps them longer than
    :func:`least_side`, as :func:`pre_reduction` wants.
    """
    return least_side(size) + 1, least_side(size) + 1


def resize_for_model(image: Image.Image, size: int = 224) -> np.ndarray:
    """(size, size, 3) uint8 RGB pixels of ``image`` squashed to the model's input, by the one rule."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    factor = pre_reduction(image.width, image.height, size)
    if factor > 1:
        image = image.reduce(factor)
    # Along x, then along y, as two calls: Pillow picks the order itself for a two-axis resize (since
    # Pillow 13, y first for some shapes), and each order rounds differently; this one is fixed.
    along_x = image.resize((size, image.height), Image.Resampling.BICUBIC)
    resized = along_x.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(resized, dtype=np.uint8)  # a writable copy: torch refuses read-only buffers
