"""Real camera-size photographs: Debian's wallpaper packages, for training recipes and benchmarks.

The wallpapers in these packages are real photographs (landscapes, macro,
city shots) of 2-30 megapixels, free to redistribute, and one `apt-get
download` away on any Debian/Ubuntu machine. Benchmarks and recipes call
:func:`fetch_debian_wallpapers` explicitly; nothing calls it at import time
and tests never do (they must not reach the network).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from eat_curate.errors import EatCurateError

WALLPAPER_PACKAGES = ("gnome-backgrounds", "mate-backgrounds", "plasma-workspace-wallpapers")
# The packages also hold SVG artwork and XML slideshow definitions (not photos) and
# KDE's 400x250 `screenshot.*` previews (thumbnails of the wallpapers beside them).
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}  # GNOME ships its photos as WebP
PREVIEW_STEM = "screenshot"


class PhotoFetchError(EatCurateError):
    """The wallpaper packages could not be downloaded or unpacked."""


def _run(command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        reason = detail[-1] if detail else f"exit status {error.returncode}"
        raise PhotoFetchError(f"`{' '.join(command)}` failed: {reason}") from None


def fetch_debian_wallpapers(cache_dir: Path, packages: Sequence[str] = WALLPAPER_PACKAGES) -> list[Path]:
    """Download and unpack Debian's wallpaper ``packages`` into ``cache_dir``; return their photo files.

    Already unpacked packages are reused, so a second call does not touch the
    network. Returns the JPEG/PNG/WebP photos found, sorted; symlinks to a
    file already listed are left out, the same picture at several resolutions is kept.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise PhotoFetchError(
                f"`{tool}` is not available: fetching Debian's wallpaper photos needs a Debian or Ubuntu system"
            )
    cache_dir = Path(cache_dir).absolute()  # dpkg runs inside it: relative paths would break
    debs = cache_dir / "debs"
    unpacked = cache_dir / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    for package in packages:
        target = unpacked / package
        if target.is_dir():
            continue
        if not list(debs.glob(f"{package}_*.deb")):
            _run(["apt-get", "download", package], cwd=debs)
        downloaded = sorted(debs.glob(f"{package}_*.deb"))
        if not downloaded:
            raise PhotoFetchError(f"`apt-get download {package}` left no .deb file in {debs}")
        deb = downloaded[-1]
        partial = unpacked / f".{package}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _run(["dpkg", "-x", str(deb), str(partial)], cwd=cache_dir)
        partial.rename(target)  # only complete extractions count as cached
    photos: dict[Path, Path] = {}
    for path in sorted(path for package in packages for path in (unpacked / package).rglob("*")):
        if path.suffix.lower() in PHOTO_SUFFIXES and path.stem != PREVIEW_STEM and path.is_file():
            photos.setdefault(path.resolve(), path)
    return sorted(photos.values())
