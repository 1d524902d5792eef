"""`--hide-missing`: read commands leave out the rows of files deleted or renamed since they were scored.

An album of four files loses one after scoring: with --hide-missing every
read command sees three, ranked and counted as if the fourth had never been
scored; without it, the stale row stays (until `db prune`). Rows naming a
URL are never checked and never hidden. Nothing is written to the
database, whatever its kind: SQLite (opened read-only), PostgreSQL, or a
Parquet result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eat_curate.library.connection import read_connection
from eat_curate.library.hidden import hide_missing_files
from eat_curate.library.queries import rank_images
from eat_curate.records import ScoreRecord
from eat_curate.sinks import SqlSink
from read_library import invoke, save_jpeg, scene
from score_rows import scored
from sink_records import MODEL, score_run

READ_COMMANDS = ("albums", "rank", "filter", "export", "dupes", "report", "xmp")


def as_json(*arguments) -> object:
    return json.loads(invoke(*arguments, "--json").stdout)


def failed(image_id: str, path: Path) -> ScoreRecord:
    return ScoreRecord(image_id=image_id, path=str(path), album="trip", model_id=MODEL, run_id="run-1",
                       error_kind="not-an-image", error="no image format in the bytes")


@pytest.fixture(params=["sqlite", "postgresql"])
def album(request, tmp_path) -> tuple[str, Path]:
    """(db, folder): trip/ with IMG_1..IMG_4 (IMG_1 best), a RAW + JPEG pair (IMG_5), and a URL; IMG_1 then deleted."""
    folder = tmp_path / "trip"
    folder.mkdir()
    names = {"IMG_1.JPG": 8.0, "IMG_2.JPG": 7.0, "IMG_3.JPG": 6.0, "IMG_4.JPG": 5.0, "IMG_5.CR2": 7.5, "IMG_5.JPG": 6.5}
    records = []
    for seed, (name, mean) in enumerate(names.items()):
        save_jpeg(folder / name, scene(60 + seed))  # real pictures, far apart in hash
        records.append(scored(name, mean, album="trip", path=folder / name, phash=0))  # all near-duplicates
    records.append(scored("remote", 4.0, album="trip", path="s3://bucket/trip/IMG_9.JPG", phash=0))
    db = str(tmp_path / "photos.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    score_run(SqlSink(db), [records])
    (folder / "IMG_1.JPG").unlink()
    return db, folder


def test_without_the_option_the_stale_row_stays(album):
    db, folder = album
    ranked = as_json("rank", "--db", db)
    assert [row["image_id"] for row in ranked] == ["IMG_1.JPG", "IMG_5.CR2", "IMG_2.JPG", "IMG_3.JPG", "IMG_4.JPG",
                                                   "remote"]


def test_hidden_rows_are_gone_before_ranking_and_counting(album):
    db, folder = album
    ranked = as_json("rank", "--db", db, "--hide-missing")
    assert [(row["image_id"], row["rank"]) for row in ranked] == [
        ("IMG_5.CR2", 1), ("IMG_2.JPG", 2), ("IMG_3.JPG", 3), ("IMG_4.JPG", 4), ("remote", 5),  # the URL stays
    ]
    (stats,) = as_json("albums", "--db", db, "--hide-missing")
    assert (stats["images"], stats["best_image_id"], stats["best_score"]) == (5, "IMG_5.CR2", 7.5)
    assert [row["image_id"] for row in as_json("filter", "--db", db, "--hide-missing", "--per-album", "1")] == [
        "IMG_5.CR2"
    ]


def test_the_option_says_what_it_hid(album):
    db, _ = album
    result = invoke("rank", "--db", db, "--hide-missing")
    assert "hiding 1 of 6 files: no longer on disk" in result.stderr  # the URL is not a file it checked


def test_a_vanished_raw_hands_the_lead_to_its_jpeg(album):
    db, folder = album
    (folder / "IMG_5.CR2").unlink()
    shown = {row["image_id"]: row for row in as_json("rank", "--db", db, "--hide-missing")}
    assert "IMG_5.CR2" not in shown and shown["IMG_5.JPG"]["also"] == []  # the gone RAW is not named either
    everything = {row["image_id"]: row for row in as_json("rank", "--db", db)}
    assert everything["IMG_5.CR2"]["also"][0]["image_id"] == "IMG_5.JPG" and "IMG_5.JPG" not in everything


def test_export_xmp_report_and_dupes_leave_out_what_is_gone(album, tmp_path):
    db, folder = album
    plain = as_json("export", "--db", db, "--to", tmp_path / "all", "--dry-run")
    assert plain["skipped_by_reason"] == {"missing": 1, "not a local file": 1}
    hidden = as_json("export", "--db", db, "--to", tmp_path / "kept", "--dry-run", "--hide-missing")
    assert hidden["skipped_by_reason"] == {"not a local file": 1}
    assert len(hidden["outcomes"]) == 6  # 5 shown shots, one a pair: the URL is still listed (and kept)
    sidecars = as_json("xmp", "--db", db, "--dry-run", "--hide-missing")
    assert str(folder / "IMG_1.JPG") not in [outcome["image"] for outcome in sidecars["outcomes"]]
    (group,) = as_json("dupes", "--db", db, "--hide-missing")
    assert "IMG_1.JPG" not in [member["image_id"] for member in group["members"]] and group["size"] == 5
    (group,) = as_json("dupes", "--db", db)
    assert group["best_image_id"] == "IMG_1.JPG"  # the stale row would be named the one to keep
    out = tmp_path / "report.html"
    assert "5 images in 1 albums" in invoke("report", "--db", db, "--out", out, "--hide-missing").stdout
    assert "6 images in 1 albums" in invoke("report", "--db", db, "--out", out, "--force").stdout


def test_errors_of_vanished_files_are_hidden_too(tmp_path):
    folder = tmp_path / "trip"
    folder.mkdir()
    for name in ("kept.jpg", "gone.jpg"):
        (folder / name).write_bytes(b"not a picture")
    db = str(tmp_path / "errors.db")
    score_run(SqlSink(db), [[failed(name, folder / name) for name in ("kept.jpg", "gone.jpg")]])
    (folder / "gone.jpg").unlink()
    assert len(as_json("filter", "--db", db, "--errors")) == 2
    hidden = as_json("filter", "--db", db, "--errors", "--hide-missing")
    assert [row["path"] for row in hidden] == [str(folder / "kept.jpg")]


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_every_read_command_offers_it_and_says_urls_are_kept(command):
    text = " ".join(invoke(command, "--help").stdout.split())
    assert "--hide-missing" in text and "URLs" in text and "always kept" in text


def test_a_parquet_result_hides_missing_files_as_the_database_does(tmp_path, micro_model_path):
    folder = tmp_path / "photos" / "trip"
    for seed in range(4):
        save_jpeg(folder / f"IMG_{seed}.JPG", scene(70 + seed))
    db, result = str(tmp_path / "photos.db"), str(tmp_path / "scores.parquet")
    invoke("score", tmp_path / "photos", "--model", micro_model_path, "--db", db, "--out", result, "--quiet")
    (folder / "IMG_2.JPG").unlink()
    for command in (["rank"], ["albums"], ["filter"]):
        from_database = as_json(*command, "--db", db, "--hide-missing")
        assert as_json(*command, "--db", result, "--hide-missing") == from_database
    assert len(as_json("rank", "--db", result, "--hide-missing")) == 3


def test_hiding_comes_before_the_first_query_and_writes_nothing(tmp_path):
    folder = tmp_path / "trip"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    db = str(tmp_path / "photos.db")
    score_run(SqlSink(db), [[scored("a", 6.0, path=folder / "a.jpg"), scored("b", 5.0, path=folder / "b.jpg")]])
    before = Path(db).read_bytes()
    with read_connection(db) as connection:
        found = hide_missing_files(connection, MODEL)
        assert (found.checked, found.missing) == (2, 1)
        assert [image.image_id for image in rank_images(connection, MODEL)] == ["a"]
        with pytest.raises(RuntimeError, match="before the first query"):
            hide_missing_files(connection, MODEL)
    with read_connection(db) as connection:  # a new connection sees every row again
        assert [image.image_id for image in rank_images(connection, MODEL)] == ["a", "b"]
    assert Path(db).read_bytes() == before
