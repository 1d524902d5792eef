"""`eat-curate report`: the HTML file's content, read back with an HTML parser.

(The page as a browser shows it is checked in test_report_chromium.py.)
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from read_library import invoke, score_into, write_library


class Page(HTMLParser):
    """The parts of the report a test looks at: tiles per section, images, meta tags, text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}  # section id -> image ids of its tiles, in order
        self.images: list[str] = []  # every <img src>
        self.meta: dict[str, str] = {}
        self.text: list[str] = []
        self.scripts = 0
        self._section: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id")
            self.sections.setdefault(self._section, [])
        elif tag == "figure" and self._section:
            self.sections[self._section].append(attributes["data-image-id"])
        elif tag == "img":
            self.images.append(attributes["src"])
        elif tag == "meta" and "http-equiv" in attributes:
            self.meta[attributes["http-equiv"]] = attributes["content"]
        elif tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def scored(tmp_path_factory, micro_model_path):
    """A library scored into SQLite, then one photo deleted (the report must cope)."""
    root = tmp_path_factory.mktemp("report")
    library = write_library(root / "photos")
    db = str(root / "photos.db")
    score_into(db, library.root, model_path=micro_model_path)
    vanished = library.album("trips") / "trip_3.jpg"
    vanished.unlink()
    return db, library, vanished


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_has_every_album_sorted_by_score(scored, tmp_path):
    db, library, vanished = scored
    out = tmp_path / "report.html"
    result = invoke("report", "--db", db, "--out", out)
    assert f"wrote {out}: 18 images in 5 albums, 2 duplicate groups; 1 image files missing" in result.stdout
    page = read_page(out)
    ranks = json.loads(invoke("rank", "--db", db, "--json").stdout)
    albums = [section for section in page.sections if section.startswith("album-")]
    assert len(albums) == 5
    shown = [image_id for section in albums for image_id in page.sections[section]]
    by_album_order = [row["image_id"] for row in sorted(ranks, key=lambda row: (row["album"], row["rank"]))]
    assert shown == by_album_order  # every image, best first inside each album
    best = sorted(ranks, key=lambda row: (-row["mean"], row["image_id"]))
    assert page.sections["best"] == [row["image_id"] for row in best[:10]]
    worst = sorted(ranks, key=lambda row: (row["mean"], row["image_id"]))
    assert page.sections["worst"] == [row["image_id"] for row in worst[:10]]
    assert len(page.sections["duplicates"]) == 7  # the burst of 4, the three identical trip_1 files


def test_report_is_self_contained(scored, tmp_path):
    db, _, _ = scored
    out = tmp_path / "report.html"
    invoke("report", "--db", db, "--out", out)
    page = read_page(out)
    assert page.images and all(src.startswith("data:image/") for src in page.images)
    assert page.meta["Content-Security-Policy"].startswith("default-src 'none'; img-src data:")
    assert page.scripts == 0
    html = out.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert out.stat().st_size < 400_000  # ~35 thumbnails of ~160 px


def test_report_names_the_model_runs_errors_and_missing_files(scored, tmp_path):
    db, library, vanished = scored
    out = tmp_path / "report.html"
    invoke("report", "--db", db, "--out", out)
    text = read_page(out).all_text
    model = json.loads(invoke("rank", "--db", db, "--json", "--top", "1").stdout)[0]["model_id"]
    assert f"scored by {model}" in text and "untrained (random weights)" in text
    assert "completed" in text  # the run's status, in the runs table
    assert "truncated 1" in text  # the broken file, under "Not scored"
    assert f"{vanished} missing" in text  # placeholder shown, file listed
    assert "no longer decodes" not in text


def test_report_of_one_album_with_few_thumbnails(scored, tmp_path):
    db, _, _ = scored
    out = tmp_path / "beach.html"
    invoke("report", "--db", db, "--out", out, "--album", "beach", "--per-album", "2", "--top", "3")
    page = read_page(out)
    assert [key for key in page.sections if key.startswith("album-")] == ["album-0"]
    assert len(page.sections["album-0"]) == 2 and len(page.sections["best"]) == 3
    assert "showing the best 2 of 5" in page.all_text


def test_report_does_not_replace_a_file_unless_forced(scored, tmp_path):
    db, _, _ = scored
    out = tmp_path / "report.html"
    out.write_text("keep me")
    refused = invoke("report", "--db", db, "--out", out, expect_ok=False)
    assert refused.exit_code == 2 and "exists; pass --force" in refused.output and out.read_text() == "keep me"
    invoke("report", "--db", db, "--out", out, "--force")
    assert out.read_text().startswith("<!DOCTYPE html>")
