"""The one preprocessing of EAT's input, shared by scoring, evaluation and training.

As the paper's AVA protocol: resize to S x S without keeping the aspect ratio
(Pillow's bicubic, its default, as the published code used), then ImageNet
mean/std. Split in two so decoders can hand over compact uint8 pixels and the
predictor normalises a whole batch at once, on its own device. The decoders'
half needs no torch, so only the predictor's half imports it: decoding
processes (Ray's decode workers) start without torch's seconds of import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_for_model(image: Image.Image, size: int = 224) -> np.ndarray:
    """(size, size, 3) uint8 RGB pixels of ``image`` squashed to the model's input."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(resized, dtype=np.uint8)  # a writable copy: torch refuses read-only buffers


def normalize_batch(pixels: torch.Tensor | np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 normalised, channels-last in memory, on ``device``."""
    import torch

    batch = torch.as_tensor(pixels).to(device, non_blocking=True)
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 1, 1, 3) * 255
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 1, 1, 3) * 255
    normalised = (batch.float() - mean) / std
    # (B, S, S, 3) -> (B, 3, S, S) as a view: channels-last memory, which the stem convolution prefers.
    return normalised.permute(0, 3, 1, 2)


def preprocess(image: Image.Image, size: int = 224) -> torch.Tensor:
    """(3, size, size) float32 normalised tensor for one image."""
    return normalize_batch(resize_for_model(image, size)[None])[0].contiguous()
