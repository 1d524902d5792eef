"""Odd but possible data on the write-out side: `export`, `xmp`, `ratings` and `report` give each bad file a
clear skip, placeholder or error line, go on with the others, and never crash or hang.

Each case was a real failure: a symlink loop in the export folder (a crash), long names pushed past the
255-byte limit by a rank prefix or a number, names one file on a case-insensitive card, a camera card
that refuses file modes, a FIFO where a report's image was (a hang), a sidecar nested thousands deep
(a crash), a rating in an ``rdf:Seq`` (silently passed over), an ``--out`` name of 255 bytes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
from PIL import Image

from bounded_call import fifo_unblocker
from eat_curate import exit_codes
from eat_curate.library.export import ExportItem, export_images
from eat_curate.library.user_ratings import rating_of
from eat_curate.report.thumbnails import make_thumbnail
from read_library import invoke
from score_rows import scored, write_scores

XMP_HEAD = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"')
XMP_TAIL = "</rdf:RDF></x:xmpmeta>"
LONGEST_NAME = 255  # bytes


def photo(path: Path, seed: int = 0, xmp: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", **({"xmp": xmp} if xmp else {}))
    return path


def rating_packet(body: str) -> bytes:
    """A packet whose rdf:Description continues with ``body`` (attributes, then ``/>`` or ``>`` and children)."""
    return f"{XMP_HEAD}{body}{XMP_TAIL}".encode()


# --- export --------------------------------------------------------------------------------------


def test_a_symlink_loop_in_the_export_folder_skips_that_image_and_exports_the_others(tmp_path):
    looped, fine = photo(tmp_path / "src" / "a.jpg"), photo(tmp_path / "src" / "b.jpg", seed=1)
    target = tmp_path / "out"
    target.mkdir()
    (target / "trips").symlink_to("trips")  # the album folder links to itself

    report = export_images([ExportItem(str(looped), "trips"), ExportItem(str(fine), "family")], target)

    assert [outcome.action for outcome in report.outcomes] == ["skipped", "copied"]
    assert report.outcomes[0].reason.startswith("symlink loop:")
    assert (target / "family" / "b.jpg").read_bytes() == fine.read_bytes()


def test_long_names_still_fit_with_a_rank_prefix_and_a_number(tmp_path):
    name = "x" * 251 + ".jpg"  # 255 bytes: the longest name there is
    first, second = photo(tmp_path / "one" / name), photo(tmp_path / "two" / name, seed=1)
    items = [ExportItem(str(first), "trips", rank=1), ExportItem(str(first), "trips", rank=1),
             ExportItem(str(second), "trips", rank=2)]

    report = export_images(items, tmp_path / "out", layout="album/rank")

    assert [outcome.action for outcome in report.outcomes] == ["copied"] * 3, report.outcomes
    names = sorted(path.name for path in (tmp_path / "out" / "trips").iterdir())
    assert len(set(names)) == 3 and all(len(name.encode()) <= LONGEST_NAME for name in names)
    assert [name[:5] for name in names] == ["0001_", "0001_", "0002_"] and all(n.endswith(".jpg") for n in names)
    assert any("-2.jpg" in name for name in names)  # the second file of rank 1 is numbered, not cut to the first


def test_names_that_differ_only_in_case_are_numbered_as_on_a_camera_card(tmp_path):
    """FAT, exFAT, macOS and Windows hold IMG_1.jpg and img_1.JPG as one file: the second must not be lost."""
    upper, lower = photo(tmp_path / "a" / "IMG_1.jpg"), photo(tmp_path / "b" / "img_1.JPG", seed=1)

    report = export_images([ExportItem(str(upper)), ExportItem(str(lower))], tmp_path / "out", layout="flat")

    destinations = [Path(outcome.destination).name for outcome in report.outcomes]
    assert destinations == ["IMG_1.jpg", "img_1-2.JPG"]
    assert [outcome.action for outcome in report.outcomes] == ["copied", "copied"]


def test_a_copy_is_exported_where_the_disk_refuses_its_file_mode(tmp_path, monkeypatch):
    """exFAT (most camera cards) answers chmod with EPERM; the bytes are all there, so the copy counts."""
    source, target = photo(tmp_path / "src" / "a.jpg"), tmp_path / "card"
    real_chmod = os.chmod

    def exfat_chmod(path, mode, *args, **kwargs):
        if str(path).startswith(str(target)):
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", exfat_chmod)
    report = export_images([ExportItem(str(source), "trips")], target)

    assert [outcome.action for outcome in report.outcomes] == ["copied"], report.outcomes
    assert (target / "trips" / "a.jpg").read_bytes() == source.read_bytes()


# --- xmp and ratings -----------------------------------------------------------------------------


def test_a_sidecar_nested_thousands_deep_is_left_untouched_and_the_others_are_written(tmp_path):
    deep, fine = photo(tmp_path / "shoot" / "deep.jpg"), photo(tmp_path / "shoot" / "fine.jpg", seed=1)
    nested = rating_packet(">" + "<a>" * 5000 + "</a>" * 5000 + "</rdf:Description>")
    deep_sidecar = tmp_path / "shoot" / "deep.jpg.xmp"
    deep_sidecar.write_bytes(nested)
    db = write_scores(tmp_path / "s.db", [scored("deep", 7.0, path=deep), scored("fine", 6.0, path=fine)])

    result = invoke("xmp", db, expect_ok=False)

    assert result.exit_code == exit_codes.SIDECARS_LEFT.code, result.output
    assert "nested deeper than" in result.stderr and "unexpected" not in result.output
    assert deep_sidecar.read_bytes() == nested
    assert b"xmp:Rating" in (tmp_path / "shoot" / "fine.jpg.xmp").read_bytes()


def test_an_image_name_too_long_for_its_sidecar_name_says_how_to_name_it(tmp_path):
    long = photo(tmp_path / "shoot" / ("x" * 248 + ".jpg"))  # 252 bytes; with ".xmp" 256
    db = write_scores(tmp_path / "s.db", [scored("long", 7.0, path=long)])

    result = invoke("xmp", db, expect_ok=False)

    assert result.exit_code == exit_codes.SIDECARS_LEFT.code, result.output
    assert "the sidecar's name passes 255 bytes; --sidecar-name stem names it" in result.output
    invoke("xmp", db, "--sidecar-name", "stem")
    assert b"xmp:Rating" in (tmp_path / "shoot" / ("x" * 248 + ".xmp")).read_bytes()


def test_a_rating_held_in_an_rdf_seq_is_unreadable_not_passed_over_for_the_embedded_one(tmp_path):
    """The sidecar is consulted first; an odd form there may hold the real rating, so the JPEG's stale one
    must not be taken instead."""
    image = photo(tmp_path / "shoot" / "a.jpg", xmp=rating_packet(' xmp:Rating="1"/>'))
    (tmp_path / "shoot" / "a.jpg.xmp").write_bytes(
        rating_packet("><xmp:Rating><rdf:Seq><rdf:li>5</rdf:li></rdf:Seq></xmp:Rating></rdf:Description>")
    )

    found = rating_of(str(image))

    assert (found.status, found.source) == ("unreadable", str(tmp_path / "shoot" / "a.jpg.xmp"))
    assert "structure" in found.reason


# --- outputs: --out names, report thumbnails -------------------------------------------------------


def test_ratings_and_report_write_an_out_file_whose_name_takes_all_255_bytes(tmp_path):
    image = photo(tmp_path / "shoot" / "a.jpg")
    (tmp_path / "shoot" / "a.jpg.xmp").write_bytes(rating_packet(' xmp:Rating="4"/>'))
    db = write_scores(tmp_path / "s.db", [scored("a", 7.0, path=image)])
    out = tmp_path / "out"
    out.mkdir()
    table, page = out / ("t" * (LONGEST_NAME - 4) + ".csv"), out / ("r" * (LONGEST_NAME - 5) + ".html")

    invoke("ratings", tmp_path / "shoot", "--out", table, "--no-progress")
    invoke("report", db, "--out", page)

    assert table.read_text().splitlines()[1].startswith(f"{image},4,")
    assert "<!DOCTYPE html>" in page.read_text()
    assert sorted(path.name for path in out.iterdir()) == sorted([table.name, page.name])  # no partial left


def test_a_fifo_where_a_report_image_was_gets_a_placeholder_without_waiting(tmp_path):
    fifo = tmp_path / "gone.jpg"
    os.mkfifo(fifo)

    with fifo_unblocker([fifo], after=3.0) as guard:
        thumbnail = make_thumbnail(str(fifo))

    assert guard.unblocked == set(), "the report waited on a FIFO for a writer"
    assert thumbnail.problem == "unreadable: not a regular file (FIFO)"
