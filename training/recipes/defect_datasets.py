"""Datasets of source photographs with generated defects, labelled by :mod:`training.recipes.defect_targets`.

- :class:`DegradedGroups` (training): each item is a *group* drawn afresh
  every epoch: one clean view of a training photo (a random crop or the full
  frame, maybe mirrored) and versions of that same view with one or two
  defects at random strengths, or a harmless re-encoding. The trainer keeps a
  group in one batch, so a ranking loss can compare a photo with its own
  degraded versions.
- :class:`DegradedImages` (validation, evaluation): a fixed list of
  :class:`DegradedSample`, one picture per item.

Samples are (224 x 224 x 3 uint8 pixels, target distribution), made with the
same ``resize_for_model`` as scoring. Everything is drawn from (seed, epoch,
item), so a sample is the same in whichever process makes it and after a
resume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from eat_curate.io.resize import resize_for_model
from training.recipes.crops import Crop, full_frame, source_extent
from training.recipes.defect_targets import target_distribution, target_mean
from training.recipes.defects import DEFECTS, Defect, degrade, jpeg_round_trip

WORKING_SHORT_SIDE = 256  # defects are made at this size, then squashed to the model's input like any photo


@dataclass(frozen=True)
class SourcePhoto:
    name: str
    image: Image.Image = field(repr=False)  # RGB, decoded once


@dataclass(frozen=True)
class DegradedSample:
    """One labelled picture: a view of a source photo, its defects, and how it was re-encoded."""

    photo: int  # index into the dataset's photos
    view: Crop
    defects: tuple[Defect, ...] = ()
    seed: int = 0
    recompress: int | None = None  # JPEG quality of a final harmless re-encoding, if any
    # JPEG quality the source photo is re-saved at before the view is cut: the photo file re-encoded, as a
    # user's copy of it may be (``recompress`` re-encodes the small picture the model sees, a harsher change)
    source_quality: int | None = None

    @property
    def score(self) -> float:
        """The target mean score (what ``training.evaluation.metrics_of`` compares with)."""
        return target_mean(defect.strength for defect in self.defects)

    def distribution(self) -> np.ndarray:
        return target_distribution(self.score)

    @property
    def is_clean(self) -> bool:
        return not any(defect.strength > 0 for defect in self.defects)


def render_sample(
    photos: Sequence[SourcePhoto],
    sample: DegradedSample,
    image_size: int,
    rendered: dict[Crop, np.ndarray] | None = None,
) -> np.ndarray:
    """(S, S, 3) uint8 model pixels of ``sample``; ``rendered``: see :func:`training.recipes.defects.degrade`."""
    source = photos[sample.photo].image
    if sample.source_quality is not None:
        source = Image.fromarray(jpeg_round_trip(np.asarray(source), sample.source_quality))
        rendered = None  # the cache holds views of the photo as it was
    pixels = degrade(source, sample.view, sample.defects, sample.seed, WORKING_SHORT_SIDE, rendered)
    if sample.recompress is not None:
        pixels = jpeg_round_trip(pixels, sample.recompress)
    return resize_for_model(Image.fromarray(pixels), image_size)


def _item(
    photos: Sequence[SourcePhoto],
    sample: DegradedSample,
    index: int,
    image_size: int,
    rendered: dict[Crop, np.ndarray] | None = None,
) -> dict:
    return {
        "index": index,
        "pixels": torch.from_numpy(render_sample(photos, sample, image_size, rendered)),
        "target": torch.from_numpy(sample.distribution()),
    }


class DegradedImages(torch.utils.data.Dataset):
    """A fixed list of degraded samples, one picture per item (validation and evaluation)."""

    target = "votes"  # samples carry 10-bin distributions, as AVA's votes do

    def __init__(self, photos: Sequence[SourcePhoto], items: Sequence[DegradedSample], image_size: int) -> None:
        self.photos = list(photos)
        self.items = list(items)
        self.image_size = image_size

    def set_epoch(self, epoch: int) -> None:
        """Fixed samples: the epoch changes nothing."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return _item(self.photos, self.items[index], index, self.image_size)


