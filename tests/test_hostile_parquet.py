"""Parquet output in hostile and careless hands: what others do to `--out` and to its files, and what we answer.

Each case ends in one of two ways: one clear line (exit 2 for a refusal, 4
for the disk), or the run or read goes on and is right: every image exactly
once, nothing foreign overwritten, never a traceback. Covered here:

- where `--out` points: a symbolic link, a working folder that is a file,
  a Parquet file whose columns another tool reordered;
- what a crash, a damaged disk or another eat-curate version leaves in the
  hidden working folder (``.scores.parquet.parts/``): a run file that is not
  a run record, a part or journal that is garbage or of another schema;
- the result edited afterwards by another tool: rows repeated, a NaN mean,
  run history that is garbage or huge, read by `rank`, `albums`, `runs`,
  `db import` and scored again on top.

What the sink guarantees on its own (kill -9, one row per input, a second
writer refused, a foreign `--out` never overwritten) is in
test_parquet_sink.py; the read commands on sound results in
test_parquet_read.py.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.errors import StoreError
from eat_curate.records import records_to_table
from eat_curate.sinks import file_lock
from eat_curate.sinks.parquet.history import MAX_RUNS_BYTES, RUNS_KEY
from eat_curate.sinks.parquet.journal import Journal
from eat_curate.sinks.parquet.sink import ParquetSink
from sink_records import MODEL, item, score_run, success


def write_run(out, batches, run_id: str = "run-1") -> None:
    score_run(ParquetSink(out), batches, run_id)


def paths(out: Path) -> list[str]:
    return pq.read_table(out, columns=["path"]).column("path").to_pylist()


def eat_curate(*args) -> object:
    """``eat-curate ARGS`` as a user runs it; returns click's result (exit code, stdout, stderr)."""
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def assert_one_line(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "unexpected" not in lines[0] and "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


def edited(out: Path, table: pa.Table) -> None:
    """``out`` rewritten by another tool as ``table``, keeping the file's metadata (as pandas round trips do)."""
    pq.write_table(table.replace_schema_metadata(pq.read_schema(out).metadata), out)


# --- where --out points ---------------------------------------------------------------------------


def test_a_symbolic_link_as_out_updates_the_file_it_points_to_and_stays_a_link(tmp_path):
    real = tmp_path / "results" / "scores.parquet"
    real.parent.mkdir()
    write_run(real, [[success(0)]])
    link = tmp_path / "scores.parquet"
    link.symlink_to(real)

    write_run(link, [[success(1, run="run-2")]], run_id="run-2")

    assert link.is_symlink() and link.resolve() == real
    assert sorted(paths(real)) == ["/photos/0.jpg", "/photos/1.jpg"]
    assert not (tmp_path / ".scores.parquet.parts").exists()  # the working folder sat beside the real file


def test_a_working_folder_that_is_a_file_is_refused_in_one_line(tmp_path):
    out = tmp_path / "scores.parquet"
    (tmp_path / ".scores.parquet.parts").write_text("someone's notes")
    with pytest.raises(StoreError, match=r"\.scores\.parquet\.parts \(eat-curate's working folder for it\) is not a"):
        write_run(out, [[success(0)]])
    assert (tmp_path / ".scores.parquet.parts").read_text() == "someone's notes"
    assert not out.exists()


def test_a_result_whose_columns_another_tool_reordered_is_refused_saying_so(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    table = pq.read_table(out)
    edited(out, table.select(table.column_names[::-1]))

    assert_one_line(eat_curate("rank", out), 2, "its columns are in another order")
    with pytest.raises(StoreError, match=r"its columns are in another order\); choose another --out"):
        ParquetSink(out)


# --- what a crash leaves in the working folder ----------------------------------------------------


def crashed_run(out: Path, first: int, count: int) -> Path:
    """The working folder a run killed after saving images ``first`` .. ``first + count - 1`` leaves behind."""
    work = out.parent / f".{out.name}.parts"
    work.mkdir()
    journal = Journal(work / "00000001.arrows")
    journal.append(records_to_table([success(i, run="crashed") for i in range(first, first + count)]))
    journal.close()
    return work


@pytest.mark.parametrize(
    "run_file",
    ['{"run_id": "crashed", "sta', "[1, 2]", '{"run_id": "crashed"}', '{"run_id": "crashed", "status": 7}'],
    ids=["cut-short", "not-a-record", "no-status", "of-another-version"],
)
def test_a_run_file_that_is_no_run_record_is_dropped_and_its_rows_merged(tmp_path, run_file):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    work = crashed_run(out, 1, 3)
    (work / "run.json").write_text(run_file)

    with pytest.warns(UserWarning, match="the record of a run cut short, cannot be read; its rows are merged"):
        write_run(out, [[success(4, run="run-2")]], run_id="run-2")

    assert sorted(paths(out)) == [f"/photos/{i}.jpg" for i in range(5)]
    runs = json.loads(eat_curate("runs", "--out", out, "--json").output)
    assert [run["run_id"] for run in runs] == ["run-2", "run-1"]
    assert not work.exists()


def foreign_part(work: Path) -> None:
    pq.write_table(pa.table({"path": ["/photos/1.jpg"], "rating": [5]}), work / "00000002.parquet")


def garbage_part(work: Path) -> None:
    (work / "00000002.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)


def foreign_journal(work: Path) -> None:
    with pa.ipc.new_stream(str(work / "00000002.arrows"), pa.schema([("path", pa.string())])) as stream:
        stream.write_table(pa.table({"path": ["/photos/1.jpg"]}))


@pytest.mark.parametrize("damage", [garbage_part, foreign_part, foreign_journal])
def test_a_damaged_or_foreign_file_in_the_working_folder_is_set_aside_and_the_run_goes_on(tmp_path, damage):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    work = crashed_run(out, 1, 2)
    damage(work)

    sink = ParquetSink(out)
    with pytest.warns(UserWarning, match=r"00000002\.\w+ .*: set aside as 00000002\.\w+\.damaged, not merged"):
        done = sink.already_scored([item(i).version() for i in range(4)], MODEL)
    score_run(sink, [[success(i, run="run-2") for i in range(4) if f"/photos/{i}.jpg" not in done]], "run-2")

    assert done == {"/photos/0.jpg", "/photos/1.jpg", "/photos/2.jpg"}  # the crashed run's journal was merged
    assert sorted(paths(out)) == [f"/photos/{i}.jpg" for i in range(4)]
    suffix = "arrows" if damage is foreign_journal else "parquet"
    assert [path.name for path in work.iterdir()] == [f"00000002.{suffix}.damaged"]  # kept, for whoever looks


# --- the result edited by another tool, then read and scored on top -------------------------------


def test_rows_another_tool_repeated_are_read_once_with_a_warning(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i, album="trip", mean=1.0 + i) for i in range(4)]])
    table = pq.read_table(out)
    edited(out, pa.concat_tables([table, table.slice(0, 2)]))

    albums = eat_curate("albums", out, "--json")
    assert albums.exit_code == 0, albums.output
    assert "warning: " in albums.stderr and "2 rows repeat the path and model of another row" in albums.stderr
    (trip,) = json.loads(albums.stdout)
    assert trip["images"] == 4
    ranked = eat_curate("rank", out, "--json")
    assert ranked.exit_code == 0, ranked.output
    assert sorted(row["path"] for row in json.loads(ranked.stdout)) == [f"/photos/{i}.jpg" for i in range(4)]


