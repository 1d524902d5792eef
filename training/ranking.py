"""Pairwise ranking loss: within a group of pictures of one scene, the better one must score higher.

Used with generated defects (:mod:`training.degraded_data`): a clean view and
its degraded versions share a group, and every pair whose target means
differ by at least ``min_gap`` must be ordered by the predicted means, the
better one leading by at least ``margin`` x the difference of their targets.
A margin that grows with the target gap asks for score differences the size
of the defects' (a fixed small margin is met by scores that barely move,
which orders each photo's copies but not photos with each other); optionally,
pictures that must score the same are pulled together, and pairs from
different groups can be ordered too (weighted apart): a photo's defective
copy below another photo's clean view, which puts different photos on one
scale instead of ordering each photo's copies on its own. EMD teaches each
picture its distribution; this teaches the order and the size of the steps
directly, which is what culling needs.
"""

from __future__ import annotations

import torch


def pairwise_ranking_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    groups: torch.Tensor,
    margin: float = 0.5,
    min_gap: float = 0.25,
    tie_weight: float = 0.0,
    cross_weight: float = 0.0,
) -> torch.Tensor:
    """Mean hinge ``relu(margin x (t_better - t_worse) - (s_better - s_worse))`` over ordered pairs within each group.

    ``predicted`` and ``target`` are (B,) mean scores, ``groups`` (B,) labels:
    only pictures with the same label are compared. With ``tie_weight``, pairs
    with exactly the same target (a photo and its mirror image or a harmless
    re-encoding) add ``tie_weight`` x their mean squared score difference,
    so the model learns to give them the same score. With ``cross_weight``,
    pairs from different groups take the same hinge, averaged on their own
    and weighted by ``cross_weight``. Zero (with a gradient path) when the
    batch holds no such pair.
    """
    same_group = groups[:, None] == groups[None, :]
    difference = target[:, None] - target[None, :]
    apart = difference >= min_gap  # [i, j]: i should outscore j
    gaps = predicted[:, None] - predicted[None, :]
    shortfall = torch.relu(margin * difference - gaps)
    loss = predicted.sum() * 0.0
    ordered = same_group & apart
    if ordered.any():
        loss = loss + shortfall[ordered].mean()
    across = ~same_group & apart
    if cross_weight > 0 and across.any():
        loss = loss + cross_weight * shortfall[across].mean()
    if tie_weight > 0:
        others = ~torch.eye(len(target), dtype=torch.bool, device=target.device)
        ties = same_group & others & (difference.abs() < 1e-6)
        if ties.any():
            loss = loss + tie_weight * gaps[ties].pow(2).mean()
    return loss