# --- training groups -------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPlan:
    """How training groups are drawn."""

    size: int = 4  # pictures per group: the clean view and size - 1 variants of it
    # Of those variants, how many are always harmless (tie pairs with the clean view), whatever else the group
    # holds: ladders otherwise have none, and with one in every group the model learnt to order more defect
    # types without moving more under a JPEG q95 re-encode of new photos
    # (README.md beside this file).
    tie_variants: int = 0
    full_frame_share: float = 0.25  # clean views that are the whole photo; the rest are random crops
    min_crop: float = 0.7  # a clean crop keeps at least this share of the photo's width and height
    harmless_share: float = 0.25  # variants only mirrored and/or re-encoded (JPEG quality 88-97): same target
    two_defect_share: float = 0.25  # defective variants that carry two defects instead of one
    min_strength: float = 0.1
    ladder_share: float = 0.0  # groups that are one defect at rising strengths instead of mixed variants
    defects: tuple[str, ...] = DEFECTS  # the defect types drawn (a curriculum stage narrows them)

    def __post_init__(self) -> None:
        unknown = [name for name in self.defects if name not in DEFECTS]
        if not self.defects or unknown or len(set(self.defects)) < len(self.defects):
            raise ValueError(f"defects must be a non-empty subset of {', '.join(DEFECTS)}; got {self.defects}")
        if self.size < 2:
            raise ValueError(f"a group needs the clean view and at least one variant, got size {self.size}")
        if not 0 <= self.tie_variants <= self.size - 2:
            raise ValueError(
                f"tie_variants must leave at least one other variant in a group of {self.size}, got {self.tie_variants}"
            )
        if not 0.0 <= self.ladder_share <= 1.0:
            raise ValueError(f"ladder_share must be in [0, 1], got {self.ladder_share}")

    @property
    def drawn_variants(self) -> int:
        """Variants per group besides the clean view and its ties: ladder rungs, or mixed variants."""
        return self.size - 1 - self.tie_variants


def random_clean_view(size: tuple[int, int], plan: GroupPlan, rng: np.random.Generator) -> Crop:
    """The full frame or a crop of at least ``plan.min_crop`` of each side anywhere in it; mirrored half the time."""
    mirrored = bool(rng.random() < 0.5)
    frame = full_frame(size)
    if rng.random() < plan.full_frame_share:
        return replace(frame, mirrored=mirrored)
    extent_w, extent_h = source_extent(size)
    scale = rng.uniform(plan.min_crop, 1.0)
    stretch = math.sqrt(rng.uniform(0.85, 1.18))  # a slightly different aspect ratio
    width = min(extent_w, extent_w * scale * stretch)
    height = min(extent_h, extent_h * scale / stretch)
    cx = float(rng.uniform(width / 2, extent_w - width / 2))
    cy = float(rng.uniform(height / 2, extent_h - height / 2))
    return Crop(cx, cy, width, height, mirrored=mirrored)


def harmless_variant(view: Crop, photo: int, seed: int, rng: np.random.Generator) -> DegradedSample:
    """``view`` mirrored, re-encoded (JPEG quality 88-97) or both: it must score as the clean view does."""
    change = int(rng.integers(3))  # 0: mirror, 1: re-encode, 2: both
    if change != 1:
        view = replace(view, mirrored=not view.mirrored)
    quality = int(rng.integers(88, 98)) if change != 0 else None
    return DegradedSample(photo, view, seed=seed, recompress=quality)


def random_variant(view: Crop, photo: int, plan: GroupPlan, rng: np.random.Generator) -> DegradedSample:
    """``view`` harmlessly changed (mirrored, re-encoded or both), or with one or two defects at random strengths."""
    seed = int(rng.integers(2**31))
    if rng.random() < plan.harmless_share:
        return harmless_variant(view, photo, seed, rng)
    count = 2 if rng.random() < plan.two_defect_share and len(plan.defects) > 1 else 1
    names = rng.choice(len(plan.defects), size=count, replace=False)
    defects = tuple(Defect(plan.defects[i], float(rng.uniform(plan.min_strength, 1.0))) for i in sorted(names))
    return DegradedSample(photo, view, defects, seed)


