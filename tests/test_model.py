"""The EAT network: shapes, distributions, batch invariance, agreement with the published forward."""

import pytest
import timm
import torch

from eat_curate.model import EAT, PRESETS, PUBLISHED_RULE, checkpoint_filter_fn, get_preset, score_moments
from eat_curate.model.eat import linear, relative_position_index, shifted_window_mask
from eat_curate.model.reference import PublishedEAT
from eat_curate.model.steering import SteeringRule


def randomised_published(preset, seed=0) -> PublishedEAT:
    """The published forward with weights large enough that mistakes show."""
    torch.manual_seed(seed)
    model = PublishedEAT(preset).eval()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not key.endswith("attn_mask"):
                value.normal_(0, 0.05)
    return model


def ours_from(published: PublishedEAT, preset) -> EAT:
    model = EAT(preset, head_mode="published").eval()
    model.load_state_dict(checkpoint_filter_fn(published.state_dict(), model), strict=True)
    model.set_steering(PUBLISHED_RULE)
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_with_the_published_block_layout(name):
    preset = get_preset(name)
    model = EAT(preset)
    kinds = [[type(block).__name__ for block in stage.attns] for stage in model.stages]
    assert [len(k) for k in kinds] == list(preset.depths)
    assert kinds[0] == ["WindowAttention", "WindowAttention"]
    assert kinds[2][1::2] == ["DeformableAttention"] * (preset.depths[2] // 2)
    assert model.stages[0].attns[1].shift == (4 if preset.window_size == 7 else 6)
    assert model.cls_head.out_features == 10


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny", "small"])
def test_forward_shapes_for_224_presets(name):
    model = EAT(name).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 10)


def test_micro_forward_gives_a_distribution_per_image(micro_preset):
    model = EAT(micro_preset).eval()
    with torch.inference_mode():
        logits = model(torch.randn(3, 3, 224, 224))
        probabilities = model.distribution(logits)
        mean, std = score_moments(probabilities)
    assert probabilities.shape == (3, 10)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(3), atol=1e-6)
    assert ((mean >= 1) & (mean <= 10)).all() and (std >= 0).all()


def test_score_moments_of_known_distributions():
    certain_seven = torch.zeros(1, 10)
    certain_seven[0, 6] = 1.0
    uniform = torch.full((1, 10), 0.1)
    mean, std = score_moments(torch.cat([certain_seven, uniform]))
    assert mean.tolist() == pytest.approx([7.0, 5.5])
    assert std.tolist() == pytest.approx([0.0, 8.25**0.5])


def test_an_images_output_does_not_depend_on_its_batch_mates(micro_preset):
    torch.manual_seed(0)
    model = EAT(micro_preset).eval()
    model.set_steering(PUBLISHED_RULE)
    images = torch.randn(32, 3, 224, 224)
    with torch.inference_mode():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(4)])
    assert (together[:4] - alone).abs().max().item() <= 1e-5


def test_forward_is_deterministic(micro_preset):
    model = EAT(micro_preset).eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(model(images), model(images))


def test_matches_the_published_forward_block_for_block(micro_preset):
    published = randomised_published(micro_preset)
    ours = ours_from(published, micro_preset)
    image = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        expected, actual = published(image), ours(image)
    assert (expected - actual).abs().max().item() < 1e-5


@pytest.mark.slow
def test_matches_the_published_forward_for_tiny():
    published = randomised_published("tiny", seed=1)
    ours = ours_from(published, "tiny")
    image = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert (published(image) - ours(image)).abs().max().item() < 1e-5


def test_the_published_code_mixes_batch_mates_interest_points_and_ours_does_not(micro_preset):
    published = randomised_published(micro_preset, seed=2)
    ours = ours_from(published, micro_preset)
    images = torch.randn(4, 3, 224, 224)
    images[1:, :, :112] += 3.0  # batch-mates with a bright upper half
    seen = []
    first_deformable = published.stages[2].attns[1]
    first_deformable.register_forward_hook(lambda module, args, out: seen.append(out[2][0]))
    with torch.inference_mode():
        published(images), published(images[:1])
        _, in_batch = ours.forward_with_points(images)
        _, alone = ours.forward_with_points(images[:1])
    published_in_batch, published_alone = seen
    assert (published_in_batch - published_alone).abs().max().item() > 1e-3
    assert torch.allclose(in_batch[0].interest[0], alone[0].interest[0], atol=1e-6)


