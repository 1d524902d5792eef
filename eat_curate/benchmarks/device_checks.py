"""Correctness of EAT on a device (CUDA above all): agreement with the published forward, batch invariance, bf16.

Random weights: these check the computation, not a trained model's quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from eat_curate.benchmarks.model_speed import paired_models
from eat_curate.model import EAT, get_preset, score_moments


@contextmanager
def exact_float32() -> Iterator[None]:
    """No TF32 in CUDA matmuls and convolutions, so fp32 differences are the model's, not the hardware's."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@torch.inference_mode()
def check_model(device: torch.device, preset: str = "tiny", seed: int = 0) -> dict[str, float]:
    """Figures by name: max |logit diff| against the published forward and batch 1 against a full batch
    (fp32), and the mean |score diff| of bf16 autocast against fp32."""
    published, ours = paired_models(preset, seed)
    published, ours = published.to(device), ours.to(device, memory_format=torch.channels_last)
    size = get_preset(preset).image_size
    images = torch.randn(32 if device.type == "cuda" else 8, 3, size, size, device=device)
    figures = {}
    with exact_float32():
        figures["ours_vs_published_max_abs_logit_diff_fp32"] = (
            (published(images[:1]) - ours(images[:1])).abs().max().item()
        )
        together = ours(images)
        alone = torch.cat([ours(images[i : i + 1]) for i in range(4)])
        figures[f"batch1_vs_batch{len(images)}_max_abs_logit_diff_fp32"] = (together[:4] - alone).abs().max().item()
        softmax_model = EAT(preset).eval().to(device, memory_format=torch.channels_last)
        full, _ = score_moments(softmax_model.distribution(softmax_model(images)))
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low, _ = score_moments(softmax_model.distribution(softmax_model(images)))
        figures["bf16_vs_fp32_mean_abs_score_diff_random_weights"] = (full - low).abs().mean().item()
    return figures
