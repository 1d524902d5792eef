"""`eat-curate ratings`: a photographer's stars read back from XMP sidecars and embedded XMP, into a label table.

The folder below holds what photo managers leave behind: darktable's and
Lightroom's sidecars, XMP inside a JPEG, rejects, ratings eat-curate wrote
itself, and broken sidecars. The table it gives must read as `train`'s
own-ratings labels.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from eat_curate.cli import cli
from eat_curate.library.sidecars import SidecarValues, updated_sidecar
from eat_curate.library.user_ratings import EMBEDDED, FoundRating, one_per_shot, rating_of, read_ratings
from eat_curate.io.sources import iter_items

XMP_NS = 'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'


def packet(description: str, wrapped: bool = False) -> bytes:
    """An XMP packet whose rdf:Description holds ``description`` (attributes, then ``>`` and children, or ``/>``)."""
    body = (f'<x:xmpmeta {XMP_NS}><rdf:RDF><rdf:Description rdf:about="" '
            f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" {description}</rdf:RDF></x:xmpmeta>')
    if wrapped:  # as it sits inside a JPEG
        body = f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>{body}<?xpacket end="w"?>'
    return body.encode()


def attribute_rating(stars: str) -> bytes:
    return packet(f'xmp:Rating="{stars}"/>')  # Lightroom's form


def element_rating(stars: str) -> bytes:
    return packet(f'><xmp:Rating>{stars}</xmp:Rating></rdf:Description>')  # darktable's form


def jpeg(path: Path, xmp: bytes | None = None, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", **({"xmp": xmp} if xmp else {}))
    return path


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    root = tmp_path / "shoot"
    jpeg(root / "darktable.jpg")
    (root / "darktable.jpg.xmp").write_bytes(element_rating("5"))
    (root / "raw_pair.CR2").write_bytes(b"II*\x00 not really a raw")  # a RAW, found by its extension
    jpeg(root / "raw_pair.JPG")
    (root / "raw_pair.xmp").write_bytes(attribute_rating("3"))  # Lightroom's stem sidecar serves both
    jpeg(root / "embedded.jpg", xmp=packet('xmp:Rating="4"/>', wrapped=True))
    jpeg(root / "rejected.jpg")
    (root / "REJECTED.JPG.XMP").write_bytes(attribute_rating("-1"))  # a sidecar name in capitals
    jpeg(root / "ours.jpg")
    (root / "ours.jpg.xmp").write_bytes(updated_sidecar(None, SidecarValues(2, 6.1, 1.2, "m@1")).data)
    jpeg(root / "changed.jpg")
    ours_then_changed = updated_sidecar(None, SidecarValues(2, 6.1, 1.2, "m@1")).data.replace(
        b'xmp:Rating="2"', b'xmp:Rating="4"')
    (root / "changed.jpg.xmp").write_bytes(ours_then_changed)
    jpeg(root / "doctype.jpg")
    (root / "doctype.jpg.xmp").write_bytes(b'<!DOCTYPE x [<!ENTITY a "b">]>' + attribute_rating("5"))
    jpeg(root / "seven.jpg")
    (root / "seven.jpg.xmp").write_bytes(attribute_rating("7"))
    jpeg(root / "plain.jpg")
    jpeg(root / "zero.jpg")
    (root / "zero.jpg.xmp").write_bytes(attribute_rating("0"))
    jpeg(root / "fallback.jpg")
    (root / "fallback.jpg.xmp").write_bytes(packet('xmp:Label="Red"/>'))  # no rating: the next place decides
    (root / "fallback.xmp").write_bytes(attribute_rating("2"))
    return root


def found_in(root: Path) -> dict[str, tuple]:
    return {Path(r.path).name: (r.status, r.stars, Path(r.source).name if r.source else "")
            for r in read_ratings(iter_items([str(root)]))}


def test_every_place_a_photo_manager_keeps_stars_is_read_in_order(shoot):
    assert found_in(shoot) == {
        "darktable.jpg": ("rated", 5, "darktable.jpg.xmp"),
        "raw_pair.CR2": ("rated", 3, "raw_pair.xmp"),
        "raw_pair.JPG": ("rated", 3, "raw_pair.xmp"),
        "embedded.jpg": ("rated", 4, EMBEDDED),
        "rejected.jpg": ("reject", -1, "REJECTED.JPG.XMP"),
        "ours.jpg": ("ours", 2, "ours.jpg.xmp"),  # eat-curate's xmp wrote it and nobody changed it
        "changed.jpg": ("rated", 4, "changed.jpg.xmp"),  # written by eat-curate, then changed by hand
        "doctype.jpg": ("unreadable", None, "doctype.jpg.xmp"),
        "seven.jpg": ("unreadable", None, "seven.jpg.xmp"),
        "plain.jpg": ("unrated", None, ""),
        "zero.jpg": ("unrated", None, "zero.jpg.xmp"),
        "fallback.jpg": ("rated", 2, "fallback.xmp"),
    }
    assert "not a whole number from -1 to 5" in rating_of(str(shoot / "seven.jpg")).reason
    assert "DOCTYPE" in rating_of(str(shoot / "doctype.jpg")).reason


def test_a_raw_and_its_jpeg_give_one_row_the_jpeg(shoot):
    rated = [r for r in read_ratings(iter_items([str(shoot)])) if r.status == "rated"]
    kept, dropped = one_per_shot(rated)
    assert dropped == 1
    assert sorted(Path(r.path).name for r in kept if Path(r.path).stem == "raw_pair") == ["raw_pair.JPG"]


def run(*arguments) -> object:
    return CliRunner().invoke(cli, ["ratings", *map(str, arguments)])


def test_the_table_is_what_train_reads_as_your_own_ratings(shoot, tmp_path):
    from training.labels import read_labels

    out = tmp_path / "my_picks.csv"
    result = run(shoot, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote 5 ratings of 12 images to {out}: 5 stars 1, 4 stars 2, 3 stars 1, 2 stars 1\n"
    assert "left out: 2 unrated, 1 rejects (--rejects one-star keeps them), 1 more files of a shot" in result.stderr
    assert "1 rated by eat-curate xmp, 2 unreadable" in result.stderr
    assert f"unreadable: {shoot / 'seven.jpg.xmp'}: xmp:Rating '7'" in result.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(row["path"]).name: int(row["rating"]) for row in rows} == {
        "darktable.jpg": 5, "raw_pair.JPG": 3, "embedded.jpg": 4, "changed.jpg": 4, "fallback.jpg": 2}

    labels = read_labels(out)
    assert labels.target == "score" and len(labels) == 5
    assert {item.path.name: item.score for item in labels.items}["darktable.jpg"] == 10.0  # 5 stars -> 10
    assert all(item.path.is_file() for item in labels.items)


def test_rejects_as_one_star_json_and_parquet(shoot, tmp_path):
    out = tmp_path / "picks.parquet"
    result = run(shoot, "--out", out, "--rejects", "one-star", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["outcome"], summary["ratings"]) == ("done", 6)
    assert summary["stars"] == {"1": 1, "2": 1, "3": 1, "4": 2, "5": 1}
    assert summary["counts"] == {"rated": 6, "reject": 1, "unrated": 2, "ours": 1, "unreadable": 2, "same_shot": 1}
    reasons = {Path(row["source"]).name: row["reason"] for row in summary["unreadable"]}
    assert reasons["seven.jpg.xmp"].startswith("xmp:Rating '7'") and "DOCTYPE" in reasons["doctype.jpg.xmp"]
    table = pq.read_table(out).to_pylist()
    assert {Path(row["path"]).name: row["rating"] for row in table}["rejected.jpg"] == 1


def test_nothing_rated_writes_nothing_and_exits_5(tmp_path):
    jpeg(tmp_path / "photos" / "a.jpg")
    result = run(tmp_path / "photos", "--out", tmp_path / "picks.csv")
    assert result.exit_code == 5
    assert "no rated images among 1: nothing written" in result.stderr
    assert not (tmp_path / "picks.csv").exists()


def test_an_existing_table_is_kept_without_force_and_manifests_are_refused(shoot, tmp_path):
    out = tmp_path / "picks.csv"
    out.write_text("mine\n")
    refused = run(shoot, "--out", out)
    assert refused.exit_code == 2 and "pass --force" in refused.stderr and out.read_text() == "mine\n"
    assert run(shoot, "--out", out, "--force").exit_code == 0
    manifest = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": [str(shoot / "plain.jpg")]}), manifest)
    refused = run(manifest, "--out", tmp_path / "other.csv")
    assert refused.exit_code == 2 and "is a manifest" in refused.stderr



@pytest.mark.timeout(30)  # a FIFO opened for reading would wait for a writer forever
def test_a_fifo_named_like_a_sidecar_or_an_image_is_never_opened(tmp_path):
    import os

    jpeg(tmp_path / "shoot" / "a.jpg")
    os.mkfifo(tmp_path / "shoot" / "a.jpg.xmp")
    os.mkfifo(tmp_path / "shoot" / "b.jpg")
    found = found_in(tmp_path / "shoot")
    assert found["a.jpg"][0] == "unreadable" and "FIFO" in rating_of(str(tmp_path / "shoot" / "a.jpg")).reason
    assert found["b.jpg"] == ("unrated", None, "")


def test_exclude_leaves_photos_out_and_says_so(shoot, tmp_path):
    out = tmp_path / "picks.csv"
    result = run(shoot, "--out", out, "--exclude", "raw_pair.*", "--exclude", "darktabel.jpg")
    assert result.exit_code == 0, result.output
    assert "--exclude left out 0 folders (not entered) and 2 image files" in result.stderr
    assert "--exclude 'darktabel.jpg' matched nothing in the folders walked: a typo?" in result.stderr
    with open(out, newline="") as handle:
        names = {Path(row["path"]).name for row in csv.DictReader(handle)}
    assert names == {"darktable.jpg", "embedded.jpg", "changed.jpg", "fallback.jpg"}


def test_a_heif_photo_carries_its_rating_inside(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")  # the heif extra
    path = tmp_path / "phone" / "IMG_0001.HEIC"
    path.parent.mkdir()
    pillow_heif.from_pillow(Image.new("RGB", (16, 16))).save(path, xmp=attribute_rating("5"))  # no opener needed
    assert rating_of(str(path)) == FoundRating(str(path), "rated", 5, EMBEDDED)


def test_a_name_that_is_not_utf8_is_listed_as_unreadable_not_dropped(tmp_path):
    import os

    folder = tmp_path / "shoot"
    jpeg(folder / "fine.jpg")
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    with open(odd, "wb") as handle:
        handle.write((folder / "fine.jpg").read_bytes())
    found = {Path(r.path).name: (r.status, r.reason) for r in read_ratings(iter_items([str(folder)]))}
    assert found["fine.jpg"] == ("unrated", "")
    assert found["caf\\xe9.jpg"][0] == "unreadable" and "not valid UTF-8" in found["caf\\xe9.jpg"][1]
