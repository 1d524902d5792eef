"""ParquetSink: streamed, crash-safe Parquet output with one row per input, on real files.

A run's records go to a journal that survives kill -9; the end of the run
(or the next run, after a crash) merges them into the output, the newest row
of each (path, model) winning. What every sink owes (one row per image and
model, the latest winning, already_scored) is in test_sink_contract.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eat_curate.records import PARQUET_SCHEMA, ScoreRecord, records_to_table
from eat_curate.runs import RunSummary
from eat_curate.errors import StoreError
from eat_curate.sinks.parquet.journal import Journal, read_journal
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.library.run_listing import runs_from_parquet
from eat_curate.sinks.outputs import open_sinks
from sink_records import MODEL, failure, item, run_info, score_run, start_python, success


def write_run(out, batches: list[list[ScoreRecord]], run_id: str = "run-1", **sink_options) -> None:
    score_run(ParquetSink(out, **sink_options), batches, run_id)


def paths(out) -> list[str]:
    return pq.read_table(out, columns=["path"]).column("path").to_pylist()


def by_path(out) -> dict[str, dict]:
    return {row["path"]: row for row in pq.read_table(out).to_pylist()}


# --- one row per input ----------------------------------------------------------------------------


def test_a_run_writes_one_row_per_record_in_the_score_record_schema(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i) for i in range(k, k + 100)] for k in range(0, 1000, 100)])

    table = pq.read_table(out)
    assert table.num_rows == 1000
    assert sorted(paths(out)) == sorted(f"/photos/{i}.jpg" for i in range(1000))
    assert table.schema.remove_metadata().equals(PARQUET_SCHEMA)
    assert table.schema.field("probabilities").type == pa.list_(pa.float32(), 10)
    assert sorted(os.listdir(tmp_path)) == ["scores.parquet"]  # the working folder is gone


def test_the_output_is_merged_in_row_groups_from_parts(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(
        out, [[success(i) for i in range(k, k + 50)] for k in range(0, 1000, 50)], rows_per_part=120, row_group_rows=300
    )

    metadata = pq.ParquetFile(out).metadata
    assert metadata.num_rows == 1000
    assert metadata.num_row_groups == 4  # 300 + 300 + 300 + 100


def test_the_last_record_of_a_path_wins_across_parts(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[failure(7)], [success(8)], [success(7)]], rows_per_part=1)  # a part per record

    rows = by_path(out)
    assert len(rows) == 2 and rows["/photos/7.jpg"]["error_kind"] is None


# --- run history ----------------------------------------------------------------------------------


def test_every_run_and_the_model_card_are_kept_in_the_file_metadata(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(1)]], run_id="20260101T000000Z-aaaa")
    write_run(out, [[success(2), failure(3)]], run_id="20260102T000000Z-bbbb")

    metadata = pq.read_schema(out).metadata
    runs = json.loads(metadata[b"eat_curate.runs"])
    assert [(run["run_id"], run["status"], run["ok"], run["failed"]) for run in runs] == [
        ("20260101T000000Z-aaaa", "completed", 1, 0),
        ("20260102T000000Z-bbbb", "completed", 1, 1),
    ]
    assert json.loads(metadata[b"eat_curate.models"])[MODEL]["name"] == "micro"
    assert [run["run_id"] for run in runs_from_parquet(str(out))] == ["20260102T000000Z-bbbb", "20260101T000000Z-aaaa"]


WRITER = textwrap.dedent(
    """
    import sys
    from eat_curate.runs import RunSummary
    from eat_curate.sinks.parquet.sink import ParquetSink
    from sink_records import run_info, success

    out, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sink = ParquetSink(out, rows_per_part=350, row_group_rows=200)
    run = run_info("crashing")
    sink.begin_run(run)
    for b in range(batches):
        sink.write([success(i, run=run.run_id) for i in range(b * rows, (b + 1) * rows)])
        print(b, flush=True)  # acknowledged: write() has returned
    print("merging", flush=True)
    sink.end_run(run, RunSummary(ok=batches * rows), "completed")
    print("done", flush=True)
    """
)


def kill_after(out: Path, batches: int, rows: int, line: str) -> int:
    """Run WRITER, kill -9 it right after it prints ``line``; returns how many batches it acknowledged."""
    child = start_python(WRITER, str(out), str(batches), str(rows), stdout=subprocess.PIPE)
    acknowledged = 0
    for printed in child.stdout:
        printed = printed.strip()
        if printed.isdigit():
            acknowledged = int(printed) + 1
        if printed == line:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the writer finished before it could be killed"
    return acknowledged


def resume(out: Path, total: int) -> None:
    """The same run again: skip what is there, write the rest."""
    sink = ParquetSink(out)
    run = run_info("resumed")
    sink.begin_run(run)
    items = [item(i) for i in range(total)]
    done = sink.already_scored([i.version() for i in items], MODEL)
    sink.write([success(i, run="resumed") for i in range(total) if f"/photos/{i}.jpg" not in done])
    sink.end_run(run, RunSummary(ok=total - len(done), skipped=len(done)), "completed")
    sink.close()


@pytest.mark.parametrize("kill_at", ["12", "merging"], ids=["while-writing", "while-merging"])
def test_kill_9_loses_no_acknowledged_batch_and_the_rerun_completes_without_duplicates(tmp_path, kill_at):
    out = tmp_path / "scores.parquet"
    batches, rows = 40, 100
    acknowledged = kill_after(out, batches, rows, kill_at)

    survivor = ParquetSink(out)  # opening finishes the interrupted run's merge
    survivor.begin_run(run_info("inspect"))
    survivor.close()
    present = paths(out)
    assert len(present) == len(set(present))
    assert {f"/photos/{i}.jpg" for i in range(acknowledged * rows)} <= set(present)

    resume(out, batches * rows)
    final = paths(out)
    assert sorted(final) == sorted(f"/photos/{i}.jpg" for i in range(batches * rows))
    statuses = {run["run_id"]: run["status"] for run in runs_from_parquet(str(out))}
    assert statuses["crashing"] == "interrupted" and statuses["resumed"] == "completed"
    assert not (tmp_path / ".scores.parquet.parts").exists()


def test_a_journal_cut_anywhere_reads_up_to_its_last_complete_batch(tmp_path):
    journal = Journal(tmp_path / "00000001.arrows")
    ends = []  # the journal's size when each append returned
    for start in (0, 3):
        journal.append(records_to_table([success(i) for i in range(start, start + 3)]))
        ends.append(journal.path.stat().st_size)
    journal.close()

    for length in range(journal.path.stat().st_size, -1, -1):  # every possible crash point, longest first
        os.truncate(journal.path, length)
        rows = sum(batch.num_rows for batch in read_journal(journal.path))
        assert rows == 3 * sum(length >= end for end in ends), f"cut at byte {length}"


def test_a_second_writer_of_the_same_output_is_refused(tmp_path):
    out = tmp_path / "scores.parquet"
    first = ParquetSink(out)
    first.begin_run(run_info())
    try:
        with pytest.raises(StoreError, match="being written by another eat-curate process"):
            ParquetSink(out).begin_run(run_info("run-2"))
    finally:
        first.close()


# --- dataset folders ------------------------------------------------------------------------------


def test_a_folder_output_is_a_dataset_of_parts_with_one_row_per_input(tmp_path):
    out = tmp_path / "scores"
    write_run(
        f"{out}/",
        [[failure(0)], *[[success(i) for i in range(k, k + 100)] for k in range(1, 301, 100)]],
        rows_per_part=120,
    )
    write_run(out, [[success(0, run="run-2"), success(1000, run="run-2")]], run_id="run-2")

    rows = by_path(out)
    assert len(rows) == 302 and rows["/photos/0.jpg"]["error_kind"] is None
    assert [p.name for p in out.iterdir() if not p.name.startswith("part-")] == ["_eat_curate.json"]
    assert [run["run_id"] for run in runs_from_parquet(f"{out}/")] == ["run-2", "run-1"]


def test_a_folder_with_other_files_is_not_taken_as_a_dataset(tmp_path):
    (tmp_path / "IMG_0001.jpg").write_bytes(b"a photo")
    with pytest.raises(StoreError, match="holds files eat-curate did not write"):
        open_sinks(out=f"{tmp_path}/", db=None)


# --- bad --out: one clear error, nothing written ----------------------------------------------------


def test_an_out_inside_a_file_is_refused_before_anything_is_written(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="does not exist"):
        open_sinks(out=str(blocker / "scores.parquet"), db=None)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_an_unwritable_out_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match="cannot write in /proc"):
        open_sinks(out="/proc/scores.parquet", db=None)


def test_an_existing_file_that_is_not_our_parquet_is_never_overwritten(tmp_path):
    text = tmp_path / "scores.parquet"
    text.write_text("precious notes")
    with pytest.raises(StoreError, match="cannot be read as Parquet .*; choose another --out"):
        open_sinks(out=str(text), db=None)
    assert text.read_text() == "precious notes"

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"path": ["x"], "rating": [3]}), other)
    with pytest.raises(StoreError, match=r"is not a result of eat-curate score --out \(columns differ: image_id, .*\); choose another --out"):
        ParquetSink(other)
    assert pq.read_table(other).column_names == ["path", "rating"]
    assert sorted(os.listdir(tmp_path)) == ["other.parquet", "scores.parquet"]


def test_records_survive_the_arrow_table_unchanged():
    varied = [
        success(1),
        failure(2),
        replace(
            success(3),
            extra={"camera": "x100", "iso": 200},
            captured_at=datetime(2024, 5, 1, 12, 30),
            phash=-7,
            album=None,
        ),
    ]
    back = [ScoreRecord.from_row(row) for row in records_to_table(varied).to_pylist()]
    for original, restored in zip(varied, back):
        for stored_as_float32 in ("probabilities", "mean", "std"):
            if getattr(original, stored_as_float32) is not None:
                assert getattr(restored, stored_as_float32) == pytest.approx(getattr(original, stored_as_float32), abs=1e-6)
                setattr(restored, stored_as_float32, getattr(original, stored_as_float32))
        assert restored == original


def test_a_run_needs_somewhere_to_write():
    with pytest.raises(StoreError, match="nowhere to write scores"):
        open_sinks(out=None, db=None)
