"""Read commands given odd option values, or reading odd values another tool stored: an answer or one clear line.

None may end in "unexpected ..." (a bug's exit 1) or answer wrongly without
a word. Each database here is a few rows written by the real sinks
(``score_rows``, ``sink_records``), so the tests stay fast.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from datetime import datetime

import pytest
import sqlalchemy as sa

from eat_curate.exit_codes import REFUSED
from eat_curate.sinks import ParquetSink, SqlSink
from read_library import invoke, temporary_pg_database
from score_rows import scored, write_scores
from sink_records import score_run

BEYOND_INT64 = str(10**20)  # more rows than any database counts: SQL refuses it as a LIMIT


def records() -> list:
    """Two albums of two images each, captured on 1 and 2 June 2024."""
    return [
        scored(f"{album}-{day}", 5.0 + day, album=album, captured_at=datetime(2024, 6, day, 12))
        for album in ("trips", "home")
        for day in (1, 2)
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, str]:
    """The same records in SQLite, PostgreSQL and a Parquet result: {backend: what --db takes}."""
    folder = tmp_path_factory.mktemp("hostile_options")
    with temporary_pg_database() as pg_url:
        score_run(SqlSink(pg_url), [records()])
        score_run(ParquetSink(str(folder / "scores.parquet")), [records()])
        yield {
            "sqlite": write_scores(folder / "photos.db", records()),
            "postgresql": pg_url,
            "parquet": str(folder / "scores.parquet"),
        }


def image_ids(*arguments: str) -> list[str]:
    return [row["image_id"] for row in json.loads(invoke(*arguments, "--json").stdout)]


# --- counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "parquet"])
@pytest.mark.parametrize("command, option, rows", [("rank", "--top", 4), ("filter", "--limit", 4), ("runs", "--limit", 1)])
def test_a_count_beyond_what_a_database_takes_means_all(results, backend, command, option, rows):
    """Before: "unexpected OverflowError" (SQLite), DataError (PostgreSQL), a DuckDB error (Parquet): exit 1
    (rank --top on Parquet alone answered)."""
    result = invoke(command, results[backend], option, BEYOND_INT64, "--json")

    assert len(json.loads(result.stdout)) == rows


def test_counts_below_one_are_still_refused(results):
    for arguments in (("rank", "--top", "0"), ("rank", "--top", "-1"), ("filter", "--limit", "0")):
        result = invoke(arguments[0], results["sqlite"], *arguments[1:], expect_ok=False)
        assert result.exit_code == REFUSED.code and "is not in the range x>=1" in result.output


# --- time bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("since, until", [("2024-06-02", "2024-06-01"), ("2024-06-02 10:00", "2024-06-02 10:00")])
def test_since_not_before_until_is_refused_like_min_above_max(results, since, until):
    """Before: exit 0 and no rows (an empty manifest, nothing exported), as if nothing had been taken then."""
    result = invoke("filter", results["sqlite"], "--since", since, "--until", until, expect_ok=False)

    assert result.exit_code == REFUSED.code
    assert "is not before --until" in result.output and "no time is both" in result.output


def edited_postgresql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


def test_a_postgresql_time_that_reads_as_none_is_left_out_by_since_and_until(pg_url):
    """'infinity' and its kin read as no time (null); PostgreSQL itself compares 'infinity' after every time, so
    before, --since 2024-01-01 kept the image whose capture time shows as null, and --until its '-infinity' twin."""
    stored = {"trips-1": "infinity", "trips-2": "-infinity", "home-1": "20000-01-01 00:00", "home-2": "4000-01-01 BC"}
    score_run(SqlSink(pg_url), [records()])
    edited_postgresql(pg_url, *(f"UPDATE images SET captured_at = '{value}' WHERE image_id = '{image_id}'"
                                for image_id, value in stored.items()))
    edited_postgresql(pg_url, "UPDATE scores SET scored_at = 'infinity' WHERE image_id = 'trips-1'",
                      "UPDATE scores SET scored_at = '-infinity' WHERE image_id = 'trips-2'")

    shown = json.loads(invoke("filter", pg_url, "--json").stdout)
    assert [row["captured_at"] for row in shown] == [None] * 4
    assert image_ids("filter", pg_url, "--since", "2024-01-01") == []
    assert image_ids("filter", pg_url, "--until", "2030-01-01") == []
    assert sorted(image_ids("filter", pg_url, "--time", "scored", "--since", "2000-01-01")) == ["home-1", "home-2"]
    assert sorted(image_ids("filter", pg_url, "--time", "scored", "--until", "9000-01-01")) == ["home-1", "home-2"]


def edited_sqlite(db: str, image_id: str, captured_at: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE images SET captured_at = ? WHERE image_id = ?", (captured_at, image_id))
    connection.close()


@pytest.mark.parametrize("stored", ["now", "2460000.5", 2460000.5, "0000-06-01 12:00:00"])
def test_an_sqlite_time_only_strftime_reads_is_left_out_by_since_and_until(tmp_path, stored):
    """'now', a Julian day number, year 0: SQLite's strftime reads them as times, Python (so every table and
    export) as none; before, --since 2000-01-01 (year 0: --until 2030-01-01) kept that image."""
    db = write_scores(tmp_path / "photos.db", records())
    edited_sqlite(db, "trips-1", stored)

    assert json.loads(invoke("filter", db, "--album", "trips", "--json").stdout)[1]["captured_at"] is None
    for bound in (("--since", "2000-01-01"), ("--until", "2030-01-01")):
        chosen = image_ids("filter", db, *bound)
        assert "trips-1" not in chosen and "trips-2" in chosen


@pytest.mark.parametrize("stored", ["0001-01-01 00:30:00+01:00", "9999-12-31 23:30:00-01:00"])
def test_an_sqlite_capture_time_whose_utc_leaves_python_years_reads_as_none(tmp_path, stored):
    """Before: "unexpected OverflowError: date value out of range" (exit 1) from every command reading it."""
    db = write_scores(tmp_path / "photos.db", records())
    edited_sqlite(db, "trips-1", stored)

    rows = {row["image_id"]: row for row in json.loads(invoke("filter", db, "--json").stdout)}
    assert rows["trips-1"]["captured_at"] is None
    assert "trips-1" not in image_ids("filter", db, "--until", "2030-01-01")


# --- album names --------------------------------------------------------------------------------


def test_an_album_named_in_another_unicode_form_is_suggested_spelled_out(tmp_path):
    """macOS names folders in NFD ('u' + a combining accent), a Linux keyboard types NFC: the names look the same
    but differ to `=`. Before, the suggestion was another album that differs in case only ('zürich')."""
    decomposed = unicodedata.normalize("NFD", "Zürich")
    db = write_scores(tmp_path / "photos.db", [scored("a", 6.0, album=decomposed), scored("b", 5.0, album="zürich")])

    result = invoke("rank", db, "--album", "Zürich", expect_ok=False)

    assert result.exit_code == REFUSED.code
    assert f"did you mean {decomposed!r}, written 'Zu\\u0308rich'" in result.output
    assert image_ids("rank", db, "--album", decomposed) == ["a"]  # the name as stored still matches exactly
