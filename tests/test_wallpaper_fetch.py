"""Fetching Debian's wallpaper packages: only the packages asked for, each downloaded once (apt-get/dpkg faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eat_curate.samples import debian_wallpapers
from eat_curate.samples.debian_wallpapers import WALLPAPER_PACKAGES, PhotoFetchError, fetch_debian_wallpapers


@pytest.fixture
def fake_apt(monkeypatch) -> list[list[str]]:
    """apt-get download writes PACKAGE_1.0_all.deb; dpkg -x unpacks one photo and one preview per package."""
    commands: list[list[str]] = []

    def run(command: list[str], cwd: Path) -> None:
        commands.append(command)
        if command[:2] == ["apt-get", "download"]:
            (cwd / f"{command[2]}_1.0_all.deb").write_text(command[2])
        elif command[:2] == ["dpkg", "-x"]:
            package = Path(command[2]).read_text()
            backgrounds = Path(command[3]) / "usr" / "share" / "backgrounds"
            backgrounds.mkdir(parents=True)
            (backgrounds / f"{package}.jpg").write_bytes(b"jpeg")
            (backgrounds / "screenshot.png").write_bytes(b"preview")

    monkeypatch.setattr(debian_wallpapers, "_run", run)
    monkeypatch.setattr(debian_wallpapers.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return commands


def test_the_three_desktop_packages_are_fetched_by_default(tmp_path, fake_apt):
    found = fetch_debian_wallpapers(tmp_path)
    assert sorted(path.stem for path in found) == sorted(WALLPAPER_PACKAGES)


def test_only_the_packages_asked_for_are_fetched_and_a_second_call_reuses_them(tmp_path, fake_apt):
    wanted = ("mate-backgrounds", "lomiri-wallpapers-16.04")
    found = fetch_debian_wallpapers(tmp_path, wanted)
    assert [path.stem for path in found] == ["lomiri-wallpapers-16.04", "mate-backgrounds"]  # previews left out
    downloads = [command[2] for command in fake_apt if command[0] == "apt-get"]
    assert downloads == list(wanted)

    fake_apt.clear()
    assert fetch_debian_wallpapers(tmp_path, wanted) == found
    assert fake_apt == []


def test_a_download_that_leaves_no_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(debian_wallpapers, "_run", lambda command, cwd: None)
    monkeypatch.setattr(debian_wallpapers.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    with pytest.raises(PhotoFetchError, match="apt-get download mate-backgrounds"):
        fetch_debian_wallpapers(tmp_path, ("mate-backgrounds",))
