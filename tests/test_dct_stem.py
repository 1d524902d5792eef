"""The recipe's DCT start of EAT's patch embedding: a complete, orthonormal frequency filter bank."""

import torch

from eat_curate.model.eat import EAT
from eat_curate.model.presets import get_preset
from training.datasets import epoch_order
from training.recipes.dct_stem import dct_basis, dct_frequencies, init_stem_as_dct, whitening_pictures


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


class _Groups(torch.utils.data.Dataset):
    """Groups of three 8 x 8 pictures, each filled with its group's index and member: which ones came first shows."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> list[dict]:
        return [{"index": index, "pixels": torch.full((8, 8, 3), 3 * index + member, dtype=torch.uint8),
                 "target": torch.zeros(10)} for member in range(3)]


def test_whitening_takes_whole_groups_of_the_first_epoch_s_order_up_to_the_count():
    pictures = whitening_pictures(_Groups(), seed=0, count=7)
    assert pictures.shape == (7, 8, 8, 3)
    first_groups = epoch_order(40, seed=0, epoch=0)[:3]
    assert pictures[:, 0, 0, 0].tolist() == [3 * group + member for group in first_groups for member in range(3)][:7]
    assert not whitening_pictures(_Groups(), seed=1, count=7).equal(pictures)
