"""The DCT start of EAT's patch embedding: a complete, orthonormal frequency filter bank."""

import pytest
import torch

from eat_curate.model.eat import EAT
from eat_curate.model.presets import get_preset
from training.config import STEM_INITS, ConfigError, TrainConfig
from training.stem_init import (
    WHITENING_OF_STEM_INIT,
    dct_basis,
    dct_frequencies,
    init_stem_as_dct,
)


def test_the_dct_basis_is_orthonormal_with_the_mean_first():
    basis = dct_basis(4).reshape(16, 16)
    assert torch.allclose(basis @ basis.T, torch.eye(16, dtype=basis.dtype), atol=1e-12)
    assert torch.allclose(basis[0], torch.full((16,), 0.25, dtype=basis.dtype))


def test_a_flat_patch_reaches_only_the_mean_filters_and_detail_reaches_the_others():
    model = EAT(get_preset("nano"))
    assert init_stem_as_dct(model) == 48  # nano's 48 channels hold the whole basis of a 4x4x3 patch
    conv = model.patch_proj[0]
    flat = torch.full((1, 3, 4, 4), 0.5)
    response = conv(flat).flatten()
    assert torch.count_nonzero(response.abs() > 1e-6) == 3  # one mean filter per colour
    checker = torch.tensor([[1.0, -1.0] * 2, [-1.0, 1.0] * 2] * 2).expand(1, 3, 4, 4)
    detail = conv(checker).flatten()
    assert detail[:3].abs().max() < 1e-6  # no mean
    assert detail[3:].abs().max() > 1.0  # all its energy in the frequency filters


def test_a_stem_wider_than_the_basis_keeps_its_other_filters():
    model = EAT(get_preset("tiny"))  # 64 channels: 48 of the basis, 16 random
    before = model.patch_proj[0].weight[48:].clone()
    assert init_stem_as_dct(model) == 48
    assert torch.equal(model.patch_proj[0].weight[48:], before)


def test_a_dct_start_contradicts_starting_from_existing_weights():
    with pytest.raises(ConfigError, match="stem_init"):
        TrainConfig(init="some-model", stem_init="dct")


def test_whitening_gives_every_filter_unit_spread_on_the_given_pictures():
    model = EAT(get_preset("nano"))
    smooth = torch.nn.functional.avg_pool2d(torch.randn(4, 3, 64, 64), 5, stride=1, padding=2)  # little detail
    init_stem_as_dct(model, whiten_on=smooth)
    outputs = model.patch_proj[0](smooth)
    spreads = outputs.transpose(0, 1).reshape(48, -1).std(dim=1)
    assert torch.allclose(spreads, torch.ones(48), atol=1e-4)
    # Whitened, the detail filters are strong: on these smooth pictures they had far less energy than the means.
    weights = model.patch_proj[0].weight.reshape(48, -1).norm(dim=1)
    assert weights[3:].min() > weights[:3].max()


def upright_stripes(count: int = 8, size: int = 64) -> torch.Tensor:
    """Pictures of random horizontal and vertical bars plus faint speckle: detail mostly along the axes."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(count, 3, size, 1, generator=generator).expand(-1, -1, -1, size)
    columns = torch.randn(count, 3, 1, size, generator=generator).expand(-1, -1, size, -1)
    return rows + columns + 0.1 * torch.randn(count, 3, size, size, generator=generator)


def filter_gains(model: EAT) -> torch.Tensor:
    # The basis is orthonormal, so a filter's norm is the gain whitening gave it.
    return model.patch_proj[0].weight.detach().reshape(48, -1).norm(dim=1)


def test_whitening_each_filter_favours_oblique_detail_where_pictures_hold_little_of_it():
    model = EAT(get_preset("nano"))
    init_stem_as_dct(model, whiten_on=upright_stripes())
    gains = filter_gains(model)
    first_oblique, first_upright = dct_frequencies(4).index((1, 1)), dct_frequencies(4).index((0, 2))
    # (1, 1) is the lower radial frequency, yet gets many times the gain of (0, 2).
    assert gains[3 * first_oblique] > 5 * gains[3 * first_upright]


def test_shared_whitening_gives_a_colour_s_detail_filters_one_gain_and_unit_spread_on_average():
    model = EAT(get_preset("nano"))
    pictures = upright_stripes()
    init_stem_as_dct(model, whiten_on=pictures, whitening="shared")
    gains = filter_gains(model)
    for colour in range(3):
        detail = gains[colour::3][1:]
        assert torch.allclose(detail, detail[0].expand(15), rtol=1e-5)
    spreads = model.patch_proj[0](pictures).detach().transpose(0, 1).reshape(48, -1).std(dim=1)
    assert torch.allclose(spreads[:3], torch.ones(3), atol=1e-4)  # the mean filters keep their own whitening
    for colour in range(3):
        assert spreads[3 + colour::3].pow(2).mean() == pytest.approx(1.0, abs=1e-3)


def detail_energy_per_variance(whitening: str, patch: torch.Tensor) -> float:
    """The stem's detail energy for ``patch`` over the patch's own variance, whitened on upright stripes."""
    model = EAT(get_preset("nano"))
    init_stem_as_dct(model, whiten_on=upright_stripes(), whitening=whitening)
    conv = model.patch_proj[0]
    with torch.no_grad():
        detail = conv(patch).flatten()[3:] - conv.bias[3:]
    return float(detail.pow(2).sum() / (patch - patch.mean()).pow(2).sum())


def test_with_shared_whitening_a_turned_edge_shows_the_stem_no_more_detail_than_an_upright_one():
    upright = torch.zeros(1, 3, 4, 4)
    upright[..., 2:, :] = 1.0  # a horizontal edge, grey
    diagonal = torch.tril(torch.ones(4, 4), diagonal=-1).expand(1, 3, 4, 4)  # the same kind of edge, turned
    shared = [detail_energy_per_variance("shared", patch) for patch in (upright, diagonal)]
    assert shared[0] == pytest.approx(shared[1], rel=1e-4)  # the colours' shared gains squared, averaged
    per_filter = [detail_energy_per_variance("per_filter", patch) for patch in (upright, diagonal)]
    assert per_filter[1] > 2 * per_filter[0]  # oblique filters, whitened on their own, magnify the turned edge


def test_every_whitened_start_is_a_stem_init_choice_and_an_unknown_whitening_is_refused():
    assert set(STEM_INITS) == {"random", *WHITENING_OF_STEM_INIT}
    with pytest.raises(ValueError, match="whitening"):
        init_stem_as_dct(EAT(get_preset("nano")), whitening="isotropic")
