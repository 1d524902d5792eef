"""Training losses: EMD between score distributions, MSE on single scores.

EMD with r = 2 compares the cumulative distributions over the ten score
bins. Two reductions are offered:

- ``per-sample`` (default): each image's EMD, sqrt(mean over bins of the
  squared CDF difference), averaged over the batch. Every image counts as
  one distance, whatever its batch-mates are.
- ``published``: the published EAT code's reduction, one square root of the
  mean over the whole batch and all bins. It equals the root-mean-square of
  the per-image EMDs, so batches with a few badly predicted images weigh
  them more; kept to reproduce the published training.
"""

from __future__ import annotations

import torch

EMD_REDUCTIONS = ("per-sample", "published")


def emd_per_sample(predicted: torch.Tensor, target: torch.Tensor, r: int = 2) -> torch.Tensor:
    """(B,) EMD_r of each row of ``predicted`` against ``target``, both (B, bins) distributions."""
    difference = (predicted.cumsum(dim=-1) - target.cumsum(dim=-1)).abs()
    return difference.pow(r).mean(dim=-1).pow(1.0 / r)


def emd_loss(predicted: torch.Tensor, target: torch.Tensor, reduction: str = "per-sample", r: int = 2) -> torch.Tensor:
    """The batch's EMD loss (a scalar); see the module docstring for the two reductions."""
    if reduction == "per-sample":
        return emd_per_sample(predicted, target, r).mean()
    if reduction == "published":
        difference = (predicted.cumsum(dim=-1) - target.cumsum(dim=-1)).abs()
        return difference.pow(r).mean().pow(1.0 / r)
    raise ValueError(f"unknown EMD reduction {reduction!r}; expected one of {', '.join(EMD_REDUCTIONS)}")


def score_mse_loss(predicted_score: torch.Tensor, target_score: torch.Tensor) -> torch.Tensor:
    """MSE between scores divided by 10, as the paper trains on TAD66K's single scores."""
    return torch.nn.functional.mse_loss(predicted_score / 10.0, target_score / 10.0)
