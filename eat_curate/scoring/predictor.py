"""The batch predictor: one EAT on one device, batches of pixels in, score distributions out.

Plain Python with no engine in it: the in-process engine calls it directly,
and a Ray actor holds one per GPU. An image's outputs never depend on the
other images in its batch.

Two ways in: :meth:`Predictor.predict` (numpy pixels in, numpy scores out)
and :meth:`Predictor.scores_of_pixels` (a device tensor in, one packed
device tensor out: the in-process engine's hot path, which queues work and
waits for nothing). On a GPU the forward can be compiled
(``torch.compile``; ``cuda_graphs`` replays it as CUDA graphs too) at a
fixed batch size: smaller batches are padded to it, larger ones split.
``score`` compiles by default on a GPU (``compile=None``: auto); other
callers (a Ray actor, benchmarks) compile only when they ask.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eat_curate.model.card import ModelCard
from eat_curate.model.checkpoint import LoadedModel
from eat_curate.model.eat import score_moments
from eat_curate.model.model_store import ModelStore
from eat_curate.scoring.preprocess import IMAGENET_MEAN, IMAGENET_STD

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


def resolve_compile(compile: bool | None, cuda_graphs: bool, device: torch.device) -> bool:
    """Whether to compile the forward: as asked (None: on a GPU), never on a CPU. CUDA graphs need compiling.

    On a CPU the model runs fused oneDNN kernels (``eat_curate.model.eat.linear``)
    that inductor cannot compile; they are the CPU's fast path already.
    """
    cuda = device.type == "cuda"
    if (compile or cuda_graphs) and not cuda:
        raise ValueError("torch.compile and CUDA graphs are for CUDA devices (on a CPU the model already "
                         "runs fused oneDNN kernels)")
    return cuda_graphs or (cuda if compile is None else compile)  # CUDA graphs replay the compiled forward


def padded_size(count: int, fixed: int | None) -> int:
    """The batch a compiled forward runs for ``count`` images: ``fixed``, else the next power of two.

    Powers of two bound the shapes compiled when no batch size was fixed
    (a Ray actor's batches vary): at most one compilation per doubling.
    """
    return fixed if fixed else 1 << max(0, count - 1).bit_length()


class Predictor:
    """Scores batches of (B, S, S, 3) uint8 pixels with one model on one device."""

    def __init__(self, loaded: LoadedModel, device: str = "auto", dtype: str = "auto",
                 compile: bool | None = False, cuda_graphs: bool = False) -> None:
        """``compile``: ``torch.compile`` the forward (None: on a GPU, not on a CPU); ``cuda_graphs``: and
        replay it as CUDA graphs (``mode="reduce-overhead"``), on a GPU only."""
        self.card: ModelCard = loaded.card
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = loaded.model.eval().to(self.device, memory_format=torch.channels_last)
        self.compiled = resolve_compile(compile, cuda_graphs, self.device)
        self.cuda_graphs = cuda_graphs
        self.fixed_batch: int | None = None  # the compiled forward's batch size; None: powers of two
        # ImageNet statistics in pixel units, on the device once (not copied there per batch).
        self._mean = (torch.tensor(IMAGENET_MEAN) * 255).view(1, 1, 1, 3).to(self.device)
        self._std = (torch.tensor(IMAGENET_STD) * 255).view(1, 1, 1, 3).to(self.device)
        self._compiled_scores = None
        if self.compiled:
            mode = "reduce-overhead" if cuda_graphs else None
            self._compiled_scores = torch.compile(self._pixel_scores, mode=mode, dynamic=False)
        warn_if_untrained(self.card)

    @classmethod
    def from_store(
        cls, ref: str | Path, store: ModelStore | None = None, device: str = "auto", dtype: str = "auto",
        compile: bool | None = False, cuda_graphs: bool = False,
    ) -> "Predictor":
        return cls((store or ModelStore()).load(ref), device=device, dtype=dtype, compile=compile,
                   cuda_graphs=cuda_graphs)

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def dtype_name(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def use_batch_size(self, batch_size: int) -> None:
        """Compile (if compiled) for batches of ``batch_size``: the engine's; others are padded or split."""
        self.fixed_batch = batch_size

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 normalised, channels-last in memory (as normalize_batch)."""
        return ((pixels.float() - self._mean) / self._std).permute(0, 3, 1, 2)

    def _scores(self, images: torch.Tensor) -> torch.Tensor:
        """(B, NUM_BINS + 2) float32: each image's distribution, mean and std, packed for one copy to the host."""
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)
        with autocast:
            logits = self.model(images)
        distribution = self.model.distribution(logits)
        mean, std = score_moments(distribution)
        return torch.cat([distribution, mean[:, None], std[:, None]], dim=1)

    def _pixel_scores(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._scores(self._normalise(pixels))

    @torch.inference_mode()
    def scores_of_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, NUM_BINS + 2) float32 on the device for (N, S, S, 3) uint8 pixels there.

        The probabilities, mean and std of each image in one tensor. Only
        queues work on the current stream: nothing here waits for the device.
        """
        if self._compiled_scores is None:
            return self._pixel_scores(pixels)
        size = padded_size(len(pixels), self.fixed_batch)
        parts = []
        for first in range(0, len(pixels), size):
            chunk = pixels[first : first + size]
            count = len(chunk)
            if count < size:  # a fixed shape: one compilation, one CUDA graph
                chunk = torch.cat([chunk, chunk.new_zeros((size - count, *chunk.shape[1:]))])
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            scores = self._compiled_scores(chunk)[:count]
            # A CUDA graph's outputs are overwritten by its next replay: keep a copy.
            parts.append(scores.clone() if self.cuda_graphs else scores)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @torch.inference_mode()
    def predict_tensor(self, images: torch.Tensor) -> Prediction:
        """Score an already normalised (B, 3, S, S) float batch (never compiled)."""
        return self._prediction(self._scores(images.to(self.device, non_blocking=True)))

    def predict(self, pixels: np.ndarray | torch.Tensor) -> Prediction:
        """Score (B, S, S, 3) uint8 pixels produced by ``resize_for_model``."""
        if len(pixels) == 0:
            empty = np.zeros((0,), dtype=np.float32)
            return Prediction(np.zeros((0, 10), dtype=np.float32), empty, empty.copy())
        shape = tuple(pixels.shape[1:])
        expected = (self.input_size, self.input_size, 3)
        if shape != expected:
            raise ValueError(f"pixels of shape {shape} given to a model that takes {expected}")
        return self._prediction(self.scores_of_pixels(torch.as_tensor(pixels).to(self.device, non_blocking=True)))

    @staticmethod
    def _prediction(scores: torch.Tensor) -> Prediction:
        """A Prediction of packed scores: one copy to the host."""
        host = scores.cpu().numpy()
        return Prediction(
            probabilities=np.ascontiguousarray(host[:, :-2]),
            mean=np.ascontiguousarray(host[:, -2]),
            std=np.ascontiguousarray(host[:, -1]),
        )
