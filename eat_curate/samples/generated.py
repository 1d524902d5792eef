"""A small folder of generated photos to try eat-curate on, with no download.

Simple landscapes (sky, sun, hills, trees) drawn with Pillow, in two albums,
each scene also saved with a visible defect (blurred, underexposed, noisy,
tilted) so a model that measures technical soundness has something to rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from eat_curate.errors import EatCurateError

DEFECTS = ("sharp", "blurred", "dark", "noisy", "tilted")


def landscape(seed: int, size: tuple[int, int] = (1024, 768)) -> Image.Image:
    """A procedurally drawn landscape; the same seed gives the same picture."""
    rng = np.random.default_rng(seed)
    width, height = size
    horizon = int(height * rng.uniform(0.45, 0.65))
    sky_top, sky_bottom = rng.integers(40, 120, 3), rng.integers(150, 240, 3)
    rows = np.linspace(0, 1, horizon)[:, None]
    sky = (sky_top[None, :] * (1 - rows) + sky_bottom[None, :] * rows).astype(np.uint8)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:horizon] = sky[:, None, :]
    ground = rng.integers(30, 140, 3)
    canvas[horizon:] = ground
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)

    sun_x, sun_y, radius = rng.integers(width // 8, width * 7 // 8), rng.integers(40, horizon - 40), rng.integers(25, 70)
    draw.ellipse((sun_x - radius, sun_y - radius, sun_x + radius, sun_y + radius), fill=(255, 230, 150))
    for _ in range(3):  # hills
        peak_x, peak_h = rng.integers(0, width), rng.integers(60, 200)
        shade = tuple(int(c) for c in np.clip(ground + rng.integers(-30, 30, 3), 0, 255))
        draw.polygon([(peak_x - 400, horizon + 5), (peak_x, horizon - peak_h), (peak_x + 400, horizon + 5)], fill=shade)
    for _ in range(rng.integers(4, 12)):  # trees
        x, y = rng.integers(0, width), rng.integers(horizon, height - 20)
        h = rng.integers(40, 140)
        draw.rectangle((x - 4, y - h // 3, x + 4, y), fill=(80, 50, 30))
        green = (int(rng.integers(20, 60)), int(rng.integers(90, 160)), int(rng.integers(20, 60)))
        draw.ellipse((x - h // 3, y - h, x + h // 3, y - h // 3), fill=green)
    noise = rng.normal(0, 4, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def with_defect(image: Image.Image, defect: str, seed: int = 0) -> Image.Image:
    if defect == "sharp":
        return image
    if defect == "blurred":
        return image.filter(ImageFilter.GaussianBlur(radius=6))
    if defect == "dark":
        return Image.fromarray((np.asarray(image, dtype=np.float32) * 0.25).astype(np.uint8))
    if defect == "noisy":
        rng = np.random.default_rng(seed)
        noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 40, (image.height, image.width, 3))
        return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if defect == "tilted":
        return image.rotate(12, resample=Image.Resampling.BICUBIC, expand=False)
    raise ValueError(f"unknown defect {defect!r}; expected one of {', '.join(DEFECTS)}")


def write_sample_photos(folder: Path, scenes_per_album: int = 3) -> list[Path]:
    """Write ``albums x scenes x defects`` JPEGs under ``folder``; returns the paths written.

    Never overwrites: a file already at a sample's path is left as it is and
    not returned (see :func:`sample_paths` for every path a call would use).
    A folder that cannot be written is an :class:`EatCurateError`, in one line.
    """
    written = []
    scenes: dict[int, Image.Image] = {}  # each scene drawn once, for its defects
    for path, seed, defect in _samples(folder, scenes_per_album):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as handle:  # "x": fails on an existing file instead of replacing it
                if seed not in scenes:
                    scenes[seed] = landscape(seed)
                picture = scenes[seed]
                with_defect(picture, defect, seed).save(handle, format="JPEG", quality=90)
        except FileExistsError:
            continue
        except OSError as error:
            raise EatCurateError(f"cannot write sample photos into {folder}: {error.strerror or error}") from None
        written.append(path)
    return written


def sample_paths(folder: Path, scenes_per_album: int = 3) -> list[Path]:
    """Every path :func:`write_sample_photos` writes (or keeps, where a file is already there)."""
    return [path for path, _, _ in _samples(folder, scenes_per_album)]


def _samples(folder: Path, scenes_per_album: int) -> Iterator[tuple[Path, int, str]]:
    for album_index, album in enumerate(("hiking", "holiday")):
        for scene in range(scenes_per_album):
            seed = 100 * album_index + scene
            for defect in DEFECTS:
                path = folder / album / f"scene{scene + 1}_{defect}.jpg"
                yield path, seed, defect