def test_steering_changes_where_the_model_looks(micro_preset):
    model = EAT(micro_preset).eval()
    image = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        model.set_steering(SteeringRule(1.0, 1.0))
        _, free = model.forward_with_points(image)
        model.set_steering(SteeringRule(toward=0.0, away=0.0))
        _, pinned = model.forward_with_points(image)
    for block in pinned:  # every offset zeroed: positions sit exactly on the interest points
        assert torch.allclose(block.positions, block.interest)
    assert not torch.allclose(free[0].positions, free[0].interest)


def test_forward_with_points_reports_every_deformable_block(micro_preset):
    model = EAT(micro_preset).eval()
    with torch.inference_mode():
        logits, points = model.forward_with_points(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 10)
    assert [(p.stage, p.block) for p in points] == [(2, 1), (3, 1)]
    assert points[0].positions.shape == (2, 2, 14, 14, 2)
    assert points[1].interest.shape == (2, 4, 7, 7, 2)
    assert points[0].interest.abs().max() <= 1.0  # tanh-bounded interest points


def test_bf16_autocast_stays_close_to_fp32(micro_preset):
    torch.manual_seed(3)
    model = EAT(micro_preset).eval()
    images = torch.randn(4, 3, 224, 224)
    with torch.inference_mode():
        full, _ = score_moments(model.distribution(model(images)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = score_moments(model.distribution(model(images)))
    assert (full - low).abs().mean().item() < 0.01


@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("bf16", [False, True])
def test_fused_linear_agrees_with_torch_linear(gelu, bf16):
    # Under bf16 autocast this takes oneDNN's bf16 inner product where the CPU has one, else autocast's own
    # bf16 matmul: either way the result must stay a bf16 rounding of the plain fp32 layer.
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 49, 64), torch.randn(96, 64) / 8, torch.randn(96)
    expected = torch.nn.functional.linear(x, weight, bias)
    expected = torch.nn.functional.gelu(expected) if gelu else expected
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        result = linear(x, weight, bias, gelu=gelu)
    assert result.shape == expected.shape
    assert result.dtype == (torch.bfloat16 if bf16 else torch.float32)
    tolerance = 0.05 if bf16 else 1e-4
    torch.testing.assert_close(result.float(), expected, atol=tolerance, rtol=tolerance)


def test_training_mode_has_gradients_for_every_parameter(micro_preset):
    model = EAT(micro_preset).train()
    model(torch.randn(2, 3, 224, 224)).logsumexp(dim=1).sum().backward()
    without_grad = [name for name, p in model.named_parameters() if p.grad is None]
    assert without_grad == []


def test_timm_registry_creates_eat_models():
    model = timm.create_model("eat_tiny")
    assert isinstance(model, EAT) and model.preset.name == "tiny"
    assert {"eat_tiny", "eat_small", "eat_base", "eat_base_384"} <= set(timm.list_models("eat_*"))
    with pytest.raises(ValueError, match="no downloadable weights"):
        timm.create_model("eat_tiny", pretrained=True)


def test_window_helpers_match_the_swin_conventions():
    index = relative_position_index(7)
    assert index.shape == (49, 49)
    assert index[0, 0] == 6 * 13 + 6  # zero displacement sits in the middle of the table
    assert index.max() == 13 * 13 - 1
    mask = shifted_window_mask(14, 7, 4)
    assert mask.shape == (4, 49, 49)
    assert (mask[0] == 0).all()  # the top-left window is one region
    assert set(mask[3].unique().tolist()) == {-100.0, 0.0}


def test_base_384_uses_12_pixel_windows():
    preset = get_preset("base-384")
    assert preset.feature_sizes == (96, 48, 24, 12)
    assert preset.window_size == 12


def test_unknown_preset_and_head_mode_are_clear_errors():
    with pytest.raises(ValueError, match="known presets"):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown head mode"):
        EAT("tiny", head_mode="sigmoid")
