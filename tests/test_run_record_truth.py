"""The run record tells the truth while the run works and after it is killed.

Counts and a heartbeat are saved as batches land: in the SQL run row within
each batch's own transaction, in the Parquet run file at most every few
seconds (and recounted from the saved rows when a cut-short run is merged).
`runs` shows a "running" record whose process is gone (this host) or whose
heartbeat is stale (any host) as interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.runs import STALE_AFTER_S, RunSummary, liveness, run_record, utc_now
from eat_curate.sinks.durable import read_json
from eat_curate.sinks.parquet import sink as parquet_sink
from eat_curate.sinks.parquet.history import RUN_FILE
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import database_url
from eat_curate.sinks.sql.sink import SqlSink
from sink_records import CARD, failure, query, run_info, success

NOW = utc_now()


def running(**fields) -> dict:
    record = run_record(run_info(), "running", heartbeat_at=NOW)
    record.update(fields)
    return record


def gone_pid() -> int:
    """The id of a process that has exited, as after kill -9."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


# --- liveness: which "running" records are still running ---------------------------------------------


@pytest.mark.parametrize(
    ("record", "shown"),
    [
        (running(), "running"),  # this very process, beating now
        (running(pid=gone_pid()), "interrupted"),  # this host, process gone: no need to wait for staleness
        (running(host="elsewhere", pid=1), "running"),  # another host, fresh heartbeat
        (running(host="elsewhere", heartbeat_at=(NOW - timedelta(seconds=STALE_AFTER_S + 1)).isoformat()),
         "interrupted"),  # another host, silent too long
        (running(host="elsewhere", heartbeat_at=(NOW - timedelta(seconds=STALE_AFTER_S + 1)).isoformat(),
                 options={"db_retry_for": 900}), "running"),  # it may be waiting for its database
        (running(host="elsewhere", heartbeat_at=None), "running"),  # written before heartbeats: nothing tells
        ({**running(pid=gone_pid()), "status": "completed"}, "completed"),  # an ended run is what it says
    ],
    ids=["alive", "pid-gone", "other-host-fresh", "other-host-stale", "stale-but-waiting-for-db", "no-heartbeat",
         "ended"],
)
def test_liveness_tells_a_live_run_from_one_whose_process_is_gone(record, shown):
    assert liveness(record, now=NOW) == shown


def test_a_naive_heartbeat_is_read_as_utc_as_sqlite_returns_it():
    stale = (NOW - timedelta(seconds=STALE_AFTER_S + 60)).replace(tzinfo=None)
    assert liveness(running(host="elsewhere", heartbeat_at=stale), now=NOW) == "interrupted"


# --- the SQL run row is true at every commit ----------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "photos.db")
    return request.getfixturevalue("pg_url")


def test_each_sql_batch_brings_the_run_row_s_counts_and_heartbeat_with_it(db):
    sink = SqlSink(db)
    run = run_info("counted")
    sink.register_model(CARD)
    sink.begin_run(run)
    summary = RunSummary(skipped=3)
    beats = []
    for batch in ([success(1), failure(2)], [success(3), success(4)]):
        tally = summary.with_records(batch)
        sink.write(batch, tally)
        summary.count(batch)
        (row,) = query(db, "SELECT status, ok, failed, skipped, failed_by_kind, heartbeat_at FROM runs")
        assert (row["status"], row["ok"], row["failed"], row["skipped"]) == ("running", summary.ok, summary.failed, 3)
        assert json.loads(row["failed_by_kind"]) == {"truncated": 1}
        beats.append(row["heartbeat_at"])
    sink.close()  # never ended, as after a crash the next run notices

    assert beats[1] > beats[0]
    (row,) = query(db, "SELECT status, ok, failed FROM runs")
    assert (row["status"], row["ok"], row["failed"]) == ("interrupted", 3, 1)  # closing keeps the counts


def test_a_batch_that_fails_leaves_the_counts_as_they_were(db):
    sink = SqlSink(db)
    sink.begin_run(run_info())
    sink.write([success(1)], RunSummary(ok=1))
    broken = replace(success(2), probabilities=None)  # a bug upstream: refused, nothing of its batch written
    with pytest.raises(ValueError):
        sink.write([success(3), broken], RunSummary(ok=3))
    sink.close()
    assert query(db, "SELECT ok FROM runs") == [{"ok": 1}]
    assert query(db, "SELECT COUNT(*) AS n FROM scores") == [{"n": 1}]


# --- the Parquet run file -----------------------------------------------------------------------------


