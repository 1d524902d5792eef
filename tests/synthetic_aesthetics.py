"""A synthetic, learnable aesthetics data set: the "true" score of every image is known.

Each image is a scene with one striped subject, in a narrow palette so that
the degradations, not the scenes' colours, tell images apart, plus
pixel-scale detail (grain). Four factors, drawn independently per image,
degrade it the way they degrade a photo, and the true score (1-10) is a
weighted sum of their qualities (``WEIGHTS``):

- **sharpness**: Gaussian blur of up to ``MAX_BLUR`` pixels (sharp is good);
- **exposure**: the scene darkened by up to 50 % (well exposed is good);
- **contrast**: the scene's deviations from its mean squeezed to as little as 35 %;
- **composition**: the subject sits on a rule-of-thirds point (good), drifts
  towards the centre, or is pushed off the frame so it is cut off (bad).

The weights favour what a small transformer picks up fast (blur and
exposure change every patch); contrast and composition count less. Two
choices keep blur learnable next to exposure, found by training on variants:
the narrow palette, and grain added after exposure (with free colours, or
grain that darkens with the scene, runs often learned exposure alone).

Votes are a histogram of ``votes_per_image`` raters, each rating the true
score plus rater noise, rounded into the bins 1..10, as AVA's votes are. The
files are written as AVA would ship them: a folder of JPEGs plus a label
file, here a generic CSV (``path``, ten vote columns ``votes_1``..``votes_10``,
the true qualities and score as extra columns, and optionally ``split``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from eat_curate.model.presets import EATPreset

IMAGE_SIZE = 224
MAX_BLUR = 3.0
# How much each quality moves the score; they sum to 1 (scores span 1..10).
WEIGHTS = {"sharpness": 0.4, "exposure": 0.35, "contrast": 0.15, "composition": 0.1}
VOTE_COLUMNS = [f"votes_{i}" for i in range(1, 11)]

# A test-only preset, far smaller than the real `nano`: the smallest EAT with every block kind
# (L, S and deformable D), about 60 training img/s on one CPU thread, small enough to learn this
# set from scratch in a couple of minutes.
PICO_PRESET = EATPreset(
    name="pico",
    dims=(16, 32, 64, 128),
    depths=(1, 1, 2, 2),
    heads=(1, 2, 4, 8),
    groups=(0, 0, 2, 4),
    drop_path_rate=0.0,
    stage_specs=(("L",), ("S",), ("L", "D"), ("L", "D")),
)


@dataclass(frozen=True)
class SyntheticImage:
    file: str
    sharpness: float  # qualities, each in [0, 1], 1 = best
    exposure: float
    contrast: float
    composition: float
    true_score: float
    votes: tuple[int, ...]


def true_score(qualities: dict[str, float]) -> float:
    """The score a perfect rater gives: 1 + 9 x the weighted mean of the qualities."""
    return 1.0 + 9.0 * sum(WEIGHTS[name] * qualities[name] for name in WEIGHTS)


def sample_votes(score: float, count: int, rng: np.random.Generator, rater_noise: float = 1.0) -> tuple[int, ...]:
    """A 10-bin vote histogram of ``count`` raters scoring ``score`` with Gaussian noise."""
    ratings = np.clip(np.rint(score + rng.normal(0.0, rater_noise, count)), 1, 10).astype(int)
    return tuple(int(n) for n in np.bincount(ratings - 1, minlength=10))


def _scene(rng: np.random.Generator, subject_centre: tuple[float, float]) -> np.ndarray:
    """(S, S, 3) float pixels in 0..255: a smooth background and a striped subject."""
    size = IMAGE_SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # A narrow palette: the degradations, not the scenes' colours, should tell images apart.
    colour = np.array([125.0, 135.0, 115.0]) + rng.uniform(-15, 15, 3)
    phase = rng.uniform(0, 2 * np.pi, 2)
    pixels = colour + 20 * np.stack(
        [np.sin(5 * xx + phase[0]), np.cos(4 * yy + phase[1]), np.sin(3 * (xx + yy))], axis=-1
    )
    cy, cx = subject_centre
    radius = rng.uniform(0.14, 0.2)
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
    subject = rng.uniform(0, 255, 3) + 60 * np.sign(np.sin(40 * xx + 40 * yy))[..., None]
    pixels[inside] = subject[inside]
    return pixels


def _fine_detail(rng: np.random.Generator, strength: float = 30.0) -> np.ndarray:
    """Pixel-scale detail everywhere: what blur destroys first."""
    return rng.normal(0, strength, (IMAGE_SIZE, IMAGE_SIZE, 1)) * np.array([1.0, 0.9, 1.1])


# The subject's centre for composition quality q: q = 1 on a thirds point,
# lower q moves it along a line to the centre (q = 0.5) and then out past the
# edge (q = 0), where the frame cuts it off.
def _subject_centre(quality: float, rng: np.random.Generator) -> tuple[float, float]:
    thirds = np.array([rng.choice([1 / 3, 2 / 3]), rng.choice([1 / 3, 2 / 3])])
    centre = np.array([0.5, 0.5])
    if quality >= 0.5:
        point = centre + (thirds - centre) * (quality - 0.5) * 2
    else:
        corner = centre + (thirds - centre) * 3.3  # beyond the frame's edge
        point = corner + (centre - corner) * quality * 2
    return float(point[0]), float(point[1])


def render(qualities: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """The image for the four qualities (each in [0, 1], 1 = best)."""
    pixels = _scene(rng, _subject_centre(qualities["composition"], rng))
    mean = pixels.mean(axis=(0, 1), keepdims=True)
    pixels = mean + (pixels - mean) * (0.35 + 0.65 * qualities["contrast"])
    # Detail after exposure, like a sensor's grain: how much of it survives tells sharpness
    # apart from exposure, so the two can be learned independently.
    pixels = pixels * (0.5 + 0.5 * qualities["exposure"]) + _fine_detail(rng)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    blur = MAX_BLUR * (1.0 - qualities["sharpness"])
    return image.filter(ImageFilter.GaussianBlur(blur)) if blur > 0.05 else image


def generate(
    folder: Path, count: int, seed: int = 0, val_count: int = 0, votes_per_image: int = 50, quality: int = 92
) -> list[SyntheticImage]:
    """Write ``count`` JPEGs into ``folder/images`` and their votes to ``folder/labels.csv``.

    With ``val_count``, the labels get a ``split`` column: the last
    ``val_count`` images are the validation set, the others train.
    """
    rng = np.random.default_rng(seed)
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        qualities = {name: float(rng.uniform(0, 1)) for name in WEIGHTS}
        file = f"img_{index:05d}.jpg"
        render(qualities, rng).save(images_dir / file, quality=quality)
        score = true_score(qualities)
        votes = sample_votes(score, votes_per_image, rng)
        items.append(SyntheticImage(file, **qualities, true_score=score, votes=votes))
    splits = ["train"] * (count - val_count) + ["val"] * val_count if val_count else None
    write_labels(folder / "labels.csv", items, splits)
    return items


def write_labels(path: Path, items: list[SyntheticImage], splits: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        # The truth rides along as extra columns; label readers ignore them.
        writer.writerow(["path", *VOTE_COLUMNS, *WEIGHTS, "true_score", *(["split"] if splits else [])])
        for number, item in enumerate(items):
            truth = [f"{getattr(item, name):.4f}" for name in (*WEIGHTS, "true_score")]
            writer.writerow([item.file, *item.votes, *truth, *([splits[number]] if splits else [])])
    return path
