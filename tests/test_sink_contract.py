"""The Sink protocol's contract (eat_curate/store/sink.py), held by every sink on real outputs.

Each test runs once per sink kind: a Parquet file, a fresh SQLite file and a
fresh PostgreSQL database (dropped afterwards). What is specific to one sink
(the journal, merging, locks, COPY, WAL, the schema version) is tested in
test_parquet_sink.py and test_sql_sink.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyarrow.parquet as pq
import pytest

from eat_curate.io.sources import SourceItem
from eat_curate.runs import RunSummary
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.contract import Sink
from eat_curate.library.run_listing import runs_from_database, runs_from_parquet
from eat_curate.sinks.sql.sink import SqlSink
from sink_records import MODEL, MTIME, failure, item, query, run_info, score_run, success


@dataclass(frozen=True)
class Stored:
    """What a sink keeps for one (path, model): the fields the contract speaks of, and everything else."""

    run_id: str
    error_kind: str | None
    error: str | None
    mean: float | None
    kept: dict  # every stored value: the Parquet row, or the SQL rows (the image's and its score's or error's)


@dataclass(frozen=True)
class Output:
    kind: str  # "parquet", "sqlite" or "postgresql"
    where: str  # the --out path or the --db path or URL

    def open(self) -> Sink:
        return ParquetSink(self.where) if self.kind == "parquet" else SqlSink(self.where)

    def stored(self) -> dict[tuple[str, str], Stored]:
        """What the output holds, by (path, model); fails if it holds two rows for one."""
        rows = self._parquet_rows() if self.kind == "parquet" else self._sql_rows()
        by_key = dict(rows)
        assert len(by_key) == len(rows), "more than one row for a (path, model)"
        return by_key

    def run_statuses(self) -> list[str]:
        """Statuses of the recorded runs, newest first."""
        if self.kind == "parquet":
            return [run["status"] for run in runs_from_parquet(self.where)]
        return [run["status"] for run in runs_from_database(self.where)]

    def _parquet_rows(self) -> list[tuple[tuple[str, str], Stored]]:
        return [
            ((row["path"], row["model_id"]), Stored(row["run_id"], row["error_kind"], row["error"], row["mean"], row))
            for row in pq.read_table(self.where).to_pylist()
        ]

    def _sql_rows(self) -> list[tuple[tuple[str, str], Stored]]:
        images = {row["image_id"]: row for row in query(self.where, "SELECT * FROM images")}
        for image in images.values():
            del image["updated_at"]  # rewritten by every write of the image
        rows = []
        for score in query(self.where, "SELECT * FROM scores"):
            image = images[score["image_id"]]
            kept = {"image": image, "score": score}
            rows.append(((image["path"], score["model_id"]), Stored(score["run_id"], None, None, score["mean"], kept)))
        for error in query(self.where, "SELECT * FROM errors"):
            image = images[error["image_id"]]
            kept = {"image": image, "error": error}
            stored = Stored(error["run_id"], error["kind"], error["message"], None, kept)
            rows.append(((image["path"], error["model_id"]), stored))
        return rows


@pytest.fixture(params=["parquet", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def output(request, tmp_path) -> Output:
    if request.param == "parquet":
        return Output("parquet", str(tmp_path / "scores.parquet"))
    if request.param == "sqlite":
        return Output("sqlite", str(tmp_path / "photos.db"))
    return Output("postgresql", request.getfixturevalue("pg_url"))


# --- what a write leaves: one row per (image, model), the latest record winning -----------------------


def test_writing_the_same_records_twice_leaves_the_same_rows(output):
    batch = [success(i) for i in range(50)] + [failure(i) for i in range(50, 60)]
    score_run(output.open(), [batch])
    first = output.stored()
    score_run(output.open(), [batch], run_id="run-2")

    assert [row.error_kind for row in first.values()].count(None) == 50 and len(first) == 60
    assert output.stored() == first


def test_a_success_replaces_the_error_it_retries_and_an_error_replaces_the_score(output):
    score_run(output.open(), [[failure(1), success(2), success(3)]])
    assert output.stored()["/photos/1.jpg", MODEL].error_kind == "truncated"

    score_run(output.open(), [[success(1, run="run-2"), failure(2, run="run-2")]], run_id="run-2")

    rows = output.stored()
    assert {path: (row.run_id, row.error_kind, row.error) for (path, _), row in rows.items()} == {
        "/photos/1.jpg": ("run-2", None, None),
        "/photos/2.jpg": ("run-2", "truncated", "image file is truncated"),
        "/photos/3.jpg": ("run-1", None, None),  # not in run-2: left as it was
    }


def test_the_last_record_of_an_image_wins_within_a_batch_and_across_batches(output):
    within = [success(1, mean=3.0), failure(2), success(1, mean=8.0), success(2)]
    score_run(output.open(), [within, [failure(7)], [success(8)], [success(7)]])

    assert {path: (row.mean, row.error_kind) for (path, _), row in output.stored().items()} == {
        "/photos/1.jpg": (8.0, None),
        "/photos/2.jpg": (5.5, None),
        "/photos/7.jpg": (5.5, None),
        "/photos/8.jpg": (5.5, None),
    }


def test_scores_of_two_models_live_side_by_side(output):
    score_run(output.open(), [[success(1, model="a@1", mean=4.0), success(1, model="b@2", mean=7.0)]])

    assert {key: row.mean for key, row in output.stored().items()} == {
        ("/photos/1.jpg", "a@1"): 4.0,
        ("/photos/1.jpg", "b@2"): 7.0,
    }


def test_an_unknown_run_status_is_a_bug_not_a_row(output):
    sink = output.open()
    try:
        with pytest.raises(ValueError, match="unknown run status"):
            sink.end_run(run_info(), RunSummary(), "finished")
    finally:
        sink.close()


# --- incremental re-runs: already_scored (rule: eat_curate/incremental.py) ----------------------


@pytest.mark.parametrize(
    ("stored", "asked", "model", "skipped"),
    [
        pytest.param(success(1), item(1), MODEL, True, id="unchanged"),
        pytest.param(success(1), item(1, size=5), MODEL, False, id="size-changed"),
        pytest.param(success(1), item(1, mtime=2.0e9), MODEL, False, id="mtime-changed"),
        pytest.param(failure(1), item(1), MODEL, False, id="error-rows-are-retried"),
        pytest.param(success(1), item(1), "other@1", False, id="other-model"),
        pytest.param(
            success(1),
            SourceItem(key="/photos/1.jpg", image_id="img-1", album=None, content_hash=f"{1:064x}"),
            MODEL,
            True,
            id="embedded-bytes-same-hash",
        ),
        pytest.param(
            success(1),
            SourceItem(key="/photos/1.jpg", image_id="img-1", album=None, content_hash="f" * 64),
            MODEL,
            False,
            id="embedded-bytes-other-hash",
        ),
        pytest.param(success(1), item(2), MODEL, False, id="other-path"),
        pytest.param(
            success(1),
            SourceItem(key="/moved/1.jpg", image_id="img-1", album=None, size=1001, mtime=MTIME),
            MODEL,
            False,
            id="same-id-other-path",
        ),
    ],
)
def test_already_scored_means_a_success_of_this_model_for_the_unchanged_image(output, stored, asked, model, skipped):
    score_run(output.open(), [[stored]])
    sink = output.open()
    try:
        assert sink.already_scored([asked.version()], model) == ({asked.key} if skipped else set())
    finally:
        sink.close()


def test_an_image_changed_since_a_model_scored_it_is_not_skipped_even_after_another_model_saw_it(output):
    score_run(output.open(), [[success(1, model="a@1")]])
    changed = replace(success(1, model="b@2"), bytes=2222)  # b scores the image's new version
    score_run(output.open(), [[changed]], run_id="run-2")
    sink = output.open()
    try:
        assert sink.already_scored([item(1, size=2222).version()], "a@1") == set()
        assert sink.already_scored([item(1, size=2222).version()], "b@2") == {"/photos/1.jpg"}
    finally:
        sink.close()


def test_already_scored_answers_10000_unchanged_items_in_chunks_of_1000(output):
    score_run(output.open(), [[success(i) for i in range(k, k + 1000)] for k in range(0, 10_000, 1000)])
    sink = output.open()
    try:
        done = set()
        for k in range(0, 10_000, 1000):
            done |= sink.already_scored([item(i).version() for i in range(k, k + 1000)], MODEL)
    finally:
        sink.close()
    assert len(done) == 10_000


def test_closing_without_end_run_keeps_the_rows_and_records_the_run_as_interrupted(output):
    sink = output.open()
    sink.begin_run(run_info())
    sink.write([success(1), success(2)])
    sink.close()

    assert sorted(path for path, _ in output.stored()) == ["/photos/1.jpg", "/photos/2.jpg"]
    assert output.run_statuses() == ["interrupted"]
