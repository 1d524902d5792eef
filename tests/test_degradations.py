"""The generated-defect training path: views, defects, targets, groups, ranking loss, and a real training run.

Source photos here are eat-curate's drawn landscapes (no download); the
model is the tiny ``micro`` preset.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from eat_curate.model.model_store import ModelStore
from eat_curate.samples import landscape
from training.config import TrainConfig
from training.datasets import collate
from training.degradation_targets import (
    CLEAN_MEAN,
    DROP_AT_FULL_STRENGTH,
    FLOOR_MEAN,
    target_distribution,
    target_mean,
)
from training.degradations import (
    DEFECTS,
    Defect,
    DegradationError,
    degrade,
    degraded_view,
    jpeg_quality,
)
from training.degraded_data import (
    CurriculumStage,
    DegradedGroups,
    DegradedImages,
    DegradedSample,
    GroupPlan,
    SourcePhoto,
    plan_group,
    random_clean_view,
    render_sample,
    stage_defects,
)
from training.ranking import pairwise_ranking_loss
from training.trainer import DataSets, Trainer
from training.views import View, fits, full_frame, render, rotated, source_extent, sub_view

SIZE = (480, 320)


@pytest.fixture(scope="module")
def source() -> Image.Image:
    return landscape(seed=3, size=SIZE)


@pytest.fixture(scope="module")
def frame(source) -> View:
    return full_frame(source.size)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:  # a framing defect can round the output size; compare at one size
        b = np.asarray(Image.fromarray(b).resize((a.shape[1], a.shape[0])))
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _sharpness(pixels: np.ndarray) -> float:
    grey = pixels.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def _chroma(pixels: np.ndarray) -> float:
    values = pixels.astype(np.float32)
    return float(np.abs(values - values.mean(axis=2, keepdims=True)).mean())


# --- the generator ---------------------------------------------------------------------


@pytest.mark.parametrize("name", DEFECTS)
def test_strength_zero_is_the_untouched_view(source, frame, name):
    untouched = np.asarray(render(source, frame, 128))
    assert np.array_equal(degrade(source, frame, [Defect(name, 0.0)], seed=5, short_side=128), untouched)
    assert np.array_equal(degrade(source, frame, [], seed=5, short_side=128), untouched)


@pytest.mark.parametrize("name", DEFECTS)
def test_each_defect_is_deterministic_and_grows_with_strength(source, frame, name):
    clean = degrade(source, frame, [], seed=0, short_side=128)
    first = degrade(source, frame, [Defect(name, 0.5)], seed=7, short_side=128)
    again = degrade(source, frame, [Defect(name, 0.5)], seed=7, short_side=128)
    assert np.array_equal(first, again)
    distances = [_difference(clean, degrade(source, frame, [Defect(name, s)], seed=7, short_side=128)) for s in (0.25, 0.5, 1.0)]
    assert 0 < distances[0] < distances[1] < distances[2], distances


def test_defects_change_what_they_say(source, frame):
    def at(name: str, strength: float) -> np.ndarray:
        return degrade(source, frame, [Defect(name, strength)], seed=1, short_side=128)

    clean = at("noise", 0.0)
    for blur in ("gaussian_blur", "motion_blur"):
        assert _sharpness(clean) > _sharpness(at(blur, 0.5)) > _sharpness(at(blur, 1.0))
    assert _sharpness(at("noise", 1.0)) > _sharpness(at("noise", 0.5)) > _sharpness(clean)
    assert clean.mean() > at("underexposure", 0.5).mean() > at("underexposure", 1.0).mean()
    assert clean.mean() < at("overexposure", 0.5).mean() < at("overexposure", 1.0).mean()
    assert clean.std() > at("low_contrast", 0.5).std() > at("low_contrast", 1.0).std()
    assert _chroma(clean) < _chroma(at("oversaturation", 0.5)) < _chroma(at("oversaturation", 1.0))
    assert jpeg_quality(0.01) > jpeg_quality(0.5) > jpeg_quality(1.0) >= 5


def test_the_seed_draws_the_random_parts(source, frame):
    for name in ("noise", "motion_blur", "colour_cast"):
        one = degrade(source, frame, [Defect(name, 0.8)], seed=1, short_side=128)
        other = degrade(source, frame, [Defect(name, 0.8)], seed=2, short_side=128)
        assert not np.array_equal(one, other), name
    # Deterministic defects ignore it.
    assert np.array_equal(
        degrade(source, frame, [Defect("gaussian_blur", 0.8)], seed=1, short_side=128),
        degrade(source, frame, [Defect("gaussian_blur", 0.8)], seed=2, short_side=128),
    )


def test_framing_defects_move_the_view_not_the_pixels(source, frame):
    tilted = degraded_view(frame, [Defect("tilt", 1.0)], source.size, seed=0)
    assert abs(tilted.angle) == pytest.approx(12.0) and fits(tilted, source.size)
    assert (tilted.cx, tilted.cy) == (frame.cx, frame.cy)
    cropped = degraded_view(frame, [Defect("off_subject_crop", 1.0)], source.size, seed=0)
    assert cropped.width == pytest.approx(0.4 * frame.width) and cropped.height == pytest.approx(0.4 * frame.height)
    assert fits(cropped, source.size)


def test_bad_defects_are_refused():
    with pytest.raises(DegradationError, match="unknown defect 'fog'"):
        Defect("fog", 0.5)
    with pytest.raises(DegradationError, match=r"not in \[0, 1\]"):
        Defect("noise", 1.5)


# --- views -----------------------------------------------------------------------------


def test_a_rotated_view_samples_the_rotated_rectangle():
    width, height = 600, 400
    ys, xs = np.mgrid[0:height, 0:width]
    ramps = Image.fromarray(np.stack([xs * 255 // width, ys * 255 // height, np.zeros_like(xs)], -1).astype(np.uint8))
    view = View(0.75, 0.5, 0.5, 0.3, angle=20)
    pixels = np.asarray(render(ramps, view, 120)).astype(np.float64)
    found = pixels[0, 0, :2] / 255 * [width, height]  # the source position the top-left pixel shows
    expected = view.corners()[0] * min(width, height)
    assert np.abs(found - expected).max() < 6  # within a pixel of the output (and the ramps' steps)


def test_a_tilted_full_frame_shrinks_to_fit_and_shows_no_border():
    grey = Image.new("RGB", (900, 600), (120, 130, 140))
    view = rotated(full_frame(grey.size), 12, grey.size)
    assert fits(view, grey.size) and view.width < full_frame(grey.size).width
    pixels = np.asarray(render(grey, view, 128))
    assert (pixels == [120, 130, 140]).all()  # no black wedge or dark fringe at the corners


def test_sub_views_are_pushed_toward_the_asked_corner(frame):
    top_left = sub_view(frame, 0.5, (-1, -1))
    assert (top_left.cx, top_left.cy) == pytest.approx((frame.width / 4, frame.height / 4))
    mirrored = sub_view(View(frame.cx, frame.cy, frame.width, frame.height, mirrored=True), 0.5, (-1, -1))
    assert mirrored.cx == pytest.approx(frame.width * 3 / 4)  # "left" as the mirrored picture is seen


# --- targets ---------------------------------------------------------------------------


def test_target_mean_falls_with_strength_and_stops_at_the_floor():
    assert target_mean([]) == CLEAN_MEAN
    assert target_mean([0.5]) == CLEAN_MEAN - DROP_AT_FULL_STRENGTH / 2
    means = [target_mean([s]) for s in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(means, means[1:]))
    assert target_mean([0.5, 0.5]) == target_mean([1.0])  # defects add up
    assert target_mean([1.0, 1.0]) == FLOOR_MEAN


@pytest.mark.parametrize("mean", [1.5, 3.0, 5.5, 8.0, 9.5])
def test_target_distribution_has_exactly_the_target_mean(mean):
    distribution = target_distribution(mean)
    assert distribution.shape == (10,) and distribution.min() >= 0
    assert distribution.sum() == pytest.approx(1.0, abs=1e-6)
    assert float(distribution @ np.arange(1, 11)) == pytest.approx(mean, abs=1e-4)


def test_target_distribution_refuses_means_off_the_scale():
    with pytest.raises(ValueError, match="between 1 and 10"):
        target_distribution(10.0)


# --- datasets and the ranking loss ----------------------------------------------------


@pytest.fixture(scope="module")
def photos() -> list[SourcePhoto]:
    return [SourcePhoto(f"scene{seed}", landscape(seed, size=SIZE)) for seed in range(3)]


def test_groups_are_a_clean_view_and_its_variants_drawn_from_seed_epoch_and_index(photos):
    groups = DegradedGroups(photos, groups_per_epoch=4, image_size=64, plan=GroupPlan(size=4), seed=1)
    plan = groups.group(2)
    assert plan[0].is_clean and plan[0].recompress is None
    # One scene: the same photo and rectangle (a harmless variant may be its mirror image).
    upright = replace(plan[0].view, mirrored=False)
    assert all(replace(member.view, mirrored=False) == upright and member.photo == plan[0].photo for member in plan)
    assert plan == groups.group(2) and plan != groups.group(3)
    groups.set_epoch(1)
    assert groups.group(2) != plan

    batch = collate([groups[0], groups[1]])  # two groups, flattened into one batch
    assert batch.pixels.shape == (8, 64, 64, 3) and batch.pixels.dtype == torch.uint8
    assert batch.indices.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert batch.targets.shape == (8, 10)


def test_a_ladder_group_is_one_defect_at_rising_strengths_of_one_view(photos):
    groups = DegradedGroups(photos, groups_per_epoch=8, image_size=64, plan=GroupPlan(size=4, ladder_share=1.0))
    for index in range(8):
        clean, *ladder = groups.group(index)
        assert clean.is_clean
        assert {member.view for member in ladder} == {clean.view}
        assert len({member.defects[0].name for member in ladder}) == 1
        strengths = [member.defects[0].strength for member in ladder]
        assert strengths == sorted(strengths) and len(set(strengths)) == 3
        assert [member.score for member in ladder] == sorted((m.score for m in ladder), reverse=True)


@pytest.mark.parametrize("ladder_share", [0.0, 1.0])
def test_tie_variants_give_every_group_harmless_copies_of_its_clean_view(photos, ladder_share):
    plan = GroupPlan(size=5, tie_variants=1, ladder_share=ladder_share, harmless_share=0.0)
    groups = DegradedGroups(photos, groups_per_epoch=8, image_size=64, plan=plan)
    for index in range(8):
        clean, tie, *others = groups.group(index)
        # Mirrored, re-encoded or both, never degraded: it must score what the clean view scores.
        assert tie.defects == () and tie.score == clean.score
        assert tie.view.mirrored != clean.view.mirrored or tie.recompress is not None
        assert replace(tie.view, mirrored=clean.view.mirrored) == clean.view
        assert len(others) == 3 and all(member.defects for member in others)


def test_clean_crops_move_off_the_photos_centre_only_as_far_as_crop_shift_allows():
    size = (400, 300)
    extent_w, extent_h = source_extent(size)

    def offsets(crop_shift: float) -> list[float]:
        plan = GroupPlan(full_frame_share=0.0, crop_shift=crop_shift)
        rng = np.random.default_rng(0)
        views = [random_clean_view(size, plan, rng) for _ in range(200)]
        # Each crop's offset from the photo's centre, as a share of the room it leaves on that axis.
        return [abs(view.cx - extent_w / 2) / ((extent_w - view.width) / 2) for view in views if view.width < extent_w]

    assert max(offsets(0.0)) < 1e-9  # the photographer's centre
    assert 0.45 < max(offsets(0.5)) <= 0.5
    assert max(offsets(1.0)) > 0.95  # anywhere, up against an edge
    with pytest.raises(ValueError, match="crop_shift"):
        GroupPlan(crop_shift=1.5)


def test_a_plan_keeps_a_variant_beside_its_ties():
    GroupPlan(size=3, tie_variants=1)
    with pytest.raises(ValueError, match="tie_variants"):
        GroupPlan(size=3, tie_variants=2)


@pytest.mark.parametrize("ladder_share", [0.0, 1.0])
def test_a_plan_draws_only_the_defect_types_it_names(photos, ladder_share):
    plan = GroupPlan(size=4, ladder_share=ladder_share, harmless_share=0.0, defects=("gaussian_blur", "noise"))
    groups = DegradedGroups(photos, groups_per_epoch=16, image_size=64, plan=plan)
    drawn = {defect.name for index in range(16) for member in groups.group(index) for defect in member.defects}
    assert drawn == {"gaussian_blur", "noise"}


def test_a_plan_of_one_defect_type_gives_single_defect_variants(photos):
    plan = GroupPlan(size=4, harmless_share=0.0, two_defect_share=1.0, defects=("jpeg",))
    groups = DegradedGroups(photos, 4, 64, plan)
    members = [member for index in range(4) for member in groups.group(index)[1:]]
    assert all([defect.name for defect in member.defects] == ["jpeg"] for member in members)


@pytest.mark.parametrize("defects", [(), ("focus",), ("noise", "noise")])
def test_a_plan_refuses_unknown_or_no_defect_types(defects):
    with pytest.raises(ValueError, match="non-empty subset"):
        GroupPlan(defects=defects)


@pytest.mark.parametrize("ladder_share", [0.0, 1.0])
def test_a_weighted_type_is_drawn_that_many_times_as_often(ladder_share):
    plan = GroupPlan(size=3, harmless_share=0.0, two_defect_share=0.0, ladder_share=ladder_share,
                     defects=("gaussian_blur", "noise", "tilt"), defect_weights=(("tilt", 3.0),))
    rng = np.random.default_rng(0)
    drawn = [member.defects[0].name for _ in range(2000) for member in plan_group([SIZE], plan, rng)[1:]]
    tilt_share = drawn.count("tilt") / len(drawn)
    assert 0.55 < tilt_share < 0.65  # 3 / (1 + 1 + 3)
    assert abs(drawn.count("noise") - drawn.count("gaussian_blur")) < 0.1 * len(drawn)


def test_equal_weights_draw_the_groups_an_unweighted_plan_draws():
    """So the shipped recipe's groups, and the model they make, do not change."""
    unweighted = GroupPlan(size=5, tie_variants=1, ladder_share=0.5)
    equal = replace(unweighted, defect_weights=tuple((name, 2.0) for name in DEFECTS))
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(50):
        assert plan_group([SIZE], equal, rng_b) == plan_group([SIZE], unweighted, rng_a)


