"""ParquetSink: streamed, crash-safe Parquet output with one row per input, on real files.

A run's records go to a journal that survives kill -9; the end of the run
(or the next run, after a crash) merges them into the output, the newest row
of each (path, model) winning.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eat_curate.io.sources import SourceItem
from eat_curate.records import PARQUET_SCHEMA, ScoreRecord, records_to_table
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.store.errors import StoreError
from eat_curate.store.journal import Journal, read_journal
from eat_curate.store.parquet_sink import ParquetSink
from eat_curate.store.run_history import runs_from_parquet
from eat_curate.store.sinks import open_sinks

MODEL = "micro@000000000000"


def success(
    i: int, model: str = MODEL, run: str = "run-1", size: int | None = None, mtime: float = 1.0e9
) -> ScoreRecord:
    mean = 1 + (i % 90) / 10
    return ScoreRecord(
        image_id=f"img-{i}",
        path=f"/photos/{i}.jpg",
        album=f"album-{i % 3}",
        model_id=model,
        run_id=run,
        content_hash=f"{i:064x}",
        bytes=size if size is not None else 1000 + i,
        mtime=mtime,
        probabilities=[0.1] * 10,
        mean=mean,
        std=1.5,
    )


def failure(i: int, model: str = MODEL, run: str = "run-1") -> ScoreRecord:
    return ScoreRecord(
        image_id=f"img-{i}",
        path=f"/photos/{i}.jpg",
        album=f"album-{i % 3}",
        model_id=model,
        run_id=run,
        bytes=1000 + i,
        mtime=1.0e9,
        error_kind="truncated",
        error="image file is truncated",
    )


def item(i: int, size: int | None = None, mtime: float = 1.0e9) -> SourceItem:
    return SourceItem(
        key=f"/photos/{i}.jpg", image_id=f"img-{i}", album=None, size=size if size else 1000 + i, mtime=mtime
    )


def run_info(run_id: str = "run-1", model: str = MODEL) -> RunInfo:
    return RunInfo(run_id=run_id, model_id=model, model_name="micro", model_sha256="0" * 64, sources=["/photos"])


def write_run(out, batches: list[list[ScoreRecord]], run_id: str = "run-1", **sink_options) -> None:
    sink = ParquetSink(out, **sink_options)
    run = run_info(run_id)
    sink.register_model({"name": "micro", "preset": "micro", "sha256": "0" * 64})
    sink.begin_run(run)
    for batch in batches:
        sink.write(batch)
    ok = sum(record.ok for batch in batches for record in batch)
    sink.end_run(run, RunSummary(ok=ok, failed=sum(len(b) for b in batches) - ok), "completed")
    sink.close()


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


def test_a_retried_error_is_replaced_by_its_success(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[failure(1), success(2)]], run_id="run-1")
    assert by_path(out)["/photos/1.jpg"]["error_kind"] == "truncated"

    write_run(out, [[success(1, run="run-2")]], run_id="run-2")

    rows = by_path(out)
    assert len(rows) == 2
    assert rows["/photos/1.jpg"]["error_kind"] is None
    assert rows["/photos/1.jpg"]["run_id"] == "run-2"
    assert rows["/photos/2.jpg"]["run_id"] == "run-1"


def test_within_one_run_the_last_record_of_a_path_wins(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[failure(7)], [success(8)], [success(7)]], rows_per_part=1)

    rows = by_path(out)
    assert len(rows) == 2 and rows["/photos/7.jpg"]["error_kind"] is None


def test_two_models_keep_a_row_each_for_the_same_image(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(1, model="a@1"), success(1, model="b@2")]])
    table = pq.read_table(out).to_pylist()
    assert sorted(row["model_id"] for row in table) == ["a@1", "b@2"]


# --- incremental re-runs --------------------------------------------------------------------------


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
    ],
)
def test_already_scored_means_a_success_of_this_model_for_the_unchanged_image(tmp_path, stored, asked, model, skipped):
    out = tmp_path / "scores.parquet"
    write_run(out, [[stored]])
    sink = ParquetSink(out)
    try:
        assert sink.already_scored([asked], model) == ({asked.key} if skipped else set())
    finally:
        sink.close()


def test_already_scored_answers_10000_unchanged_items_from_the_existing_output(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i) for i in range(k, k + 1000)] for k in range(0, 10_000, 1000)])
    sink = ParquetSink(out)
    try:
        done = set()
        for k in range(0, 10_000, 1000):
            done |= sink.already_scored([item(i) for i in range(k, k + 1000)], MODEL)
    finally:
        sink.close()
    assert len(done) == 10_000


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


def test_closing_without_end_run_keeps_the_rows_and_records_the_run_as_interrupted(tmp_path):
    out = tmp_path / "scores.parquet"
    sink = ParquetSink(out)
    sink.begin_run(run_info())
    sink.write([success(1), success(2)])
    sink.close()

    assert sorted(paths(out)) == ["/photos/1.jpg", "/photos/2.jpg"]
    assert [run["status"] for run in runs_from_parquet(str(out))] == ["interrupted"]


# --- crashes --------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from eat_curate.records import ScoreRecord
    from eat_curate.runs import RunInfo, RunSummary
    from eat_curate.store.parquet_sink import ParquetSink

    out, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sink = ParquetSink(out, rows_per_part=350, row_group_rows=200)
    run = RunInfo(run_id="crashing", model_id="micro@000000000000", model_name="micro",
                  model_sha256="0" * 64, sources=["/photos"])
    sink.begin_run(run)
    for b in range(batches):
        sink.write([
            ScoreRecord(image_id=f"img-{i}", path=f"/photos/{i}.jpg", album="a", model_id=run.model_id,
                        run_id=run.run_id, bytes=1000 + i, mtime=1.0e9, probabilities=[0.1] * 10, mean=5.5, std=1.0)
            for i in range(b * rows, (b + 1) * rows)
        ])
        print(b, flush=True)  # acknowledged: write() has returned
    print("merging", flush=True)
    sink.end_run(run, RunSummary(ok=batches * rows), "completed")
    print("done", flush=True)
    """
)


def kill_after(out: Path, batches: int, rows: int, line: str) -> int:
    """Run WRITER, kill -9 it right after it prints ``line``; returns how many batches it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out), str(batches), str(rows)], stdout=subprocess.PIPE, text=True
    )
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
    done = sink.already_scored(items, MODEL)
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
    with pytest.raises(StoreError, match="not a readable Parquet file"):
        open_sinks(out=str(text), db=None)
    assert text.read_text() == "precious notes"

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"path": ["x"], "rating": [3]}), other)
    with pytest.raises(StoreError, match="not written by this eat-curate"):
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
