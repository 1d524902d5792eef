"""A small photo library, scored for real, for the read-side tests (albums, rank, filter, export, ...).

``write_library(root)`` writes real image files:

- ``trips/``: four distinct scenes, and ``trip_1_again.jpg``, the same bytes
  as ``trip_1.jpg`` (a tie in score inside one album);
- ``family/``: three scenes, ``copy_of_trip_1.jpg`` (the same bytes as
  ``trips/trip_1.jpg``: a tie in score, and a near-duplicate at distance 0
  across albums) and ``broken.jpg`` (a truncated JPEG: an error row);
- ``beach/``: a burst of four near-identical shots one second apart, and one
  unrelated shot taken an hour later;
- ``HOSTILE_ALBUM`` and ``LOOKALIKE_ALBUM``: two scenes each; the names hold
  quotes, a semicolon, SQL comment dashes, ``%``, ``_`` and unicode, and
  differ only where LIKE would treat ``_`` as a wildcard.

Scenes are random colour fields, far apart in perceptual hash (16+ bits of
64); the burst shots are a few bits apart. ``score_into`` runs the real
``eat-curate score`` command into a database; ``temporary_pg_database``
makes a PostgreSQL database that lives as long as a test module.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import ExifTags, Image

from conftest import PG_ADMIN_URL
from eat_curate.cli import cli

HOSTILE_ALBUM = "O'Brien; DROP TABLE scores;-- 50%_off ünï 🎉"
LOOKALIKE_ALBUM = "O'Brien; DROP TABLE scores;-- 50%Xoff ünï 🎉"  # what LIKE's '_' would also match
BURST_START = "2024:07:01 10:00:00"


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A photo-like picture whose layout (hence perceptual hash) depends on ``seed``."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    return np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255)


def save_jpeg(path: Path, pixels: np.ndarray, captured_at: str | None = None, quality: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if captured_at:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = captured_at
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality, exif=exif)
    return path


@dataclass(frozen=True)
class Library:
    root: Path
    burst: tuple[Path, ...]
    broken: Path
    copy: tuple[Path, Path]  # (original, byte-identical copy in another album)

    def album(self, name: str) -> Path:
        return self.root / name


def write_library(root: Path) -> Library:
    for i in range(4):
        save_jpeg(root / "trips" / f"trip_{i}.jpg", scene(i), f"2024:06:0{i + 1} 12:00:00")
    for i in range(3):
        save_jpeg(root / "family" / f"family_{i}.jpg", scene(10 + i), f"2023:12:2{i} 18:00:00")
    original = root / "trips" / "trip_1.jpg"
    copy = root / "family" / "copy_of_trip_1.jpg"
    copy.write_bytes(original.read_bytes())
    (root / "trips" / "trip_1_again.jpg").write_bytes(original.read_bytes())  # a tie inside one album
    broken = root / "family" / "broken.jpg"
    buffer = io.BytesIO()
    Image.fromarray(scene(13).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    broken.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])

    base, rng = scene(20), np.random.default_rng(1)
    burst = tuple(
        save_jpeg(
            root / "beach" / f"burst_{k}.jpg",
            np.roll(base, k, axis=1) + rng.normal(0, 3, base.shape) + 4 * k,  # 2-4 bits apart, none equal
            f"2024:07:01 10:00:0{k}",
            quality=90 - 3 * k,
        )
        for k in range(4)
    )
    save_jpeg(root / "beach" / "sunset.jpg", scene(21), "2024:07:01 11:00:00")
    for offset, album in enumerate((HOSTILE_ALBUM, LOOKALIKE_ALBUM)):
        for i in range(2):
            save_jpeg(root / album / f"photo_{i}.jpg", scene(30 + 2 * offset + i))
    return Library(root=root, burst=burst, broken=broken, copy=(original, copy))


def score_into(db: str, *sources: Path | str, model_path: Path) -> None:
    """Run the real `eat-curate score` into ``db`` (a path or URL); fails the test if it fails."""
    arguments = ["score", *map(str, sources), "--model", str(model_path), "--db", db, "--quiet"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output + repr(result.exception)


def invoke(*arguments: str | Path, expect_ok: bool = True):
    """Run an eat-curate command through CliRunner; stdout and stderr are kept apart."""
    result = CliRunner().invoke(cli, [str(argument) for argument in arguments])
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@contextmanager
def temporary_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (URL), dropped on exit; fails loudly when the server is down."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"eatc_read_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
