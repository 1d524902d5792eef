"""The built-in model's source photographs: which package each comes from, and under which licence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.recipes.model_card import licences_line
from training.recipes.wallpaper_photos import (
    LOMIRI_16,
    PHOTO_PACKAGES,
    PHOTOGRAPHS,
    PhotoFile,
    SourcePhotoError,
    licence_of,
    matches_files_pattern,
    package_of,
    picture_metadata,
    picture_name,
    select_photographs,
)

# Shaped like lomiri-wallpapers-16.04's copyright file: photos named by their place in the source tree.
LOMIRI_COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lomiri-wallpapers

Files: warty-final-ubuntu.png
Copyright: 2004, Somebody
License: CC-BY-SA-3.0

Files: 16.04/Bridge_by_Sander_Klootwijk.jpg
Copyright: 2018. Sander Klootwijk
License: CC-BY-SA-4.0

Files: 16.04/seeding_by_Clements_Engelhardt.jpg
Copyright: Clemens Engelhardt, 2018
License: CC0-1.0

Files: debian/*
 AUTHORS
 16.04/.placeholder
Copyright: 2018, Packager
License: Expat

License: Expat
 Permission is hereby granted...
"""


@pytest.fixture
def lomiri_package(tmp_path: Path) -> Path:
    """An unpacked lomiri-wallpapers-16.04 with its copyright file and two installed photos."""
    root = tmp_path / "unpacked" / LOMIRI_16
    doc = root / "usr" / "share" / "doc" / LOMIRI_16
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(LOMIRI_COPYRIGHT)
    backgrounds = root / "usr" / "share" / "backgrounds"
    backgrounds.mkdir(parents=True)
    for name in ("Bridge_by_Sander_Klootwijk.jpg", "seeding_by_Clements_Engelhardt.jpg", "unlisted.jpg"):
        (backgrounds / name).write_bytes(b"")
    return backgrounds


def test_a_pattern_naming_one_file_matches_it_where_it_is_installed():
    installed = Path("/cache/unpacked/lomiri-wallpapers-16.04/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg")
    assert matches_files_pattern(installed, "16.04/Bridge_by_Sander_Klootwijk.jpg")
    assert not matches_files_pattern(installed, "16.04/Dragonfly_by_Bolly.jpg")


def test_globs_match_the_end_of_the_path_only():
    installed = Path("/cache/unpacked/pkg/usr/share/backgrounds/photo.jpg")
    assert matches_files_pattern(installed, "*")
    assert matches_files_pattern(installed, "backgrounds/*.jpg")
    assert not matches_files_pattern(installed, "debian/*")


def test_each_lomiri_photo_gets_its_own_licence_not_the_packaging_s(lomiri_package: Path):
    assert licence_of(lomiri_package / "Bridge_by_Sander_Klootwijk.jpg", LOMIRI_16) == (
        "CC-BY-SA-4.0", "2018. Sander Klootwijk"
    )
    assert licence_of(lomiri_package / "seeding_by_Clements_Engelhardt.jpg", LOMIRI_16)[0] == "CC0-1.0"
    assert licence_of(lomiri_package / "unlisted.jpg", LOMIRI_16) == ("unknown", "unknown")


def test_lomiri_photos_are_found_in_their_package_under_their_file_stem(lomiri_package: Path):
    path = lomiri_package / "Bridge_by_Sander_Klootwijk.jpg"
    assert package_of(path) == LOMIRI_16
    assert PHOTOGRAPHS[picture_name(path)] == LOMIRI_16


def test_every_photograph_comes_from_a_package_the_recipe_fetches():
    assert set(PHOTOGRAPHS.values()) == set(PHOTO_PACKAGES) - {"gnome-backgrounds"}  # GNOME's are renders


def test_a_kde_wallpaper_s_own_licence_and_authors_come_from_its_metadata(tmp_path: Path):
    wallpaper = tmp_path / "plasma-workspace-wallpapers" / "usr" / "share" / "wallpapers" / "Path"
    (wallpaper / "contents" / "images").mkdir(parents=True)
    plugin = {"KPlugin": {"License": "LGPLv3", "Authors": [{"Name": "Ken Vermette"}, {"Name": "Someone"}]}}
    (wallpaper / "metadata.json").write_text(json.dumps(plugin))
    image = wallpaper / "contents" / "images" / "1280x1024.jpg"
    assert picture_metadata(image) == ("LGPLv3", "Ken Vermette, Someone")
    assert picture_metadata(tmp_path / LOMIRI_16 / "x.jpg") == (None, None)  # states nothing beside itself


def test_the_card_counts_licences_per_package():
    def photo(name: str, package: str, licence: str, metadata: str | None = None) -> PhotoFile:
        return PhotoFile(name, package, Path(name), 10, 10, licence, "someone", metadata)

    line = licences_line([
        photo("a", LOMIRI_16, "CC-BY-4.0"),
        photo("b", LOMIRI_16, "CC-BY-4.0"),
        photo("c", LOMIRI_16, "CC0-1.0"),
        photo("d", "plasma-workspace-wallpapers", "GPL-2+", "LGPLv3"),
    ])
    assert f"{LOMIRI_16}: CC-BY-4.0 x2, CC0-1.0 x1" in line
    assert "plasma-workspace-wallpapers: GPL-2+ x1" in line
    assert "LGPLv3" in line


def lomiri_16_photos(backgrounds: Path) -> list[Path]:
    """Every photograph the recipe expects from lomiri-wallpapers-16.04, as small distinct JPEGs."""
    rng = np.random.default_rng(0)
    paths = []
    for name, package in sorted(PHOTOGRAPHS.items()):
        if package == LOMIRI_16:
            path = backgrounds / f"{name}.jpg"
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
            paths.append(path)
    return paths


def test_only_the_photographs_of_the_packages_asked_for_are_expected(lomiri_package: Path):
    paths = lomiri_16_photos(lomiri_package)
    photos = select_photographs(paths, (LOMIRI_16,))
    assert sorted(photo.name for photo in photos) == sorted(path.stem for path in paths)
    bridge = next(photo for photo in photos if photo.name == "Bridge_by_Sander_Klootwijk")
    assert (bridge.license, bridge.width, bridge.height) == ("CC-BY-SA-4.0", 64, 48)


def test_a_missing_photograph_is_named(lomiri_package: Path):
    paths = lomiri_16_photos(lomiri_package)
    with pytest.raises(SourcePhotoError, match=r"lacks 1 of the 13 photographs \(Dragonfly_by_Bolly\)"):
        select_photographs([path for path in paths if "Dragonfly" not in path.name], (LOMIRI_16,))
