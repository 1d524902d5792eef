"""The batch predictor: one EAT on one device, batches of pixels in, score distributions out.

Plain Python with no engine in it: the in-process engine calls it directly,
and a Ray actor holds one per GPU. An image's outputs never depend on the
other images in its batch.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eat_curate.model.checkpoint import LoadedModel, ModelCard
from eat_curate.model.eat import score_moments
from eat_curate.model.model_store import ModelStore
from eat_curate.scoring.preprocess import normalize_batch

DTYPES = ("auto", "fp32", "bf16")


class UntrainedModelWarning(UserWarning):
    """Scores from a model with random weights mean nothing."""


@dataclass
class Prediction:
    """Per image: the 10-bin distribution, its mean (1-10) and spread."""

    probabilities: np.ndarray  # (N, 10) float32
    mean: np.ndarray  # (N,) float32
    std: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.mean)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX on this CPU: bf16 matmuls then run about 3x faster than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype == "fp32":
        return torch.float32
    if dtype == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32


def warn_if_untrained(card: ModelCard) -> None:
    """Every run with an untrained model says so: its scores are noise."""
    if not card.trained:
        warnings.warn(
            f"model {card.name!r} is untrained (random weights): its scores mean nothing. "
            "Import published EAT weights (`eat-curate models import`) or train one.",
            UntrainedModelWarning,
            stacklevel=3,
        )


class Predictor:
    """Scores batches of (B, S, S, 3) uint8 pixels with one model on one device."""

    def __init__(self, loaded: LoadedModel, device: str = "auto", dtype: str = "auto") -> None:
        self.card: ModelCard = loaded.card
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = loaded.model.eval().to(self.device, memory_format=torch.channels_last)
        warn_if_untrained(self.card)

    @classmethod
    def from_store(
        cls, ref: str | Path, store: ModelStore | None = None, device: str = "auto", dtype: str = "auto"
    ) -> "Predictor":
        return cls((store or ModelStore()).load(ref), device=device, dtype=dtype)

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def dtype_name(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    @torch.inference_mode()
    def predict_tensor(self, images: torch.Tensor) -> Prediction:
        """Score an already normalised (B, 3, S, S) float batch."""
        images = images.to(self.device, non_blocking=True)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)
        with autocast:
            logits = self.model(images)
        distribution = self.model.distribution(logits)
        mean, std = score_moments(distribution)
        return Prediction(
            probabilities=distribution.cpu().numpy().astype(np.float32),
            mean=mean.cpu().numpy().astype(np.float32),
            std=std.cpu().numpy().astype(np.float32),
        )

    def predict(self, pixels: np.ndarray | torch.Tensor) -> Prediction:
        """Score (B, S, S, 3) uint8 pixels produced by ``resize_for_model``."""
        if len(pixels) == 0:
            empty = np.zeros((0,), dtype=np.float32)
            return Prediction(np.zeros((0, 10), dtype=np.float32), empty, empty.copy())
        shape = tuple(pixels.shape[1:])
        expected = (self.input_size, self.input_size, 3)
        if shape != expected:
            raise ValueError(f"pixels of shape {shape} given to a model that takes {expected}")
        return self.predict_tensor(normalize_batch(pixels, self.device))
