"""`score --dry-run`: what a run would score, read from the outputs as the run reads them, with nothing written.

The read-only lookups (`eat_curate.sinks.preview`) must answer what the
sinks answer at the start of a run, on every output: Parquet file and
dataset, SQLite, PostgreSQL, and a Parquet output holding a run cut short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_photo
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.preview import ParquetLookup, SqlLookup
from eat_curate.sinks.sql.sink import SqlSink
from sink_records import MODEL, failure, item, query, run_info, score_run, success

OTHER_MODEL = "other@111111111111"


def inputs(*numbers: int, changed: int | None = None) -> list:
    """Items as the next run lists them; ``changed`` has a new size since it was scored."""
    return [item(i, size=5 if i == changed else None).version() for i in numbers]


def lookup_and_sink(kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    if kind == "parquet file":
        return lambda: ParquetLookup(str(tmp_path / "s.parquet")), lambda: ParquetSink(tmp_path / "s.parquet")
    if kind == "parquet dataset":
        return lambda: ParquetLookup(f"{tmp_path}/s/"), lambda: ParquetSink(f"{tmp_path}/s/")
    url = str(tmp_path / "s.db") if kind == "sqlite" else request.getfixturevalue("pg_url")
    return lambda: SqlLookup(url), lambda: SqlSink(url)


@pytest.mark.parametrize("kind", ["parquet file", "parquet dataset", "sqlite", "postgresql"])
def test_a_lookup_answers_what_the_sink_answers(kind, tmp_path, request):
    new_lookup, new_sink = lookup_and_sink(kind, tmp_path, request)
    empty = new_lookup()
    assert empty.already_scored(inputs(0, 1), MODEL) == set()  # an output not made yet holds nothing
    empty.close()
    assert not any(tmp_path.iterdir()) or kind == "postgresql"  # ... and the lookup made none

    score_run(new_sink(), [[success(0), success(1), success(2), failure(3)], [success(4, model=OTHER_MODEL)]])
    asked = inputs(0, 1, 2, 3, 4, 5, changed=2)
    lookup, sink = new_lookup(), new_sink()
    try:
        expected = sink.already_scored(asked, MODEL)
        assert expected == {"/photos/0.jpg", "/photos/1.jpg"}  # 2 changed, 3 failed, 4 another model's, 5 new
        assert lookup.already_scored(asked, MODEL) == expected
        assert lookup.already_scored(asked, OTHER_MODEL) == sink.already_scored(asked, OTHER_MODEL) == {"/photos/4.jpg"}
    finally:
        lookup.close()
        sink.close()


@pytest.mark.parametrize("out", ["s.parquet", "s/"])
def test_rows_of_a_run_cut_short_count_as_its_merge_will_count_them(out, tmp_path):
    target = f"{tmp_path}/{out}"
    score_run(ParquetSink(target), [[success(0), success(1), success(2)]])
    cut_short = ParquetSink(target, rows_per_part=2)  # its rows land in a part, then in a journal
    cut_short.begin_run(run_info("run-2"))
    cut_short.write([failure(1, run="run-2"), success(3, run="run-2")])
    cut_short.write([success(4, run="run-2")])
    asked = inputs(0, 1, 2, 3, 4, 5)

    lookup = ParquetLookup(target)
    before_the_merge = lookup.already_scored(asked, MODEL)
    lookup.close()
    cut_short.close()  # merges the rows, the run recorded as interrupted
    after = ParquetSink(target)
    try:
        assert before_the_merge == after.already_scored(asked, MODEL)
    finally:
        after.close()
    # 1 failed in the later run: its error supersedes its earlier score, and the next run retries it.
    assert before_the_merge == {"/photos/0.jpg", "/photos/2.jpg", "/photos/3.jpg", "/photos/4.jpg"}


# --- the command --------------------------------------------------------------------------------------


def contents(folder: Path) -> dict[Path, bytes]:
    """Every file's bytes but SQLite's -wal and -shm, which a reader of a WAL database may leave behind."""
    return {path: path.read_bytes() for path in folder.rglob("*")
            if path.is_file() and not path.name.endswith(("-wal", "-shm"))}


def test_a_dry_run_lists_what_the_run_then_scores_and_writes_nothing(score, photo_folder, tmp_path):
    out, db = tmp_path / "s.parquet", tmp_path / "s.db"
    everything = score(photo_folder, "--out", out, "--db", db, "--dry-run")
    assert len(everything.stdout.splitlines()) == 5 and sorted(tmp_path.iterdir()) == [photo_folder]
    assert "would score 5 images with micro@" in everything.stderr and "skip 0 already scored" in everything.stderr

    score(photo_folder, "--out", out, "--db", db, "--quiet")
    make_photo(photo_folder / "trips" / "trip_1.jpg", seed=99, quality=70)  # changed
    make_photo(photo_folder / "trips" / "trip_9.jpg", seed=9)  # new
    (photo_folder / "family" / "broken.jpg").write_bytes(b"not a jpeg")  # new, and it will fail
    files = contents(tmp_path)

    preview = score(photo_folder, "--out", out, "--db", db, "--dry-run")
    listed = sorted(preview.stdout.splitlines())
    assert listed == sorted(str(photo_folder / name) for name in ("trips/trip_1.jpg", "trips/trip_9.jpg",
                                                                      "family/broken.jpg"))
    assert "would score 3 images" in preview.stderr and "skip 4 already scored" in preview.stderr
    assert contents(tmp_path) == files  # nothing made or changed ...
    assert query(str(db), "SELECT count(*) AS runs FROM runs") == [{"runs": 1}]  # ... nor a run recorded

    counts = json.loads(score(photo_folder, "--out", out, "--db", db, "--dry-run", "--json").stdout)
    assert counts == {"dry_run": True, "model_id": counts["model_id"], "to_score": 3, "already_scored": 4}
    ran = json.loads(score(photo_folder, "--out", out, "--db", db, "--json").stdout)
    assert (ran["ok"] + ran["failed"], ran["skipped"]) == (3, 4)  # what the dry run said
    retried = score(photo_folder, "--out", out, "--db", db, "--dry-run").stdout.splitlines()
    assert retried == [str(photo_folder / "family" / "broken.jpg")]  # a failed image is tried again


def test_a_dry_run_looks_up_every_output_as_the_run_does(score, photo_folder, tmp_path):
    out, db = tmp_path / "s.parquet", tmp_path / "s.db"
    score(photo_folder, "--out", out, "--quiet")
    # Only the Parquet output holds the scores: the run would score everything for the database.
    assert len(score(photo_folder, "--out", out, "--db", db, "--dry-run").stdout.splitlines()) == 5
    assert score(photo_folder, "--out", out, "--dry-run").stdout == ""
    rescore = score(photo_folder, "--out", out, "--dry-run", "--rescore")
    assert len(rescore.stdout.splitlines()) == 5 and "--rescore: none skipped" in rescore.stderr
    limited = score(photo_folder, "--out", tmp_path / "other.parquet", "--dry-run", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 2


def test_a_dry_run_says_what_exclude_left_out_and_is_refused_on_a_bad_output(score, photo_folder, tmp_path):
    excluded = score(photo_folder, "--out", tmp_path / "s.parquet", "--dry-run", "--exclude", "family",
                     "--exclude", "nothing-matches")
    assert all("/family/" not in line for line in excluded.stdout.splitlines())
    assert "--exclude left out 1 folder" in excluded.stderr and "'nothing-matches' matched nothing" in excluded.stderr
    counts = json.loads(score(photo_folder, "--out", tmp_path / "s.parquet", "--dry-run", "--json",
                              "--exclude", "family").stdout)
    assert counts["to_score"] == 3 and counts["excluded"]["folders"] == 1

    (tmp_path / "not-parquet.parquet").write_text("hello")
    refused = score(photo_folder, "--out", tmp_path / "not-parquet.parquet", "--dry-run", expect_ok=False)
    assert refused.exit_code == 2 and "not-parquet.parquet" in refused.output