def damaged_page(out: Path, column: str) -> None:
    """``out`` with the header of ``column``'s first page overwritten (a disk error, a copy gone wrong): its footer
    reads, so only a query that reads the pages finds it."""
    metadata = pq.ParquetFile(out).metadata
    chunk = metadata.row_group(0).column(metadata.schema.names.index(column))
    data = bytearray(out.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    out.write_bytes(data)


@pytest.mark.parametrize("command", [["rank"], ["albums"], ["filter", "--min-score", "1"]])
def test_a_result_whose_pages_are_damaged_is_refused_by_the_read_commands_in_one_line(tmp_path, command):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i, album="trip", mean=1.0 + i) for i in range(20)]])
    damaged_page(out, "mean")

    result = eat_curate(command[0], out, *command[1:])

    assert_one_line(result, 2, f"{out} cannot be read, it is damaged: ")  # was exit 1, "unexpected ProgrammingError"


def test_a_result_whose_text_is_not_utf8_in_its_footer_and_pages_is_refused_in_one_line(tmp_path):
    """The model id, in the pages and in the footer's column statistics (which pyarrow could not decode either)."""
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i) for i in range(3)]])
    out.write_bytes(out.read_bytes().replace(MODEL.encode(), MODEL.encode()[:-1] + b"\xff"))

    assert_one_line(eat_curate("rank", out), 2, f"{out} cannot be read, it is damaged: ")


def test_a_result_whose_column_names_are_not_utf8_is_refused_in_one_line(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i) for i in range(3)]])
    out.write_bytes(out.read_bytes().replace(b"album", b"albu\xff"))

    assert_one_line(eat_curate("albums", out), 2, f"{out} cannot be read as Parquet (")  # was "unexpected UnicodeDecodeError"


