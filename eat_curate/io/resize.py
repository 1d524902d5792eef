"""Squashing a picture to the model's input: the one resize every decoder, trainer and benchmark uses.

As the paper's AVA protocol: S x S without keeping the aspect ratio, with
Pillow's bicubic (its default, as the published code used). It needs no
torch, so decoding processes (Ray's decode workers) start without torch's
seconds of import; normalising the pixels is the predictor's half
(``eat_curate.scoring.preprocess``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_for_model(image: Image.Image, size: int = 224) -> np.ndarray:
    """(size, size, 3) uint8 RGB pixels of ``image`` squashed to the model's input."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(resized, dtype=np.uint8)  # a writable copy: torch refuses read-only buffers