@pytest.mark.parametrize(
    "weights", [(("focus", 2.0),), (("tilt", 2.0), ("tilt", 3.0)), (("tilt", 0.0),), (("tilt", float("nan")),)]
)
def test_a_plan_refuses_weights_for_unknown_types_twice_or_not_positive(weights):
    with pytest.raises(ValueError, match="defect_weights|defect weights"):
        GroupPlan(defect_weights=weights)


def test_tilted_copies_are_zoomed_in_unless_the_group_is_cut_tilt_ready():
    plan = GroupPlan(size=4, tie_variants=1, ladder_share=1.0, full_frame_share=1.0, defects=("tilt",))
    rng = np.random.default_rng(0)
    clean, tie, *tilted = plan_group([SIZE], plan, rng)
    turned = [degraded_view(copy.view, copy.defects, SIZE, copy.seed) for copy in tilted]
    assert all(view.width < 0.99 * clean.view.width for view in turned)  # shrunk to fit: zoomed in

    ready = replace(plan, tilt_same_frame=True)
    clean, tie, *tilted = plan_group([SIZE], ready, np.random.default_rng(0))
    assert clean.view.width < full_frame(SIZE).width  # the clean view itself leaves the room a full tilt needs
    assert tie.view == replace(clean.view, mirrored=tie.view.mirrored)
    for copy in tilted:
        turned = degraded_view(copy.view, copy.defects, SIZE, copy.seed)
        assert turned.angle != 0 and fits(turned, SIZE)
        assert (turned.cx, turned.cy, turned.width, turned.height) == pytest.approx(
            (clean.view.cx, clean.view.cy, clean.view.width, clean.view.height)
        )  # the same rectangle of the photo, turned


