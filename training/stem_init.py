"""Starting EAT's patch embedding as a frequency filter bank instead of random filters.

EAT's first layer is a convolution with kernel = stride = patch size (4): one
linear map per 4 x 4 x 3 patch. Started as the orthonormal 2-D DCT-II basis of
each colour channel, its outputs split every patch into its mean colour and
its detail at each spatial frequency from the first step. Focus, noise and
JPEG blocking live in exactly that detail; a randomly started transformer
trained on a few thousand pictures finds them only slowly (exposure and
contrast, which the mean colours carry, it learns first). The filters stay
trainable; this only chooses where they start.
"""

from __future__ import annotations

import itertools
import math

import torch

from eat_curate.model.eat import EAT

# How the DCT filters are scaled to the training pictures (``TrainConfig.stem_init`` -> ``whitening``):
# each to its own measured spread, or the detail filters of a colour by one gain (see :func:`shared_detail_spread`).
WHITENING_OF_STEM_INIT = {"dct": "per_filter", "dct_shared": "shared"}


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


def shared_detail_spread(spread: torch.Tensor, is_detail: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """``spread`` with each colour's detail filters given their root-mean-square spread, the mean filters their own.

    Photographs hold more detail along horizontal and vertical lines than along
    oblique ones, so scaling each filter to its own spread boosts the oblique
    filters most, and a picture turned by a few degrees (which moves detail
    from upright edges to oblique ones) looks sharper to the stem than it is.
    With one gain for all of a colour's detail filters, the stem's detail
    energy is that gain squared times the patch's own variance (the basis is
    orthonormal), which a turn leaves where it was.
    """
    shared = spread.clone()
    for channel in colour.unique():
        detail = (colour == channel) & is_detail
        shared[detail] = spread[detail].pow(2).mean().sqrt()
    return shared


@torch.no_grad()
def init_stem_as_dct(model: EAT, whiten_on: torch.Tensor | None = None, whitening: str = "per_filter") -> int:
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
    ``whitening="shared"`` scales them by :func:`shared_detail_spread` instead,
    so that oblique detail is not favoured over upright detail.
    """
    if whitening not in WHITENING_OF_STEM_INIT.values():
        raise ValueError(f"whitening {whitening!r}: expected one of {', '.join(WHITENING_OF_STEM_INIT.values())}")
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
        if whitening == "shared":
            spread = shared_detail_spread(spread, torch.arange(count) >= colours, torch.arange(count) % colours)
        conv.weight[:count] /= spread.view(-1, 1, 1, 1)
    return count
