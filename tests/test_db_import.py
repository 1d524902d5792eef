"""`eat-curate db import`: a Parquet result into SQLite or PostgreSQL, as if the run had written the database.

Each test imports the Parquet output of a real `score` run that also wrote
a database directly, and compares what the read commands print from both.
An import is idempotent, records the run and the model, never replaces a
newer record with an older one, and refuses bad input before touching the
database.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from eat_curate.library.connection import read_connection
from eat_curate.sinks.sql import schema
from read_library import invoke, temporary_pg_database
from test_parquet_read import LAYOUTS, as_json, assert_same_rows, score_both

# What a team reads from the database: every query of the read side, and the run history.
READS = [
    ["albums"],
    ["rank", "--by", "std"],
    ["filter"],
    ["filter", "--errors"],
    ["filter", "--time", "scored", "--since", "2020-01-01"],
    ["dupes", "--window", "2"],
    ["runs"],
]


@pytest.fixture(scope="module")
def scored(library, micro_model_path, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """{layout: (database, Parquet result)}, each pair written by one `score` run."""
    pairs = {}
    for layout, name in LAYOUTS.items():
        folder = tmp_path_factory.mktemp(f"import-{layout}")
        pairs[layout] = (str(folder / "direct.db"), f"{folder}/{name}")
        score_both(library.root, micro_model_path, pairs[layout][1], pairs[layout][0])
    return pairs


def import_json(source: str | Path, db: str) -> dict:
    return json.loads(invoke("db", "import", source, "--db", db, "--json").stdout)


def assert_reads_alike(imported: str, direct: str) -> None:
    for command in READS:
        assert_same_rows(as_json(*command, "--db", imported), as_json(*command, "--db", direct), " ".join(command))


def table_rows(db: str) -> dict[str, list[tuple]]:
    """Every row of the score tables and the models, without the columns that say when a row was written.

    (Runs are compared through `runs --json`: their JSON columns may list the same keys in another order.)
    """
    with read_connection(db) as connection:
        written_at = ("updated_at", "registered_at")
        return {
            table.name: sorted(
                tuple(row)
                for row in connection.execute(sa.select(*(c for c in table.columns if c.name not in written_at)))
            )
            for table in (schema.images, schema.scores, schema.errors, schema.models)
        }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_an_import_into_sqlite_reads_as_the_database_the_run_wrote(scored, layout, tmp_path):
    direct, parquet = scored[layout]
    imported = str(tmp_path / "imported.db")
    summary = import_json(parquet, imported)
    assert (summary["rows"], summary["imported"], summary["skipped"]) == (19, 19, 0)
    assert summary["added"] == {"images": 19, "scores": 18, "errors": 1, "models": 1, "runs": 1}
    assert_reads_alike(imported, direct)
    assert table_rows(imported) == table_rows(direct)  # every column, not only what the commands print


@pytest.mark.postgres
def test_an_import_into_postgresql_reads_as_the_database_the_run_wrote(scored):
    direct, parquet = scored["folder"]
    with temporary_pg_database() as pg_url:
        summary = import_json(parquet, pg_url)
        assert (summary["imported"], summary["added"]["scores"]) == (19, 18)
        assert_reads_alike(pg_url, direct)
        assert import_json(parquet, pg_url)["added"] == dict.fromkeys(summary["added"], 0)


def test_a_second_import_adds_nothing(scored, tmp_path):
    _, parquet = scored["file"]
    imported = str(tmp_path / "imported.db")
    import_json(parquet, imported)
    before = table_rows(imported)
    again = import_json(parquet, imported)
    assert (again["imported"], again["skipped"]) == (0, 19)
    assert again["added"] == {"images": 0, "scores": 0, "errors": 0, "models": 0, "runs": 0}
    assert table_rows(imported) == before


def test_an_import_records_the_run_and_the_model_of_the_history(scored, tmp_path):
    direct, parquet = scored["folder"]
    imported = str(tmp_path / "imported.db")
    import_json(parquet, imported)
    runs = as_json("runs", "--db", imported)
    assert runs == as_json("runs", "--out", parquet)
    assert_same_rows(runs, as_json("runs", "--db", direct))
    assert runs[0]["status"] == "completed" and runs[0]["ok"] == 18 and runs[0]["failed"] == 1
    assert {row["run_id"] for row in as_json("filter", "--db", imported)} == {runs[0]["run_id"]}
    with read_connection(imported) as connection:
        card = json.loads(connection.execute(sa.select(schema.models.c.card)).scalar_one())
    assert card["name"] == "micro" and runs[0]["model_id"].endswith(card["sha256"][:12])


def test_an_import_into_a_database_that_already_has_the_run_changes_nothing(scored):
    direct, parquet = scored["file"]
    before = table_rows(direct)
    summary = import_json(parquet, direct)
    assert summary["imported"] == 0 and summary["added"] == dict.fromkeys(summary["added"], 0)
    assert table_rows(direct) == before


def shifted(parquet: str, out: Path, by: timedelta, mean: float) -> Path:
    """A copy of the result whose records were all made ``by`` later (earlier if negative), each scoring ``mean``."""
    table = pq.read_table(parquet)

    def replaced(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
        index = table.schema.get_field_index(name)
        return table.set_column(index, table.schema.field(index), values)  # the field keeps its NOT NULL

    table = replaced(table, "scored_at", pc.add(table.column("scored_at"), pa.scalar(by, pa.duration("us"))))
    succeeded = pc.is_null(table.column("error_kind"))
    table = replaced(table, "mean", pc.if_else(succeeded, pa.scalar(mean, pa.float32()), pa.scalar(None, pa.float32())))
    pq.write_table(table, out)
    return out


def test_the_newest_record_of_an_image_wins(scored, tmp_path):
    _, parquet = scored["file"]
    imported = str(tmp_path / "imported.db")
    import_json(parquet, imported)
    current = as_json("filter", "--db", imported)

    older = import_json(shifted(parquet, tmp_path / "older.parquet", timedelta(days=-1), 1.5), imported)
    assert (older["imported"], older["skipped"]) == (0, 19)
    assert as_json("filter", "--db", imported) == current  # an old result brings nothing back

    newer = import_json(shifted(parquet, tmp_path / "newer.parquet", timedelta(days=1), 9.5), imported)
    assert (newer["imported"], newer["added"]["scores"]) == (19, 0)
    rescored = as_json("filter", "--db", imported)
    assert len(rescored) == len(current) and {row["mean"] for row in rescored} == {9.5}


def test_the_summary_is_one_line_without_json(scored, tmp_path):
    _, parquet = scored["folder"]
    result = invoke("db", "import", parquet, "--db", tmp_path / "imported.db")
    assert result.stdout.count("\n") == 1
    assert "imported 19 of 19 rows (0 already there" in result.stdout and "scores +18" in result.stdout


def test_bad_sources_are_refused_in_one_line_before_the_database_exists(tmp_path):
    not_parquet = tmp_path / "scores.csv"
    not_parquet.write_text("path,mean\n")
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"path": ["/photos/a.jpg"]}), manifest)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        tmp_path / "missing.parquet": "no such file or folder",
        not_parquet: "cannot be read as Parquet",
        manifest: "is not a result of eat-curate score --out",
        empty: "no Parquet files in the folder",
    }
    for source, reason in cases.items():
        result = invoke("db", "import", source, "--db", tmp_path / "team.db", expect_ok=False)
        assert result.exit_code == 2 and reason in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "team.db").exists()