def test_groups_without_tilt_are_drawn_alike_whether_or_not_tilt_groups_are_cut_tilt_ready():
    plan = GroupPlan(size=4, ladder_share=0.5, defects=("gaussian_blur", "noise", "tilt"))
    ready = replace(plan, tilt_same_frame=True)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(40):
        group, ready_group = plan_group([SIZE], plan, rng_a), plan_group([SIZE], ready, rng_b)
        if not any(defect.name == "tilt" for member in group for defect in member.defects):
            assert ready_group == group
        else:
            assert [member.defects for member in ready_group] == [member.defects for member in group]


def test_a_curriculum_changes_the_defect_types_drawn_with_the_epoch(photos):
    curriculum = [CurriculumStage(0, ("gaussian_blur",)), CurriculumStage(2, ("noise", "jpeg"))]
    plan = GroupPlan(size=4, ladder_share=1.0)
    groups = DegradedGroups(photos, groups_per_epoch=12, image_size=64, plan=plan, curriculum=curriculum)

    def drawn(epoch: int) -> set[str]:
        groups.set_epoch(epoch)
        return {defect.name for index in range(12) for member in groups.group(index) for defect in member.defects}

    assert drawn(0) == drawn(1) == {"gaussian_blur"}
    assert drawn(2) == drawn(5) == {"noise", "jpeg"}


