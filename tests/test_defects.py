"""The recipe's generated-defect training path: crops, defects, targets, groups, and real training runs.

Source photos here are eat-curate's drawn landscapes (no download); the
model is the tiny ``micro`` preset.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from eat_curate.model.model_store import ModelStore
from eat_curate.samples import landscape
from training.config import ConfigError, TrainConfig
from training.datasets import collate
from training.recipes.crops import Crop, fits, full_frame, render, rotated, source_extent, sub_crop
from training.recipes.dct_stem import start_stem_as_whitened_dct
from training.recipes.defect_datasets import (
    CurriculumStage,
    DegradedGroups,
    DegradedImages,
    DegradedSample,
    GroupPlan,
    SourcePhoto,
    random_clean_view,
    render_sample,
    stage_defects,
)
from training.recipes.defect_targets import (
    CLEAN_MEAN,
    DROP_AT_FULL_STRENGTH,
    FLOOR_MEAN,
    target_distribution,
    target_mean,
)
from training.recipes.defects import (
    DEFECTS,
    Defect,
    DegradationError,
    degrade,
    degraded_view,
    jpeg_quality,
)
from training.trainer import Trainer
from training.training_data import DataSets

SIZE = (480, 320)


@pytest.fixture(scope="module")
def source() -> Image.Image:
    return landscape(seed=3, size=SIZE)


@pytest.fixture(scope="module")
def frame(source) -> Crop:
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


# --- crops -----------------------------------------------------------------------------


def test_a_rotated_view_samples_the_rotated_rectangle():
    width, height = 600, 400
    ys, xs = np.mgrid[0:height, 0:width]
    ramps = Image.fromarray(np.stack([xs * 255 // width, ys * 255 // height, np.zeros_like(xs)], -1).astype(np.uint8))
    view = Crop(0.75, 0.5, 0.5, 0.3, angle=20)
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


def test_sub_crops_are_pushed_toward_the_asked_corner(frame):
    top_left = sub_crop(frame, 0.5, (-1, -1))
    assert (top_left.cx, top_left.cy) == pytest.approx((frame.width / 4, frame.height / 4))
    mirrored = sub_crop(Crop(frame.cx, frame.cy, frame.width, frame.height, mirrored=True), 0.5, (-1, -1))
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


def test_clean_crops_keep_most_of_the_photo_and_may_sit_anywhere_in_it():
    size = (400, 300)
    extent_w, _ = source_extent(size)
    plan = GroupPlan(full_frame_share=0.0)
    rng = np.random.default_rng(0)
    crops = [random_clean_view(size, plan, rng) for _ in range(200)]
    # At least min_crop (0.7) of each side, give or take the aspect ratio's stretch (at most sqrt(0.85) ~ 0.92).
    assert all(fits(crop, size) and crop.width >= 0.7 * 0.92 * extent_w for crop in crops)
    # Each crop's offset from the photo's centre, as a share of the room it leaves on that axis.
    offsets = [abs(crop.cx - extent_w / 2) / ((extent_w - crop.width) / 2) for crop in crops if crop.width < extent_w]
    assert max(offsets) > 0.95  # up against an edge, not only the photographer's centre


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
    rendered: dict[Crop, np.ndarray] = {}
    clean_pixels = render_sample(photos, clean, 224, rendered)
    assert rendered  # the clean view is now cached ...
    resaved_pixels = render_sample(photos, resaved, 224, rendered)  # ... and must not stand in for the re-saved one
    assert resaved.score == CLEAN_MEAN
    assert 0 < _difference(clean_pixels, resaved_pixels) < 2


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
    # At a 64-pixel input: the groups are rendered at the working size as ever and only resized to the model's
    # input at the end, and training steps at 224 pixels were about half of this test's time.
    store.init(replace(micro_preset, name="micro-64px", image_size=64, window_size=2), "start", seed=0)
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


def test_a_fresh_model_can_start_from_a_whitened_dct_patch_embedding(tmp_path, photos):
    config = TrainConfig(
        preset="nano", name="dct-start", epochs=2, explore_epochs=1, batch_size=2, loss="emd", loss_weight=0.1,
        ranking_weight=1.0, loader_workers=0, checkpoint_dir=str(tmp_path / "run"), seed=0,
    )
    trainer = Trainer(config, ModelStore(tmp_path / "models"), _GeneratedDefects(photos), progress=False,
                      log=lambda line: None, init_fresh_model=partial(start_stem_as_whitened_dct, seed=0))
    filters = trainer.module.patch_proj[0].weight.detach().reshape(48, 3, 16)
    mean_filter = filters[0, 0] / filters[0, 0].norm()  # the first filter: the red channel's mean, flat
    assert torch.allclose(mean_filter, torch.full((16,), 0.25), atol=1e-6)
    assert filters[0, 1:].abs().max() == 0  # it sees no other colour
    assert "DCT patch embedding whitened on" in trainer.init_source
    assert trainer._loss_description().startswith("0.1 x emd")


def test_a_start_of_its_own_contradicts_starting_from_a_stored_model(tmp_path, micro_preset, photos):
    store = ModelStore(tmp_path / "models")
    store.init(micro_preset, "start", seed=0)
    config = TrainConfig(init="start", name="dct-start", epochs=2, explore_epochs=1, checkpoint_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--init start already has weights"):
        Trainer(config, store, _GeneratedDefects(photos), progress=False,
                init_fresh_model=partial(start_stem_as_whitened_dct, seed=0))