def test_the_parquet_run_file_carries_the_counts_at_most_every_few_seconds(tmp_path, monkeypatch):
    out = tmp_path / "scores.parquet"
    sink = ParquetSink(out)
    sink.begin_run(run_info())
    run_file = sink.target.work / RUN_FILE

    sink.write([success(1)], RunSummary(ok=1))
    assert read_json(run_file)["ok"] == 0  # just begun: not rewritten for every batch

    monkeypatch.setattr(parquet_sink, "RUN_FILE_EVERY_S", 0.0)
    sink.write([failure(2)], RunSummary(ok=1, failed=1))
    record = read_json(run_file)
    assert (record["status"], record["ok"], record["failed"], record["ended_at"]) == ("running", 1, 1, None)
    assert record["heartbeat_at"] > record["started_at"]
    sink.close()


def test_a_cut_short_parquet_run_is_merged_with_the_counts_of_the_rows_it_saved(tmp_path):
    out = tmp_path / "scores.parquet"
    sink = ParquetSink(out)
    sink.begin_run(run_info("cut-short"))
    sink.write([success(1), success(2)], RunSummary(ok=2))
    sink.write([failure(3)], RunSummary(ok=2, failed=1))  # its run file still says ok 0: written < 3 s ago
    sink.close()  # no end_run, as after kill -9 the next open would do

    (run,) = json.loads(pq.read_schema(out).metadata[b"eat_curate.runs"])
    assert (run["status"], run["ok"], run["failed"], run["failed_by_kind"]) == ("interrupted", 2, 1, {"truncated": 1})


# --- kill -9 of `score`, then `runs` -------------------------------------------------------------------


def runs_listed(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["runs", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_after_kill_9_runs_shows_the_run_interrupted_with_what_it_saved_and_the_rerun_resumes(
    micro_model_path, tmp_path
):
    folder = tmp_path / "photos"
    for i in range(60):
        make_photo(folder / f"album{i % 3}" / f"p{i:03d}.jpg", size=(64, 48), seed=i, quality=80)
    db, out = tmp_path / "photos.db", tmp_path / "scores.parquet"
    command = [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(micro_model_path),
               "--db", str(db), "--out", str(out), "--batch-size", "2", "--workers", "1", "--quiet"]
    url = str(database_url(str(db)))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if query(url, "SELECT COUNT(*) AS n FROM scores")[0]["n"] >= 20:
                    break
            except sa.exc.SQLAlchemyError:
                pass
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
        process.stdout.close()
        process.stderr.close()
    saved = query(url, "SELECT COUNT(*) AS n FROM scores")[0]["n"]

    (killed,) = runs_listed("--db", str(db))
    assert killed["status"] == "interrupted"  # its process is gone, though nothing could record it
    assert killed["ok"] == saved >= 20  # counted with every batch, in the batch's transaction
    (pending,) = runs_listed("--out", str(out))
    # Its run file lags by seconds at most; Parquet, written first, may hold one batch (2 rows) more.
    assert pending["status"] == "interrupted" and pending["ok"] <= saved + 2

    resumed = subprocess.run([*command[:-1], "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["skipped"] == saved  # what both outputs held is not scored again
    assert query(url, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS ids FROM scores") == [{"n": 60, "ids": 60}]
    history = {run["run_id"]: run for run in runs_listed("--out", str(out))}
    assert history[killed["run_id"]]["status"] == "interrupted"
    assert saved <= history[killed["run_id"]]["ok"] <= saved + 2  # merged with the count of the rows it saved
    statuses = {run["run_id"]: run["status"] for run in runs_listed("--db", str(db))}
    assert statuses[killed["run_id"]] == "interrupted" and list(statuses.values()).count("completed") == 1


def test_runs_shows_a_run_of_another_host_interrupted_once_its_heartbeat_is_stale(tmp_path):
    db = str(tmp_path / "photos.db")
    for run_id, silent_for in (("fresh", 5), ("stale", STALE_AFTER_S + 60)):
        sink = SqlSink(db)
        sink.begin_run(replace(run_info(run_id), host="render-node-7", pid=1))
        sink._open_run = None  # left "running", as a crashed host leaves it
        sink.close()
        engine = sa.create_engine(database_url(db))
        with engine.begin() as connection:
            connection.execute(schema.runs.update().where(schema.runs.c.run_id == run_id)
                               .values(heartbeat_at=utc_now() - timedelta(seconds=silent_for)))
        engine.dispose()

    statuses = {run["run_id"]: run["status"] for run in runs_listed("--db", db)}
    assert statuses == {"fresh": "running", "stale": "interrupted"}
