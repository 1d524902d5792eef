"""Learning-rate schedules, stepped once per optimisation step.

- ``step``: the paper's decay, lr x ``gamma`` every ``step_epochs`` epochs;
- ``cosine``: linear warm-up over ``warmup_epochs``, then a cosine from the
  full lr down to zero at the last step;
- ``constant``: as the paper trains on TAD66K.

The factor depends only on the step number, so a resumed run that restores
the step continues on exactly the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from training.config import TrainConfig


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The multiplier of the base lr at optimisation step ``step`` (counted from 0)."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)

    def step_decay(step: int) -> float:
        return config.step_gamma ** (step // steps_per_epoch // config.step_epochs)

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def constant(step: int) -> float:
        return 1.0

    return {"step": step_decay, "cosine": cosine, "constant": constant}[config.schedule]


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
