"""The DCT start of EAT's patch embedding: a complete, orthonormal frequency filter bank."""

import pytest
import torch

from eat_curate.model.eat import EAT
from eat_curate.model.presets import get_preset
from training.config import ConfigError, TrainConfig
from training.stem_init import dct_basis, init_stem_as_dct


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