def defect_ladder(view: Crop, photo: int, plan: GroupPlan, rng: np.random.Generator) -> list[DegradedSample]:
    """``plan.drawn_variants`` copies of ``view`` with one defect type at rising random strengths.

    Every pair of a ladder (clean view included) compares the same defect at
    two strengths, so each group teaches one defect's whole scale; mixed
    groups spread their few pairs over all types, and the subtle defects
    (focus, noise, compression) are then learned far more slowly than the
    loud ones (exposure, contrast).
    """
    name = plan.defects[int(rng.integers(len(plan.defects)))]
    strengths = np.sort(rng.uniform(plan.min_strength, 1.0, size=plan.drawn_variants))
    return [
        DegradedSample(photo, view, (Defect(name, float(strength)),), int(rng.integers(2**31)))
        for strength in strengths
    ]


def plan_group(sizes: Sequence[tuple[int, int]], plan: GroupPlan, rng: np.random.Generator) -> list[DegradedSample]:
    """One training group: a clean view of a random photo first, its tie variants, then the rest (mixed, or a ladder)."""
    photo = int(rng.integers(len(sizes)))
    view = random_clean_view(sizes[photo], plan, rng)
    ties = [harmless_variant(view, photo, int(rng.integers(2**31)), rng) for _ in range(plan.tie_variants)]
    if plan.ladder_share > 0 and rng.random() < plan.ladder_share:
        return [DegradedSample(photo, view), *ties, *defect_ladder(view, photo, plan, rng)]
    return [DegradedSample(photo, view), *ties, *(random_variant(view, photo, plan, rng)
                                                  for _ in range(plan.drawn_variants))]


@dataclass(frozen=True)
class CurriculumStage:
    """From epoch ``first_epoch`` (0-based) on, groups draw only ``defects``."""

    first_epoch: int
    defects: tuple[str, ...]


def stage_defects(curriculum: Sequence[CurriculumStage], epoch: int) -> tuple[str, ...] | None:
    """The defect types of the latest stage begun by ``epoch``; None before the first stage (or with none)."""
    begun = [stage for stage in curriculum if stage.first_epoch <= epoch]
    return max(begun, key=lambda stage: stage.first_epoch).defects if begun else None


class DegradedGroups(torch.utils.data.Dataset):
    """Training groups drawn afresh every epoch; ``len`` is the number of groups per epoch.

    With a ``curriculum``, the defect types drawn change with the epoch
    (e.g. focus alone first: learnt together from the start, blur and noise
    pull the first features in opposite directions); otherwise, and before
    its first stage, ``plan.defects``.
    """

    target = "votes"

    def __init__(
        self,
        photos: Sequence[SourcePhoto],
        groups_per_epoch: int,
        image_size: int,
        plan: GroupPlan = GroupPlan(),
        seed: int = 0,
        curriculum: Sequence[CurriculumStage] = (),
    ) -> None:
        self.photos = list(photos)
        self.sizes = [photo.image.size for photo in self.photos]
        self.groups_per_epoch = groups_per_epoch
        self.image_size = image_size
        self.plan = plan
        self.seed = seed
        self.curriculum = tuple(curriculum)
        # One plan per stage, made (and its defect names checked) here, not for every group in a loader worker.
        self._stage_plans = {stage.defects: replace(plan, defects=stage.defects) for stage in self.curriculum}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.groups_per_epoch

    def plan_at(self, epoch: int) -> GroupPlan:
        defects = stage_defects(self.curriculum, epoch)
        return self.plan if defects is None else self._stage_plans[defects]

    def group(self, index: int) -> list[DegradedSample]:
        return plan_group(self.sizes, self.plan_at(self.epoch), np.random.default_rng((self.seed, self.epoch, index)))

    def __getitem__(self, index: int) -> list[dict]:
        """The group's samples; each carries ``index``, which is how the trainer knows they belong together."""
        rendered: dict[Crop, np.ndarray] = {}  # views of the group's one photo
        return [_item(self.photos, sample, index, self.image_size, rendered) for sample in self.group(index)]
