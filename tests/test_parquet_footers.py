"""Parquet results that older versions or other tools left: a footer past pyarrow's limits, repeated rows.

An older eat-curate appended every run to a result file's footer without a
cap; past about 75 MB of runs pyarrow refuses the file ("Couldn't deserialize
thrift: TProtocolException: Exceeded size limit"), as every reader and
`score` into it did. Such a file takes ten seconds to write and seconds to
read, so these tests shrink pyarrow's default string limit instead
(``shrunk_limits``): pyarrow's own check then refuses a footer of a few MB,
with the same message. DuckDB has no such limit.

Rows another tool repeated (one path and model twice) are read once, from
the newest row; the next merge writes that row alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.library.parquet_views import parquet_connection
from eat_curate.library.run_listing import runs_from_parquet
from eat_curate.sinks.parquet.footer import footer_length
from eat_curate.sinks.parquet.history import MAX_RUNS_BYTES, RUNS_KEY
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.parquet.target import DATASET_HISTORY
from eat_curate.sinks.preview import ParquetLookup
from sink_records import MODEL, item, score_run, success

# pyarrow's default is 100 MB. A history kept to MAX_RUNS_BYTES (1 MiB) makes footer strings of at
# most 1.4 MB (Arrow's base64 copy of the schema holds it too), so a capped file passes this limit,
# and one of OLD_HISTORY_BYTES (a 2 MB copy) does not.
SHRUNK_STRING_LIMIT = 1_600_000
OLD_HISTORY_BYTES = 1_500_000


def write_run(out, batches, run_id: str = "run-1") -> None:
    score_run(ParquetSink(out), batches, run_id)


def eat_curate(*args) -> object:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def rows_of(out: Path) -> list[dict]:
    return pq.ParquetFile(out).read().to_pylist()


@pytest.fixture
def shrunk_limits(monkeypatch) -> None:
    """pyarrow's default thrift string limit cut to SHRUNK_STRING_LIMIT, wherever eat-curate or pyarrow opens a file."""

    class ShrunkDefaults(pq.ParquetFile):
        def __init__(self, source, *args, thrift_string_size_limit=None, **kwargs):
            limit = thrift_string_size_limit or SHRUNK_STRING_LIMIT
            super().__init__(source, *args, thrift_string_size_limit=limit, **kwargs)

    real_read_table = pq.read_table

    def read_table(source, *args, thrift_string_size_limit=None, **kwargs):
        limit = thrift_string_size_limit or SHRUNK_STRING_LIMIT
        return real_read_table(source, *args, thrift_string_size_limit=limit, **kwargs)

    for module in (pq, pq.core):  # read_schema and read_metadata open a core.ParquetFile
        monkeypatch.setattr(module, "ParquetFile", ShrunkDefaults)
        monkeypatch.setattr(module, "read_table", read_table)


