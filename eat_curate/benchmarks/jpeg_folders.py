"""Folders of JPEGs for decode-heavy benchmarks: real photos at camera size, or generated pictures at any size."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from eat_curate.samples.debian_wallpapers import fetch_debian_wallpapers


def camera_size_folder(photos: Sequence[Path], folder: Path, count: int = 24, megapixels: float = 12.0) -> list[Path]:
    """Real photos upscaled to camera size (4:3, ``megapixels``) as quality-92 JPEGs, for decode-heavy benchmarks.

    Distinct pictures only (by content), cycled with mirror/rotation variants
    until ``count`` files exist. Existing files are reused.
    """
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    distinct = []
    for photo in sorted(photos):
        digest = hashlib.sha256(Path(photo).read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            distinct.append(photo)
    if not distinct:
        raise ValueError("no photos to build the benchmark folder from")
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = width * 3 // 4
    written = []
    for index in range(count):
        target = folder / f"camera_{index:03d}.jpg"
        if not target.exists():
            with Image.open(distinct[index % len(distinct)]) as image:
                picture = ImageOps.exif_transpose(image).convert("RGB")
                variant = index // len(distinct)
                if variant % 2:
                    picture = ImageOps.mirror(picture)
                picture = picture.rotate(90 * (variant // 2 % 4), expand=True).resize((width, height), Image.Resampling.LANCZOS)
                picture.save(target, quality=92)
        written.append(target)
    return written


def camera_photo_folder(folder: Path, count: int) -> list[Path]:
    """Fill ``folder`` with ``count`` camera-size JPEGs made from Debian's wallpaper photos.

    The wallpaper packages are kept beside it (``.wallpapers``), so later runs do not download them again.
    """
    photos = fetch_debian_wallpapers(folder.parent / ".wallpapers")
    return camera_size_folder([p for p in photos if p.suffix.lower() in (".jpg", ".jpeg")], folder, count)


def _write_generated_jpeg(job: tuple[Path, int, int, int]) -> None:
    """Smooth random colour fields plus grain: decodes like a photo, unlike flat test patterns."""
    path, width, height, seed = job
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.SMOOTH)
    noise = rng.normal(0, 6, (height, width, 3))
    picture = Image.fromarray(np.clip(np.asarray(picture, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    picture.save(path, quality=90)


def generated_jpeg_folder(folder: Path, count: int, width: int, height: int, unique: int = 256) -> Path:
    """``count`` JPEGs: ``unique`` generated pictures (the slow part), copied under new names up to ``count``."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"img_{i:05d}.jpg", width, height, i) for i in range(min(count, unique))]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_generated_jpeg, jobs, chunksize=4))
    for i in range(len(jobs), count):
        shutil.copyfile(jobs[i % len(jobs)][0], folder / f"img_{i:05d}.jpg")
    return folder
