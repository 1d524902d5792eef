"""Starting EAT's patch embedding as a frequency filter bank instead of random filters.

EAT's first layer is a convolution with kernel = stride = patch size (4): one
linear map per 4 x 4 x 3 patch. Started as the orthonormal 2-D DCT-II basis of
each colour channel, its outputs split every patch into its mean colour and
its detail at each spatial frequency from the first step. Focus, noise and
JPEG blocking live in exactly that detail; a randomly started transformer
trained on a few thousand pictures finds them only slowly (exposure and
contrast, which the mean colours carry, it learns first). The filters stay
trainable; this only chooses where they start.

The recipe hands :func:`start_stem_as_whitened_dct` to the trainer, which
calls it on the fresh model before the first step.
"""

from __future__ import annotations

import itertools
import math

import torch

from eat_curate.model.eat import EAT
from eat_curate.scoring.preprocess import normalize_batch
from training.datasets import collate, epoch_order
from training.errors import TrainingError

WHITENING_PICTURES = 64


def dct_frequencies(size: int) -> list[tuple[int, int]]:
    """The (vertical, horizontal) frequency of each of :func:`dct_basis`'s functions, in its order."""
    return sorted(itertools.product(range(size), repeat=2), key=lambda uv: (uv[0] + uv[1], uv))


def dct_basis(size: int) -> torch.Tensor:
    """(size * size, size, size) orthonormal 2-D DCT-II basis, lowest frequencies first (the mean is index 0)."""
    positions = torch.arange(size, dtype=torch.float64)
    rows = []
    for frequency in range(size):
        scale = math.sqrt(1 / size) if frequency == 0 else math.sqrt(2 / size)
        rows.append(scale * torch.cos(math.pi * (2 * positions + 1) * frequency / (2 * size)))
    return torch.stack([torch.outer(rows[u], rows[v]) for u, v in dct_frequencies(size)])


@torch.no_grad()
def init_stem_as_dct(model: EAT, whiten_on: torch.Tensor | None = None) -> int:
    """Set the patch embedding's filters to the DCT basis of each colour channel; returns how many were set.

    With ``channels`` filters and a ``p x p`` patch, filter ``i`` gets basis
    function ``i // 3`` of colour channel ``i % 3`` (so a stem narrower than
    the full basis keeps the lowest frequencies of all three colours); any
    filters beyond the ``3 p^2`` of the full basis keep their random start.

    ``whiten_on``: (N, 3, S, S) normalised model inputs (clean training
    pictures). Each DCT filter is then scaled so its output has unit spread
    over them. Photos have far more energy at low frequencies than at high
    ones, so the unscaled detail outputs are tiny beside the mean colour, and
    the layer norm after the stem squeezes them further; scaled, a blurred or
    noisy patch moves the normalised token as much as a darker one does.
    """
    conv = model.patch_proj[0]
    channels, colours, patch, _ = conv.weight.shape
    basis = dct_basis(patch).to(conv.weight.dtype)
    count = min(channels, colours * len(basis))
    for i in range(count):
        conv.weight[i].zero_()
        conv.weight[i, i % colours] = basis[i // colours]
    conv.bias[:count].zero_()
    if whiten_on is not None:
        outputs = conv(whiten_on.to(conv.weight.dtype))[:, :count]
        spread = outputs.transpose(0, 1).reshape(count, -1).std(dim=1).clamp_min(1e-6)
        conv.weight[:count] /= spread.view(-1, 1, 1, 1)
    return count


def whitening_pictures(
    train_set: torch.utils.data.Dataset, seed: int, count: int = WHITENING_PICTURES
) -> torch.Tensor:
    """(N, S, S, 3) uint8: about ``count`` pictures of the first epoch's first items (a group gives all its members)."""
    parts, pictures = [], 0
    for index in epoch_order(len(train_set), seed, 0):
        pixels = collate([train_set[index]]).pixels  # a group's members, less any that failed to decode
        if len(pixels):
            parts.append(pixels)
            pictures += len(pixels)
        if pictures >= count:
            break
    if not parts:
        raise TrainingError("no training picture could be decoded to start the DCT patch embedding from")
    return torch.cat(parts)[:count]


def start_stem_as_whitened_dct(
    model: EAT, train_set: torch.utils.data.Dataset, device: torch.device, seed: int
) -> str:
    """The trainer's fresh-model start: the DCT stem whitened on the first training pictures of ``seed``'s order."""
    pictures = whitening_pictures(train_set, seed)
    init_stem_as_dct(model, normalize_batch(pictures, device))
    return f"DCT patch embedding whitened on {len(pictures)} training pictures"