def test_before_its_first_stage_a_curriculum_leaves_the_plan_as_it_is():
    curriculum = [CurriculumStage(3, ("noise",)), CurriculumStage(1, ("jpeg",))]
    assert stage_defects(curriculum, 0) is None
    assert stage_defects(curriculum, 1) == stage_defects(curriculum, 2) == ("jpeg",)
    assert stage_defects(curriculum, 3) == ("noise",)
    assert stage_defects([], 7) is None


def test_a_curriculum_naming_an_unknown_defect_is_refused_up_front(photos):
    with pytest.raises(ValueError, match="non-empty subset"):
        DegradedGroups(photos, 4, 64, curriculum=[CurriculumStage(0, ("focus",))])


def test_fixed_images_label_each_sample_with_its_target(photos):
    frame = full_frame(photos[0].image.size)
    samples = [DegradedSample(0, frame), DegradedSample(0, frame, (Defect("noise", 1.0),), seed=3)]
    dataset = DegradedImages(photos, samples, image_size=64)
    clean, noisy = dataset[0], dataset[1]
    assert dataset.items[0].score == CLEAN_MEAN and dataset.items[1].score == CLEAN_MEAN - DROP_AT_FULL_STRENGTH
    assert float(noisy["target"] @ torch.arange(1.0, 11.0)) == pytest.approx(dataset.items[1].score, abs=1e-4)
    assert not torch.equal(clean["pixels"], noisy["pixels"])


