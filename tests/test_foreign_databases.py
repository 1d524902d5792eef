"""Databases that other tools wrote into or edited: the read side reads on, or refuses in one line naming the row.

People query and edit `photos.db` with sqlite3, DB Browser, pandas or a
script of their own, and SQLite keeps whatever such a tool stores: text that
is not a time in a time column, a blob where a number belongs. PostgreSQL
holds times Python has no value for ('infinity', year 20000) and NaN scores.
None of it may end a read command in "unexpected ..." (a bug's exit 1):

- a value that only describes an image (when it was taken or scored, its
  size, its perceptual hash) and cannot be read reads as absent, as if never
  recorded: the command goes on, and shows null;
- a value whose absence no command could honestly stand in for (a score that
  is not a finite number, an album or model id stored as a blob, a path that
  is not UTF-8) is refused with exit 2 and one line naming the table, the
  column, an image holding it, and how to fix it.

Every edit here is one a person or tool could make; each test edits a copy of
a database that the real SQL sink wrote (``score_rows.write_scores``).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from eat_curate.exit_codes import REFUSED
from eat_curate.sinks import SqlSink
from read_library import invoke
from score_rows import scored, write_scores
from sink_records import MODEL, failure, score_run

EDITED = "b"  # the image every edit touches; "a" and "c" stay as eat-curate wrote them


def library(tmp_path: Path) -> str:
    """Three scored images of one album, with capture times, sizes and hashes, and one error row."""
    folder = tmp_path / "photos"
    folder.mkdir()

    def image(image_id: str, mean: float, day: int, phash: int) -> object:
        path = folder / f"{image_id}.jpg"
        path.write_bytes(b"\xff\xd8 not decoded by the read side \xff\xd9")
        return scored(image_id, mean, path=path, captured_at=datetime(2024, 6, day, 12), phash=phash,
                      width=640, height=480, bytes=1000 + day, mtime=1.0e9 + day)

    records = [image("a", 7.0, 1, 0x0F0F), image("b", 6.0, 2, 0x0F0E), image("c", 5.0, 3, 0x7777_0000)]
    return write_scores(tmp_path / "photos.db", [*records, failure(9)])


def edited(db: str, sql: str, *parameters: object) -> str:
    """``db`` after another tool ran ``sql`` on it (sqlite3, as DB Browser or a script would)."""
    with sqlite3.connect(db) as connection:
        connection.execute(sql, parameters)
    connection.close()
    return db


def read_commands(tmp_path: Path) -> list[list[str | Path]]:
    """Every read command that reads the scores, as a person would run them, with --json where it has one."""
    return [
        ["rank"], ["rank", "--json"], ["rank", "--top", "1"], ["filter"], ["filter", "--json"], ["filter", "--csv"],
        ["filter", "--since", "2024-01-01"], ["filter", "--time", "scored", "--since", "2024-01-01"],
        ["filter", "--keep-best", "--dupe-window", "86400", "--json"], ["filter", "--errors", "--json"],
        ["filter", "--manifest", tmp_path / "best.parquet"], ["albums", "--json"],
        ["dupes"], ["dupes", "--window", "86400", "--json"],
        ["export", "--to", tmp_path / "out", "--dry-run", "--json"], ["xmp", "--dry-run", "--json"],
        ["report", "--out", tmp_path / "report.html", "--force"], ["runs"], ["runs", "--json"],
    ]


def reads_on(db: str, tmp_path: Path) -> None:
    """Every read command succeeds on ``db``."""
    for command in read_commands(tmp_path):
        invoke(command[0], db, *command[1:])
    invoke("db", "prune", "--db", db, "--dry-run", "--json")
    invoke("db", "albums", "--db", db, "--dry-run", "--json")


def images_by_id(db: str, *options: str) -> dict[str, dict]:
    return {row["image_id"]: row for row in json.loads(invoke("filter", db, "--json", *options).stdout)}


def refused(result, *words: str) -> str:
    """The one error line of a command refused with exit 2 (never a bug's "unexpected")."""
    assert result.exit_code == REFUSED.code, (result.exit_code, result.output, repr(result.exception))
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "unexpected" not in errors[0] and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# --- times that are not times -------------------------------------------------------------------------------


NOT_A_TIME = {
    "words": "garbage",
    "EXIF's own layout": "2023:05:01 10:00:00",
    "seconds since the epoch": 1_700_000_000,
    "seconds as a real": 1_700_000_000.5,
    "an empty text": "",
    "a blob": b"\x00\x01",
}


@pytest.mark.parametrize("stored", list(NOT_A_TIME.values()), ids=list(NOT_A_TIME))
def test_a_capture_time_that_is_not_a_time_reads_as_none_and_every_command_reads_on(tmp_path, stored):
    db = edited(library(tmp_path), "UPDATE images SET captured_at = ? WHERE image_id = ?", stored, EDITED)

    reads_on(db, tmp_path)

    images = images_by_id(db)
    assert images[EDITED]["captured_at"] is None
    assert images["a"]["captured_at"] == "2024-06-01T12:00:00"  # the others keep theirs
    # SQL sees no time there either: --since leaves it out, as it does an image without EXIF.
    assert set(images_by_id(db, "--since", "2020-01-01")) == {"a", "c"}


@pytest.mark.parametrize("stored", ["garbage", 1_700_000_000], ids=["words", "epoch seconds"])
def test_scoring_and_error_times_that_are_not_times_read_as_none(tmp_path, stored):
    db = edited(library(tmp_path), "UPDATE scores SET scored_at = ? WHERE image_id = ?", stored, EDITED)
    edited(db, "UPDATE errors SET at = ?", stored)
    edited(db, "UPDATE runs SET started_at = ?, ended_at = ?, heartbeat_at = ?", stored, stored, stored)

    reads_on(db, tmp_path)

    assert images_by_id(db)[EDITED]["scored_at"] is None
    assert [error["at"] for error in json.loads(invoke("filter", db, "--errors", "--json").stdout)] == [None]
    assert [run["started_at"] for run in json.loads(invoke("runs", db, "--json").stdout)] == [None]
    (row,) = invoke("runs", db).stdout.splitlines()[2:]  # the table leaves start and duration blank
    assert row.split()[:2] == ["run-1", "completed"] and "unexpected" not in row


def test_a_capture_time_written_with_a_zone_reads_as_utc_as_sql_compares_it(tmp_path):
    """Capture times are the camera's naive local time; one with a zone must not meet naive ones in `dupes`."""
    db = edited(library(tmp_path), "UPDATE images SET captured_at = '2024-06-02T14:00:00+02:00' WHERE image_id = ?",
                EDITED)

    reads_on(db, tmp_path)

    assert images_by_id(db)[EDITED]["captured_at"] == "2024-06-02T12:00:00"
    assert set(images_by_id(db, "--since", "2024-06-02 12:00")) == {EDITED, "c"}
    assert set(images_by_id(db, "--since", "2024-06-02 12:00:01")) == {"c"}


# --- numbers that are not numbers ---------------------------------------------------------------------------


NOT_A_FACT = {
    "width as words": ("width", "wide"),
    "height as a blob": ("height", b"\x01"),
    "bytes as words": ("bytes", "big"),
    "a fractional width": ("width", 640.5),
    "phash as hex text": ("phash", "f0f0f0f0f0f0f0f0"),
    "phash as a blob": ("phash", b"\x01\x02\x03\x04\x05\x06\x07\x08"),
    "phash past 64 bits": ("phash", 1.8e19),
    "mtime as words": ("mtime", "yesterday"),
}


@pytest.mark.parametrize("column, stored", list(NOT_A_FACT.values()), ids=list(NOT_A_FACT))
def test_a_size_or_hash_that_is_not_a_whole_number_reads_as_unknown(tmp_path, column, stored):
    db = edited(library(tmp_path), f"UPDATE images SET {column} = ? WHERE image_id = ?", stored, EDITED)

    reads_on(db, tmp_path)

    assert images_by_id(db)[EDITED][column] is None
    assert images_by_id(db)["a"][column] is not None


def test_an_image_without_a_hash_is_in_no_duplicate_group(tmp_path):
    """`a` and `b` are 1 bit apart; once `b`'s hash is unreadable, `a` has no near-duplicate left."""
    db = library(tmp_path)
    assert len(json.loads(invoke("dupes", db, "--json").stdout)) == 1

    edited(db, "UPDATE images SET phash = 'f0f0' WHERE image_id = ?", EDITED)

    assert json.loads(invoke("dupes", db, "--json").stdout) == []


# --- scores that are not numbers are refused, naming the row ------------------------------------------------


NOT_A_SCORE = {
    "a mean as words": ("mean", "abc", "'abc'"),
    "a mean as a blob": ("mean", b"\x01\x02", "b'\\x01\\x02'"),
    "an infinite mean": ("mean", 1e999, "inf"),
    "a spread as words": ("std", "abc", "'abc'"),
    "a probability as a blob": ("p3", b"\x00", "b'\\x00'"),
}


@pytest.mark.parametrize("column, stored, shown", list(NOT_A_SCORE.values()), ids=list(NOT_A_SCORE))
def test_a_score_that_is_not_a_finite_number_is_refused_naming_table_column_and_image(tmp_path, column, stored,
                                                                                        shown):
    db = edited(library(tmp_path), f"UPDATE scores SET {column} = ? WHERE image_id = ?", stored, EDITED)

    for command in (["filter"], ["filter", "--json"], ["dupes"], ["xmp", "--dry-run"], ["report", "--out",
                                                                                         tmp_path / "r.html"]):
        refused(invoke(command[0], db, *command[1:], expect_ok=False),
                f"scores.{column} of image {EDITED}, model {MODEL} holds {shown}, not a finite number",
                "score the image again")


def test_a_score_row_someone_deleted_or_added_by_hand_reads_as_it_is(tmp_path):
    """Edits SQL itself allows and eat-curate always read: no image row, no score row, no model row, odd JSON."""
    db = library(tmp_path)
    edited(db, "DELETE FROM images WHERE image_id = 'c'")  # a score without its image: not shown
    edited(db, "DELETE FROM scores WHERE image_id = 'a'")  # an image without its score: not shown
    edited(db, "DELETE FROM models")
    edited(db, "UPDATE images SET extra = '{not json'")

    reads_on(db, tmp_path)

    assert set(images_by_id(db)) == {EDITED}


# --- text that is not text ----------------------------------------------------------------------------------


def test_a_path_stored_as_a_utf8_blob_reads_as_its_text(tmp_path):
    """Python scripts that list folders as bytes (os.listdir(b'...')) store paths as blobs."""
    db = library(tmp_path)
    edited(db, "UPDATE images SET path = CAST(path AS BLOB) WHERE image_id = ?", EDITED)

    reads_on(db, tmp_path)

    assert images_by_id(db)[EDITED]["path"] == str(tmp_path / "photos" / "b.jpg")


def test_a_path_that_is_not_utf8_is_refused_in_one_line_by_read_and_db_commands(tmp_path):
    db = edited(library(tmp_path), "UPDATE images SET path = ? WHERE image_id = ?", b"/photos/\x80.jpg", EDITED)

    for command in (["rank", db], ["filter", db, "--json"], ["db", "prune", "--db", db, "--dry-run"],
                    ["db", "albums", "--db", db, "--dry-run"]):
        refused(invoke(*command, expect_ok=False), f"{db}: images.path of image {EDITED} holds",
                "not UTF-8 text", "store the path as UTF-8 text")


def test_text_stored_as_bytes_that_are_not_utf8_is_refused_in_one_line(tmp_path):
    """CAST(x'80' AS TEXT): SQLite keeps it as text; Python's sqlite3 will not read such a row at all."""
    db = edited(library(tmp_path), "UPDATE images SET path = CAST(x'2f8066' AS TEXT) WHERE image_id = ?", EDITED)

    for command in (["rank", db], ["dupes", db], ["db", "prune", "--db", db, "--dry-run"]):
        refused(invoke(*command, expect_ok=False), f"{db} cannot be read", "column 'path'", "not UTF-8")


@pytest.mark.parametrize("table, column", [("scores", "album"), ("scores", "model_id"), ("errors", "model_id")])
def test_an_album_or_model_stored_as_a_blob_is_refused_with_the_update_that_fixes_it(tmp_path, table, column):
    """A blob never equals the same name stored as text, so reading it as text would show one album as two."""
    db = library(tmp_path)
    edited(db, f"UPDATE {table} SET {column} = CAST({column} AS BLOB)")

    error = refused(invoke("rank", db, expect_ok=False), f"{table}.{column} of image ", "not text",
                    f"UPDATE {table} SET {column} = CAST({column} AS TEXT) WHERE typeof({column}) = 'blob'")

    edited(db, error.split("store it as text: ", 1)[1])  # the fix it names works
    invoke("rank", db)


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.fixture
def pg_library(pg_url: str) -> str:
    records = [scored(image_id, mean, captured_at=datetime(2024, 6, 1, 12), phash=i)
               for i, (image_id, mean) in enumerate((("a", 7.0), ("b", 6.0), ("c", 5.0)))]
    score_run(SqlSink(pg_url), [[*records, failure(9)]])
    return pg_url


def pg_edited(url: str, sql: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(sql))
    engine.dispose()
    return url


@pytest.mark.parametrize("stored", ["-infinity", "infinity", "20000-01-01 00:00", "4000-01-01 00:00 BC"])
def test_a_postgresql_time_python_cannot_hold_reads_as_none(tmp_path, pg_library, stored):
    db = pg_edited(pg_library, f"UPDATE images SET captured_at = '{stored}' WHERE image_id = '{EDITED}'")
    pg_edited(db, f"UPDATE scores SET scored_at = '{stored}' WHERE image_id = '{EDITED}'")
    pg_edited(db, f"UPDATE errors SET at = '{stored}'")
    pg_edited(db, f"UPDATE runs SET started_at = '{stored}', ended_at = '{stored}'")

    for command in (["rank", "--json"], ["filter", "--errors", "--json"], ["dupes", "--json"], ["runs", "--json"]):
        invoke(command[0], db, *command[1:])

    image = images_by_id(db)[EDITED]
    assert (image["captured_at"], image["scored_at"]) == (None, None)


@pytest.mark.parametrize("column, stored, shown", [("mean", "NaN", "nan"), ("std", "Infinity", "inf"),
                                                   ("p3", "NaN", "nan")])
def test_a_postgresql_score_that_is_nan_or_infinite_is_refused_naming_the_image(pg_library, column, stored, shown):
    """PostgreSQL sorts NaN above every number: read as it is, it would rank first in its album."""
    db = pg_edited(pg_library, f"UPDATE scores SET {column} = '{stored}' WHERE image_id = '{EDITED}'")

    refused(invoke("filter", db, "--json", expect_ok=False),
            f"scores.{column} of image {EDITED}, model {MODEL} holds {shown}, not a finite number")
