"""Training losses: EMD between score distributions, MSE on single scores, pairwise ranking within groups.

EMD with r = 2 compares the cumulative distributions over the ten score
bins. Two reductions are offered:

- ``per-sample`` (default): each image's EMD, sqrt(mean over bins of the
  squared CDF difference), averaged over the batch. Every image counts as
  one distance, whatever its batch-mates are.
- ``published``: the published EAT code's reduction, one square root of the
  mean over the whole batch and all bins. It equals the root-mean-square of
  the per-image EMDs, so batches with a few badly predicted images weigh
  them more; kept to reproduce the published training.

The ranking loss compares pictures that a dataset yields as one group (the
trainer keeps a group in one batch; e.g. a photo and its degraded copies):
EMD teaches each picture its distribution, the ranking loss the order and
the size of the steps between a group's pictures directly.
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


def pairwise_ranking_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    groups: torch.Tensor,
    margin: float = 0.5,
    min_gap: float = 0.25,
    tie_weight: float = 0.0,
) -> torch.Tensor:
    """Mean hinge ``relu(margin x (t_better - t_worse) - (s_better - s_worse))`` over ordered pairs within each group.

    ``predicted`` and ``target`` are (B,) mean scores, ``groups`` (B,) labels:
    only pictures with the same label are compared, and only pairs whose
    targets differ by ``min_gap`` or more. A margin that grows with the
    target gap asks for score steps the size of the targets' (a fixed small
    margin is met by scores that barely move). With ``tie_weight``, pairs of
    a group with exactly the same target (a photo and its mirror image) add
    ``tie_weight`` x their mean squared score difference, so they learn to
    score the same. Zero (with a gradient path) when the batch holds no such pair.
    """
    same_group = groups[:, None] == groups[None, :]
    difference = target[:, None] - target[None, :]
    gaps = predicted[:, None] - predicted[None, :]
    loss = predicted.sum() * 0.0
    ordered = same_group & (difference >= min_gap)  # [i, j]: i should outscore j
    if ordered.any():
        loss = loss + torch.relu(margin * difference - gaps)[ordered].mean()
    if tie_weight > 0:
        others = ~torch.eye(len(target), dtype=torch.bool, device=target.device)
        ties = same_group & others & (difference.abs() < 1e-6)
        if ties.any():
            loss = loss + tie_weight * gaps[ties].pow(2).mean()
    return loss
