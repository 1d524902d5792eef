"""The source photographs of the built-in model: the real photos among Debian's wallpapers.

The recipe fetches the three desktop wallpaper packages and two of Ubuntu
Touch's, Lomiri's 16.04 and 20.04 sets (:data:`PHOTO_PACKAGES`).
``fetch_debian_wallpapers`` returns every picture in them. Most of GNOME's
and many of KDE's and MATE's are artwork: renders, gradients, vector
shapes, paintings (GNOME's adwaita/blobs/..., KDE's Flow, Honeywave, Shell,
Volna, Kay, MilkyWay, Autumn, ..., MATE's abstract and desktop sets;
Lomiri's Fossa, Infinite-Sea, Painting-Colors, analogpattern, umang).
Defects of such pictures say little about photographs, so only the pictures
named in :data:`PHOTOGRAPHS` are kept; each was checked by eye to be a real
camera photograph. The same picture shipped at several resolutions counts
once (the largest file), found by comparing small thumbnails.

Each photo's licence and copyright are read from its package's
``/usr/share/doc/<package>/copyright`` (Debian's machine-readable format),
plus, for KDE wallpapers, the licence and author in the wallpaper's own
``metadata.json``.
Lomiri's copyright files name each photo by its place in the source tree
(``16.04/x.jpg``), not where it is installed (``usr/share/backgrounds/x.jpg``),
so a pattern naming one file matches by file name.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from eat_curate.errors import EatCurateError
from eat_curate.io.decode import open_image
from eat_curate.samples.debian_wallpapers import WALLPAPER_PACKAGES

LOMIRI_16 = "lomiri-wallpapers-16.04"
LOMIRI_20 = "lomiri-wallpapers-20.04"
PHOTO_PACKAGES = (*WALLPAPER_PACKAGES, LOMIRI_16, LOMIRI_20)  # every package the recipe may fetch

# Picture name -> package. KDE names are the wallpaper's folder, the others the file stem.
PHOTOGRAPHS: dict[str, str] = {
    **{
        name: "mate-backgrounds"
        for name in (
            "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow",
            "LadyBird", "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower",
        )
    },
    **{
        name: "plasma-workspace-wallpapers"
        for name in (
            "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
            "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
        )
    },
    **{
        name: LOMIRI_16
        for name in (
            "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
            "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    },
    "Kleiber_by_Lukas_Baubkus": LOMIRI_20,
}
SAME_PICTURE_DIFFERENCE = 6.0  # mean |difference| of 32x32 grey thumbnails (0-255) below which two files are one picture


class SourcePhotoError(EatCurateError):
    """The wallpaper cache does not hold the photographs the recipe needs."""


@dataclass(frozen=True)
class PhotoFile:
    name: str
    package: str
    path: Path
    width: int
    height: int
    license: str  # as the package's copyright file states it
    copyright: str
    metadata_license: str | None = None  # KDE: the wallpaper's own metadata.json
    author: str | None = None

    @property
    def path_in_package(self) -> str:
        """Where the package installs it, e.g. ``usr/share/wallpapers/Path/contents/images/1280x1024.jpg``."""
        return str(self.path.relative_to(_package_root(self.path, self.package)))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = self.path_in_package
        return data


def package_of(path: Path) -> str | None:
    for part in path.parts:
        if part in PHOTO_PACKAGES:
            return part
    return None


def picture_name(path: Path) -> str:
    """KDE: ``wallpapers/<Name>/contents/images/WxH.jpg`` -> Name; others: the file stem."""
    parts = path.parts
    if "contents" in parts:
        return parts[parts.index("contents") - 1]
    return path.stem


def _thumbnail(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image.draft("RGB", (64, 64))
        return np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)


def distinct_pictures(paths: list[Path]) -> list[Path]:
    """One file per picture: files whose thumbnails match are the same picture; the largest is kept."""
    by_size = sorted(paths, key=lambda p: (-_pixel_count(p), str(p)))
    kept: list[tuple[Path, np.ndarray]] = []
    for path in by_size:
        thumb = _thumbnail(path)
        if all(np.abs(thumb - other).mean() >= SAME_PICTURE_DIFFERENCE for _, other in kept):
            kept.append((path, thumb))
    return sorted(path for path, _ in kept)


def _pixel_count(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def _package_root(path: Path, package: str) -> Path:
    parts = path.parts
    return Path(*parts[: parts.index(package) + 1])


def read_copyright(package_root: Path, package: str) -> list[dict]:
    """The stanzas (field -> text) of a Debian machine-readable copyright file; [] if it is not one."""
    path = package_root / "usr" / "share" / "doc" / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    text = text.lstrip()
    if not text.startswith("Format:"):
        return []
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        stanzas.append(fields)
    return stanzas


def matches_files_pattern(path: Path, pattern: str) -> bool:
    """Whether a copyright file's ``Files`` pattern covers ``path`` (installed, so its source folder may differ).

    A glob (``*``, ``debian/*``, ``backgrounds/*.jpg``) matches the end of the
    path; a pattern naming one file matches any file of that name, as the
    source tree's folders are often not the installed ones.
    """
    if any(char in pattern for char in "*?["):
        return pattern == "*" or fnmatch.fnmatch(str(path), f"*{pattern}")
    return Path(pattern).name == path.name


def licence_of(path: Path, package: str) -> tuple[str, str]:
    """(licence, copyright) of the copyright stanza whose ``Files`` patterns match ``path`` best (the last match)."""
    matched = ("unknown", "unknown")
    for stanza in read_copyright(_package_root(path, package), package):
        patterns = stanza.get("Files", "").split()
        if any(matches_files_pattern(path, pattern) for pattern in patterns):
            if "License" in stanza:
                matched = (stanza["License"].splitlines()[0], " ".join(stanza.get("Copyright", "").split()))
    return matched


def picture_metadata(path: Path) -> tuple[str | None, str | None]:
    """(licence, author) a KDE wallpaper states in its own ``metadata.json``; (None, None) for the others."""
    parts = path.parts
    if "contents" not in parts:
        return None, None
    metadata = Path(*parts[: parts.index("contents")]) / "metadata.json"
    try:
        plugin = json.loads(metadata.read_text())["KPlugin"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None, None
    authors = ", ".join(author.get("Name", "") for author in plugin.get("Authors", []))
    return plugin.get("License"), authors or None


def select_photographs(paths: list[Path], packages: Sequence[str] = PHOTO_PACKAGES) -> list[PhotoFile]:
    """The real photographs of ``packages`` among the wallpaper files, one file per picture, with licence and size."""
    wanted = {name for name, package in PHOTOGRAPHS.items() if package in packages}
    candidates = [p for p in paths if picture_name(p) in wanted and PHOTOGRAPHS[picture_name(p)] == package_of(p)]
    photos = []
    for path in distinct_pictures(candidates):
        package = PHOTOGRAPHS[picture_name(path)]
        license_, holders = licence_of(path, package)
        metadata_license, author = picture_metadata(path)
        with Image.open(path) as image:
            width, height = image.size
        photos.append(
            PhotoFile(picture_name(path), package, path, width, height, license_, holders, metadata_license, author)
        )
    found = {photo.name for photo in photos}
    missing = sorted(wanted - found)
    if missing:
        raise SourcePhotoError(
            f"the wallpaper cache lacks {len(missing)} of the {len(wanted)} photographs "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): "
            "remove the cache folder and run the recipe again"
        )
    duplicates = len(photos) - len(found)
    if duplicates:
        raise SourcePhotoError(f"{duplicates} photographs appear as two different pictures; check the thumbnails")
    return sorted(photos, key=lambda photo: photo.name.lower())


def load_photo(photo: PhotoFile, short_side: int) -> Image.Image:
    """The photo upright in RGB, scaled (antialiased) so its short side is at most ``short_side``."""
    image = open_image(photo.path.read_bytes(), min_size=short_side)
    scale = short_side / min(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def package_versions(cache_dir: Path) -> dict[str, str]:
    """Package -> version, from the downloaded .deb file names (``name_version_all.deb``)."""
    versions = {}
    for deb in sorted((Path(cache_dir) / "debs").glob("*.deb")):
        name, version = deb.name.split("_")[:2]
        versions[name] = version.replace("%3a", ":")
    return versions
