"""The predictor's half of EAT's preprocessing, shared by scoring, evaluation and training.

Decoders hand over compact uint8 pixels already squashed to the model's input
(``eat_curate.io.resize``); here a whole batch is normalised with ImageNet
mean/std at once, on the model's device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from eat_curate.io.resize import resize_for_model

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