def test_a_run_record_missing_a_field_is_left_out_not_read_as_a_crash(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    metadata = pq.read_schema(out).metadata
    (run,) = json.loads(metadata[RUNS_KEY])
    del run["images_per_s"]
    pq.write_table(pq.read_table(out).replace_schema_metadata({**metadata, RUNS_KEY: json.dumps([run]).encode()}), out)

    for command in (["runs", out, "--json"], ["filter", out, "--json"]):
        result = eat_curate(*command)
        assert result.exit_code == 0, result.output  # was exit 1: "unexpected KeyError: 'images_per_s'"
    assert json.loads(eat_curate("runs", out, "--json").stdout) == []


def test_a_success_whose_mean_another_tool_made_nan_is_scored_again(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(i) for i in range(3)]])
    table = pq.read_table(out)
    means = table.column("mean").to_pylist()
    means[paths(out).index("/photos/1.jpg")] = math.nan
    edited(out, table.set_column(table.schema.get_field_index("mean"), "mean", pa.array(means, pa.float32())))

    sink = ParquetSink(out)
    done = sink.already_scored([item(i).version() for i in range(3)], MODEL)
    score_run(sink, [[success(1, run="run-2", mean=6.0)]], "run-2")

    assert done == {"/photos/0.jpg", "/photos/2.jpg"}
    rows = {row["path"]: row["mean"] for row in pq.read_table(out).to_pylist()}
    assert rows == {"/photos/0.jpg": 5.5, "/photos/1.jpg": 6.0, "/photos/2.jpg": 5.5}


def garbage_in_file(out: Path) -> None:
    table = pq.read_table(out)
    pq.write_table(table.replace_schema_metadata({RUNS_KEY: b"{not json", b"eat_curate.models": b"[1]"}), out)


def garbage_in_folder(out: Path) -> None:
    (out / "_eat_curate.json").write_text('{"runs": [1, {"run_id": 2}], "models": {"x": "y"}}')


@pytest.mark.parametrize(
    "layout, damage", [("scores.parquet", garbage_in_file), ("scores/", garbage_in_folder)], ids=["file", "folder"]
)
def test_run_history_that_is_garbage_reads_as_no_runs_and_the_next_run_writes_it_anew(tmp_path, layout, damage):
    out = f"{tmp_path}/{layout}"  # "scores/": a dataset folder
    write_run(out, [[success(i) for i in range(3)]])
    damage(tmp_path / layout.rstrip("/"))

    assert json.loads(eat_curate("runs", "--out", out, "--json").output) == []
    assert eat_curate("rank", out, "--json").exit_code == 0
    imported = eat_curate("db", "import", out, "--db", tmp_path / "photos.db")
    assert imported.exit_code == 0 and "imported 3 of 3 rows" in imported.output, imported.output

    write_run(out, [[success(3, run="run-2")]], run_id="run-2")
    assert [run["run_id"] for run in json.loads(eat_curate("runs", "--out", out, "--json").output)] == ["run-2"]


def test_the_history_in_a_file_keeps_the_newest_runs_that_fit_so_its_footer_stays_readable(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    # A history an older eat-curate let grow without bound: 1,500 runs of 30 sources each, about 3 MB.
    (run,) = json.loads(pq.read_schema(out).metadata[RUNS_KEY])
    old = [
        {**run, "run_id": f"old-{n:04d}", "started_at": f"2025-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
         "sources": [f"/photos/{n}/{s:05d}.jpg" for s in range(30)]}
        for n in range(1500)
    ]
    metadata = {**pq.read_schema(out).metadata, RUNS_KEY: json.dumps(old).encode()}
    pq.write_table(pq.read_table(out).replace_schema_metadata(metadata), out)

    write_run(out, [[success(1, run="run-2")]], run_id="run-2")

    kept = json.loads(pq.read_schema(out).metadata[RUNS_KEY])
    assert len(json.dumps(kept).encode()) <= MAX_RUNS_BYTES
    assert kept[-1]["run_id"] == "run-2" and kept[-2]["run_id"] == "old-1499"  # the newest are kept
    assert "old-0000" not in {run["run_id"] for run in kept}
    assert kept[-2]["sources"][-1] == "... and 10 more"
    assert eat_curate("runs", "--out", out, "--limit", "1").exit_code == 0


def test_a_lock_file_another_user_left_is_refused_naming_it(tmp_path, monkeypatch):
    """Root can open any file, so the other user's lock is played by an open that is refused."""
    real_open = os.open

    def refused_for_the_lock(path, *args, **kwargs):
        if str(path).endswith("lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(file_lock.os, "open", refused_for_the_lock)
    with pytest.raises(StoreError, match=r"the lock file .*/lock belongs to someone else \(permission denied\)"):
        file_lock.FolderLock(tmp_path / ".scores.parquet.parts", "--out scores.parquet").acquire()