def old_result(out: Path, sources: int = 20) -> list[str]:
    """``out`` as an older eat-curate left it: 3 images, and every run it made, uncut, in its footer.

    ``OLD_HISTORY_BYTES`` of runs of ``sources`` sources each: 20 (a list never cut) makes over
    MAX_RUNS_BYTES of runs; 500 makes few runs, which keeps the read commands (they load every run
    into DuckDB) fast. Returns the run ids, oldest first; the last wrote the images.
    """
    write_run(out, [[success(i) for i in range(3)]])
    metadata = pq.read_schema(out).metadata
    (run,) = json.loads(metadata[RUNS_KEY])
    listed = {**run, "sources": [f"/photos/{number:05d}.jpg" for number in range(sources)]}
    first = datetime(2025, 1, 1, tzinfo=timezone.utc)
    old = [
        {**listed, "run_id": f"old-{n:05d}", "started_at": (first + timedelta(minutes=n)).isoformat()}
        for n in range(OLD_HISTORY_BYTES // len(json.dumps(listed)) + 1)
    ]
    runs = [*old, run]
    table = pq.read_table(out).replace_schema_metadata({**metadata, RUNS_KEY: json.dumps(runs).encode()})
    pq.write_table(table, out)
    return [one["run_id"] for one in runs]


def listed_runs(out: Path) -> list[str]:
    """The run ids `runs --out` lists, newest first."""
    return [run["run_id"] for run in runs_from_parquet(str(out))]


# --- a footer past pyarrow's limits ---------------------------------------------------------------


def test_the_shrunk_limits_refuse_an_old_result_as_pyarrows_defaults_refuse_a_real_one(tmp_path, shrunk_limits):
    out = tmp_path / "scores.parquet"
    old_result(out, sources=500)
    with pytest.raises(OSError, match="Couldn't deserialize thrift: TProtocolException: Exceeded size limit"):
        pq.read_schema(out)


def test_the_footer_length_is_read_from_the_file_tail(tmp_path):
    out = tmp_path / "scores.parquet"
    old_result(out, sources=500)
    assert footer_length(out) == pq.ParquetFile(out).metadata.serialized_size > OLD_HISTORY_BYTES


@pytest.mark.parametrize("command", ["rank", "albums", "runs", "db import"])
def test_every_read_command_reads_a_result_whose_footer_passes_pyarrows_limits(tmp_path, shrunk_limits, command):
    out = tmp_path / "scores.parquet"
    run_ids = old_result(out, sources=500)

    if command == "db import":
        result = eat_curate("db", "import", out, "--db", tmp_path / "photos.db")
        assert result.exit_code == 0 and "imported 3 of 3 rows" in result.output, result.output
        return
    result = eat_curate(command, out, "--json", *(["--limit", "2"] if command == "runs" else []))
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    if command == "rank":
        assert sorted(row["path"] for row in listed) == [f"/photos/{i}.jpg" for i in range(3)]
    elif command == "albums":
        assert sum(album["images"] for album in listed) == 3
    else:
        assert [run["run_id"] for run in listed] == run_ids[::-1][:2]


def test_readers_read_each_footer_once_not_once_a_query(tmp_path):
    """DuckDB takes most of a second to read the footer of an 80 MB history, and a read command queries often."""
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    with parquet_connection(str(out)) as connection:
        assert connection.exec_driver_sql("SELECT current_setting('parquet_metadata_cache')").scalar_one() is True


def test_score_resumes_into_such_a_result_keeps_every_row_and_writes_the_history_capped(tmp_path, shrunk_limits):
    out = tmp_path / "scores.parquet"
    run_ids = old_result(out)
    inputs = [item(i).version() for i in range(4)]
    assert ParquetLookup(str(out)).already_scored(inputs, MODEL) == {f"/photos/{i}.jpg" for i in range(3)}

    sink = ParquetSink(out)
    done = sink.already_scored(inputs, MODEL)
    score_run(sink, [[success(i, run="run-2") for i in range(4) if f"/photos/{i}.jpg" not in done]], "run-2")

    assert done == {f"/photos/{i}.jpg" for i in range(3)}
    assert sorted(row["path"] for row in rows_of(out)) == [f"/photos/{i}.jpg" for i in range(4)]
    kept = json.loads(pq.read_schema(out).metadata[RUNS_KEY])  # read under the shrunk default limit
    assert len(json.dumps(kept).encode()) <= MAX_RUNS_BYTES
    assert [run["run_id"] for run in kept[-3:]] == [run_ids[-2], run_ids[-1], "run-2"]  # the newest are kept
    assert run_ids[0] not in {run["run_id"] for run in kept}


def test_reading_an_old_result_lists_the_runs_the_next_merge_keeps(tmp_path, shrunk_limits):
    out = tmp_path / "scores.parquet"
    run_ids = old_result(out)
    before = listed_runs(out)

    write_run(out, [[success(3, run="run-2")]], run_id="run-2")

    after = listed_runs(out)
    assert before[0] == run_ids[-1] and len(before) < len(run_ids)
    assert after == ["run-2", *before[: len(after) - 1]]


def test_a_dataset_folders_old_history_reads_as_the_runs_the_next_merge_keeps(tmp_path):
    """A folder keeps its runs in ``_eat_curate.json``, which has no footer limit; an older eat-curate let it grow."""
    out = tmp_path / "scores"
    write_run(f"{out}/", [[success(i) for i in range(3)]])  # the trailing "/" asks for a folder
    record = json.loads((out / DATASET_HISTORY).read_text())
    (run,) = record["runs"]
    first = datetime(2025, 1, 1, tzinfo=timezone.utc)
    old = [
        {**run, "run_id": f"old-{n:05d}", "started_at": (first + timedelta(minutes=n)).isoformat()}
        for n in range(2 * MAX_RUNS_BYTES // len(json.dumps(run)))
    ]
    (out / DATASET_HISTORY).write_text(json.dumps({**record, "runs": [*old, run]}))
    before = listed_runs(out)

    write_run(f"{out}/", [[success(3, run="run-2")]], run_id="run-2")

    assert before[0] == run["run_id"] and len(before) < len(old)
    assert listed_runs(out) == ["run-2", *before[: len(listed_runs(out)) - 1]]
    assert len((out / DATASET_HISTORY).read_bytes()) < 2 * MAX_RUNS_BYTES


def test_a_cut_source_list_stays_as_it_is_on_later_merges(tmp_path):
    out = tmp_path / "scores.parquet"
    write_run(out, [[success(0)]])
    metadata = pq.read_schema(out).metadata
    (run,) = json.loads(metadata[RUNS_KEY])
    run["sources"] = [f"/photos/{number}.jpg" for number in range(30)]
    table = pq.read_table(out).replace_schema_metadata({**metadata, RUNS_KEY: json.dumps([run]).encode()})
    pq.write_table(table, out)

    for later in ("run-2", "run-3"):
        write_run(out, [[success(1, run=later)]], run_id=later)

    first = json.loads(pq.read_schema(out).metadata[RUNS_KEY])[0]
    assert first["sources"] == [f"/photos/{number}.jpg" for number in range(20)] + ["... and 10 more"]


# --- rows another tool repeated -------------------------------------------------------------------


def with_column(table: pa.Table, name: str, values: list) -> pa.Table:
    """``table`` with the column ``name`` holding ``values`` (its field, nullability included, kept)."""
    field = table.schema.field(name)
    return table.set_column(table.schema.get_field_index(name), field, pa.array(values, field.type))


def repeated_by_another_tool(out: Path) -> dict[str, float]:
    """``out`` (images 0-3) with rows of images 0-2 repeated; returns the mean each image's newest row holds.

    Image 0's copy is newer, image 1's as old (a tie: the first row in file order wins), image 2's older
    though written after. A folder gets the copies in a part of its own, named after the first.
    """
    (first,) = [out] if out.is_file() else out.glob("part-*.parquet")
    table = pq.read_table(first)
    at = table["scored_at"][0].as_py()
    table = with_column(table, "scored_at", [at] * table.num_rows)

    def copy(image: int, mean: float, moved: timedelta) -> pa.Table:
        row = table.filter(pc.equal(table["path"], f"/photos/{image}.jpg"))
        return with_column(with_column(row, "mean", [mean]), "scored_at", [at + moved])

    hour = timedelta(hours=1)
    copies = pa.concat_tables([copy(0, 9.0, hour), copy(1, 8.0, 0 * hour), copy(2, 7.0, -hour)])
    if out.is_file():
        pq.write_table(pa.concat_tables([table, copies]), out)
    else:
        pq.write_table(table, first)
        pq.write_table(copies, out / "part-tool-00000001.parquet")  # after first's name: part-run-1-...
    return {"/photos/0.jpg": 9.0, "/photos/1.jpg": 2.0, "/photos/2.jpg": 3.0, "/photos/3.jpg": 4.0}


def ranked_means(out: Path) -> dict[str, float]:
    result = eat_curate("rank", out, "--json")
    assert result.exit_code == 0, result.output
    return {row["path"]: row["mean"] for row in json.loads(result.stdout)}


LAYOUTS = pytest.mark.parametrize("layout", ["scores.parquet", "scores/"], ids=["file", "folder"])


@LAYOUTS
def test_readers_read_the_newest_of_repeated_rows_and_the_first_of_a_tie(tmp_path, layout):
    out = f"{tmp_path}/{layout}"  # "scores/": a dataset folder
    write_run(out, [[success(i, mean=1.0 + i) for i in range(4)]])
    newest = repeated_by_another_tool(Path(out))

    assert ranked_means(out) == newest


@LAYOUTS
def test_the_next_merge_writes_repeated_rows_once_keeping_the_row_readers_read(tmp_path, layout):
    out = f"{tmp_path}/{layout}"
    write_run(out, [[success(i, mean=1.0 + i) for i in range(4)]])
    newest = repeated_by_another_tool(Path(out))

    write_run(out, [[success(4, run="run-2", mean=5.0)]], run_id="run-2")

    rows = pq.read_table(out).to_pylist()
    assert sorted(row["path"] for row in rows) == [f"/photos/{i}.jpg" for i in range(5)]
    assert {row["path"]: row["mean"] for row in rows} == {**newest, "/photos/4.jpg": 5.0}
    assert ranked_means(out) == {**newest, "/photos/4.jpg": 5.0}