def test_a_resaved_photo_is_a_harmless_change_rendered_from_the_resaved_file(photos):
    frame = full_frame(photos[0].image.size)
    clean = DegradedSample(0, frame)
    resaved = replace(clean, source_quality=95)
    rendered: dict[View, np.ndarray] = {}
    clean_pixels = render_sample(photos, clean, 224, rendered)
    assert rendered  # the clean view is now cached ...
    resaved_pixels = render_sample(photos, resaved, 224, rendered)  # ... and must not stand in for the re-saved one
    assert resaved.score == CLEAN_MEAN
    assert 0 < _difference(clean_pixels, resaved_pixels) < 2


def test_ranking_loss_asks_for_score_gaps_in_proportion_to_the_target_gaps():
    target = torch.tensor([8.0, 5.0, 8.0, 3.0])  # gaps: 3 in group 0, 5 in group 1
    groups = torch.tensor([0, 0, 1, 1])
    spread = torch.tensor([8.0, 6.0, 7.0, 4.0])  # leads of 2 and 3: at least half of each target gap
    assert pairwise_ranking_loss(spread, target, groups, margin=0.5).item() == 0.0
    # Group 0 leads by only 1 (needs 1.5), group 1 is reversed (needs 2.5, has -1); across groups nothing counts.
    short = torch.tensor([7.0, 6.0, 4.0, 5.0], requires_grad=True)
    loss = pairwise_ranking_loss(short, target, groups, margin=0.5)
    assert loss.item() == pytest.approx((0.5 + 3.5) / 2)
    loss.backward()
    assert short.grad.tolist() == [-0.5, 0.5, -0.5, 0.5]
    alone = pairwise_ranking_loss(spread, target, torch.arange(4))
    assert alone.item() == 0.0 and alone.requires_grad is False


def test_ranking_loss_can_pull_same_target_pictures_together():
    target = torch.tensor([8.0, 8.0, 5.0])  # a photo, its mirror image, a degraded copy
    groups = torch.zeros(3, dtype=torch.long)
    predicted = torch.tensor([7.0, 6.0, 4.0])
    assert pairwise_ranking_loss(predicted, target, groups, margin=0.5).item() == 0.0
    assert pairwise_ranking_loss(predicted, target, groups, margin=0.5, tie_weight=2.0).item() == pytest.approx(2.0)


