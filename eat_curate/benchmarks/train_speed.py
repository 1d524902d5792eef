"""`eat-curate bench train`: training throughput (forward + backward + optimizer step) in img/s.

Random images and random vote distributions, the caller's loss (the
trainer's lives in ``training/``, which this package does not import), Adam,
the model in training mode (stochastic depth on). fp32 is the baseline; bf16
autocast is timed in the same rounds, interleaved with it, and reported as a
ratio to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from eat_curate.benchmarks.timing import interleaved_rates, synchronize
from eat_curate.model.eat import EAT
from eat_curate.model.presets import get_preset
from eat_curate.scoring.predictor import resolve_device

# (predicted distributions, target distributions) -> scalar loss
DistributionLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainBenchResult:
    preset: str
    batch_size: int
    device: str
    threads: int
    steps: int
    fp32_img_s: float | None
    bf16_img_s: float | None

    @property
    def bf16_ratio(self) -> float | None:
        if self.fp32_img_s and self.bf16_img_s:
            return self.bf16_img_s / self.fp32_img_s
        return None

    def to_dict(self) -> dict:
        return {**asdict(self), "bf16_ratio": self.bf16_ratio}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def bench_training(
    loss: DistributionLoss,
    preset: str = "tiny",
    batch_size: int = 16,
    dtypes: tuple[str, ...] = ("fp32", "bf16"),
    steps: int = 3,
    device: str = "auto",
    threads: int | None = None,
    seed: int = 0,
) -> TrainBenchResult:
    """Median img/s over ``steps`` timed training steps per dtype, after one warm-up step each."""
    if threads:
        torch.set_num_threads(threads)
    target = resolve_device(device)
    spec = get_preset(preset)
    torch.manual_seed(seed)
    model = EAT(spec).to(target).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, spec.image_size, spec.image_size, generator=generator).to(target)
    votes = torch.rand(batch_size, spec.num_bins, generator=generator)
    distributions = (votes / votes.sum(dim=1, keepdim=True)).to(target)

    def runner(dtype: str):
        def step() -> int:
            with torch.autocast(target.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
                logits = model(images)
            optimizer.zero_grad(set_to_none=True)
            loss(model.distribution(logits), distributions).backward()
            optimizer.step()
            synchronize(target)
            return batch_size

        return step

    rates = interleaved_rates({dtype: runner(dtype) for dtype in dtypes}, rounds=steps)
    return TrainBenchResult(
        preset=preset,
        batch_size=batch_size,
        device=_device_name(target),
        threads=torch.get_num_threads(),
        steps=steps,
        fp32_img_s=rates.get("fp32"),
        bf16_img_s=rates.get("bf16"),
    )


def report_lines(result: TrainBenchResult) -> list[str]:
    lines = [
        f"EAT-{result.preset} training, batch {result.batch_size}, {result.device}, "
        f"{result.threads} threads, median of {result.steps} steps"
    ]
    if result.fp32_img_s is not None:
        lines.append(f"  fp32 (baseline)   {result.fp32_img_s:8.2f} img/s")
    if result.bf16_img_s is not None:
        ratio = f"   {result.bf16_ratio:.2f}x" if result.bf16_ratio else ""
        lines.append(f"  bf16 autocast     {result.bf16_img_s:8.2f} img/s{ratio}")
    return lines
