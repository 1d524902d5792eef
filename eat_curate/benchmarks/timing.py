"""Interleaved timing, so a noisy machine slows the baseline and the candidate alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work: CUDA calls return before the GPU is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_rates(
    runners: dict[str, Callable[[], int]], rounds: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Median items/s of each runner over ``rounds``, running them in turn every round.

    Each runner does one unit of work and returns how many items it processed.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            items = run()
            rates[name].append(items / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}