def test_ranking_loss_can_also_order_pictures_of_different_groups():
    target = torch.tensor([8.0, 5.0, 8.0, 5.0])  # two photos, each clean and degraded
    groups = torch.tensor([0, 0, 1, 1])
    # Each photo orders its own copies, but photo 1 sits lower: its clean view ties photo 0's degraded copy.
    predicted = torch.tensor([9.0, 7.0, 7.0, 5.0], requires_grad=True)
    assert pairwise_ranking_loss(predicted, target, groups, margin=0.5).item() == 0.0
    loss = pairwise_ranking_loss(predicted, target, groups, margin=0.5, cross_weight=2.0)
    # Across groups: 0 over 3 leads by 4 (needs 1.5), 2 over 1 leads by 0 (short by 1.5): mean 0.75, x 2.
    assert loss.item() == pytest.approx(1.5)
    loss.backward()
    assert predicted.grad.tolist() == [0.0, 1.0, -1.0, 0.0]


class _GeneratedDefects:
    """A training source over drawn landscapes, as the built-in model's recipe builds one over photos."""

    target = "votes"

    def __init__(self, photos):
        self.photos = photos

    def datasets(self, config, image_size):
        frame = full_frame(self.photos[0].image.size)
        val = [DegradedSample(0, frame)] + [DegradedSample(0, frame, (Defect(n, 1.0),)) for n in DEFECTS[:4]]
        return DataSets(
            DegradedGroups(self.photos[1:], 3, image_size, GroupPlan(size=3), config.seed),
            DegradedImages(self.photos[:1], val, image_size),
            DegradedImages([], [], image_size),
        )

    def describe(self):
        return "drawn landscapes with generated defects"

    def summary(self):
        return {"split": "scene0 held out", "sizes": {"train_photos": 2}, "dropped": {}}


def test_the_trainer_trains_on_generated_groups_with_the_ranking_loss(tmp_path, micro_preset, photos):
    store = ModelStore(tmp_path / "models")
    store.init(micro_preset, "start", seed=0)
    config = TrainConfig(
        init="start", name="defects", epochs=2, explore_epochs=1, batch_size=2, lr=1e-4, loss="emd",
        ranking_weight=1.0, flip=False, loader_workers=0, checkpoint_dir=str(tmp_path / "run"), seed=0,
    )
    result = Trainer(config, store, _GeneratedDefects(photos), progress=False, log=lambda line: None).run()
    assert [record.train_images for record in result.history] == [9, 9]  # 3 groups of 3 per epoch
    assert all(np.isfinite(record.train_loss) for record in result.history)
    card = store.card("defects")
    assert card.training_data == "drawn landscapes with generated defects"
    assert "pairwise ranking" in card.extra["loss"] and card.extra["split"] == "scene0 held out"
    assert card.metrics["val"]["count"] == 5


@pytest.mark.parametrize("stem_init, described", [("dct", "DCT patch embedding whitened on"),
                                                   ("dct_shared", "whitened with one detail gain per colour on")])
def test_a_fresh_model_can_start_from_a_whitened_dct_patch_embedding(tmp_path, photos, stem_init, described):
    config = TrainConfig(
        preset="nano", name="dct-start", epochs=2, explore_epochs=1, batch_size=2, loss="emd", loss_weight=0.1,
        ranking_weight=1.0, stem_init=stem_init, loader_workers=0, checkpoint_dir=str(tmp_path / "run"), seed=0,
    )
    trainer = Trainer(config, ModelStore(tmp_path / "models"), _GeneratedDefects(photos), progress=False,
                      log=lambda line: None)
    filters = trainer.module.patch_proj[0].weight.detach().reshape(48, 3, 16)
    mean_filter = filters[0, 0] / filters[0, 0].norm()  # the first filter: the red channel's mean, flat
    assert torch.allclose(mean_filter, torch.full((16,), 0.25), atol=1e-6)
    assert filters[0, 1:].abs().max() == 0  # it sees no other colour
    assert described in trainer.init_source
    assert trainer._loss_description().startswith("0.1 x emd")
