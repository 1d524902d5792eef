"""`eat-curate db init`, `db ddl` and `runs`, driven through click's CliRunner against real databases."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import database_url
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.sql.sink import SqlSink

REPO = Path(__file__).resolve().parents[1]
MODEL = "micro@000000000000"
START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def eat_curate(*args, ok: bool = True):
    result = CliRunner().invoke(cli, [str(arg) for arg in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def record_runs(sink, count: int = 3) -> None:
    """``count`` finished runs, one hour apart, the i-th scoring i + 1 images in 10 s."""
    for i in range(count):
        run = RunInfo(
            run_id=f"run-{i}",
            model_id=MODEL,
            model_name="micro",
            model_sha256="0" * 64,
            sources=[f"/photos/{2020 + i}"],
            started_at=START + timedelta(hours=i),
        )
        sink.begin_run(run)
        sink.write(
            [
                ScoreRecord(
                    image_id=f"img-{i}-{k}",
                    path=f"/photos/{i}/{k}.jpg",
                    album=None,
                    model_id=MODEL,
                    run_id=run.run_id,
                    probabilities=[0.1] * 10,
                    mean=5.5,
                    std=1.0,
                )
                for k in range(i + 1)
            ]
        )
        sink.end_run(
            run,
            RunSummary(ok=i + 1, skipped=2, seconds=10.0, ended_at=run.started_at + timedelta(seconds=10)),
            "completed",
        )
    sink.close()


# --- db init / db ddl -----------------------------------------------------------------------------------


def test_db_init_creates_the_tables_then_finds_them_up_to_date(tmp_path):
    db = tmp_path / "photos.db"
    first = eat_curate("db", "init", "--db", db)
    assert first.output.splitlines()[0] == f"{db}: schema version {schema.SCHEMA_VERSION} (created)"
    for table in ("images", "scores", "errors", "models", "runs", "eat_meta"):
        assert table in first.output

    again = eat_curate("db", "init", "--db", f"sqlite:///{db}", "--json")
    status = json.loads(again.output)
    assert status["version"] == status["previous_version"] == schema.SCHEMA_VERSION
    assert status["rows"]["eat_meta"] == 1 and status["rows"]["scores"] == 0


@pytest.mark.postgres
def test_db_init_on_postgresql(pg_url):
    result = eat_curate("db", "init", "--db", pg_url)
    assert f"schema version {schema.SCHEMA_VERSION} (created)" in result.output
    engine = sa.create_engine(database_url(pg_url))
    with engine.connect() as connection:
        assert set(schema.metadata.tables) <= set(sa.inspect(connection).get_table_names())
    engine.dispose()


def test_db_init_refuses_a_newer_database_in_one_line(tmp_path):
    db = tmp_path / "photos.db"
    eat_curate("db", "init", "--db", db)
    engine = sa.create_engine(database_url(str(db)))
    with engine.begin() as connection:
        connection.execute(schema.eat_meta.update().values(value=str(schema.SCHEMA_VERSION + 1)))
    engine.dispose()

    result = eat_curate("db", "init", "--db", db, ok=False)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "newer than this eat-curate understands" in result.output


def test_db_init_against_an_unreachable_server_is_one_line_and_the_infrastructure_code():
    result = eat_curate("db", "init", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/photos", ok=False)
    assert result.exit_code == 4 and len(result.output.strip().splitlines()) == 1  # it may pass: try again later
    assert "cannot connect to postgresql+psycopg://postgres@127.0.0.1:1/photos" in result.output


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_committed_ddl_is_what_db_ddl_generates_from_the_schema(dialect):
    committed = (REPO / "sql" / f"schema_{dialect}.sql").read_text()
    generated = eat_curate("db", "ddl", "--dialect", dialect).output
    assert generated == committed, (
        f"sql/schema_{dialect}.sql is stale: run `eat-curate db ddl --dialect {dialect} > sql/schema_{dialect}.sql`"
    )


def test_the_generated_sqlite_ddl_builds_the_same_tables_as_db_init(tmp_path):
    by_ddl, by_init = tmp_path / "ddl.db", tmp_path / "init.db"
    with closing(sqlite3.connect(by_ddl)) as connection:
        connection.executescript(eat_curate("db", "ddl").output)
    eat_curate("db", "init", "--db", by_init)

    def tables(path: Path) -> dict:
        engine = sa.create_engine(database_url(str(path)))
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            described = {
                name: (
                    [c["name"] for c in inspector.get_columns(name)],
                    sorted(i["name"] for i in inspector.get_indexes(name)),
                )
                for name in inspector.get_table_names()
            }
            version = connection.execute(sa.text("SELECT value FROM eat_meta")).scalar_one()
        engine.dispose()
        return {"tables": described, "version": version}

    assert tables(by_ddl) == tables(by_init)


# --- runs ---------------------------------------------------------------------------------------------------


def test_runs_lists_a_database_s_runs_newest_first(tmp_path):
    db = tmp_path / "photos.db"
    record_runs(SqlSink(str(db)))

    lines = eat_curate("runs", "--db", db).output.splitlines()
    assert lines[0].split() == [
        "run_id",
        "status",
        "model",
        "started",
        "(UTC)",
        "duration",
        "ok",
        "failed",
        "skipped",
        "img/s",
        "sources",
    ]
    assert [line.split()[0] for line in lines[2:]] == ["run-2", "run-1", "run-0"]
    assert lines[2].split() == [
        "run-2",
        "completed",
        MODEL,
        "2026-03-01",
        "10:00:00",
        "10s",
        "3",
        "0",
        "2",
        "0.300",
        "/photos/2022",
    ]


@pytest.mark.parametrize("column, stored, listed", [
    ("sources", "not json", "not json"),  # not JSON, or JSON of another kind: the text as stored
    ("sources", '{"a": 1}', '{"a": 1}'),
    ("sources", "[1, null]", [1, None]),  # a list still, of odd items
    ("options", "[1, 2]", "[1, 2]"),
    ("failed_by_kind", "[3]", "[3]"),
    ("outputs", "{", "{"),
])
def test_runs_lists_a_record_whose_json_was_edited_by_hand_as_it_is_stored(tmp_path, column, stored, listed):
    db = tmp_path / "photos.db"
    record_runs(SqlSink(str(db)))
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(f"UPDATE runs SET {column} = ? WHERE run_id = 'run-1'", (stored,))

    runs = {run["run_id"]: run for run in json.loads(eat_curate("runs", "--db", db, "--json").output)}
    table = eat_curate("runs", "--db", db).output.splitlines()

    assert runs["run-1"][column] == listed
    assert runs["run-2"]["sources"] == ["/photos/2022"]  # the other records as they were
    assert [line.split()[0] for line in table[2:]] == ["run-2", "run-1", "run-0"]


@pytest.mark.postgres
def test_runs_json_and_limit_on_postgresql(pg_url):
    record_runs(SqlSink(pg_url))
    runs = json.loads(eat_curate("runs", "--db", pg_url, "--limit", "2", "--json").output)
    assert [run["run_id"] for run in runs] == ["run-2", "run-1"]
    assert runs[0]["started_at"] == "2026-03-01T10:00:00+00:00"
    assert (runs[0]["ok"], runs[0]["skipped"], runs[0]["sources"]) == (3, 2, ["/photos/2022"])


@pytest.mark.parametrize("out", ["scores.parquet", "scores/"])
def test_runs_reads_the_history_kept_with_parquet_output(tmp_path, out):
    target = f"{tmp_path}/{out}"
    record_runs(ParquetSink(target))
    runs = json.loads(eat_curate("runs", "--out", target, "--json").output)
    assert [(run["run_id"], run["status"], run["ok"]) for run in runs] == [
        ("run-2", "completed", 3),
        ("run-1", "completed", 2),
        ("run-0", "completed", 1),
    ]
    assert "run-0" in eat_curate("runs", "--out", target).output


def test_runs_needs_exactly_one_of_the_scores_or_out(tmp_path):
    neither = eat_curate("runs", ok=False)
    both = eat_curate("runs", "--db", tmp_path / "a.db", "--out", tmp_path / "a.parquet", ok=False)
    also_both = eat_curate("runs", tmp_path / "a.db", "--out", tmp_path / "a.parquet", ok=False)
    for result in (neither, both, also_both):
        assert result.exit_code == 2 and "say whose runs to list" in result.output and "one of them" in result.output


def test_runs_on_a_missing_database_says_so_and_creates_nothing(tmp_path):
    result = eat_curate("runs", "--db", tmp_path / "typo.db", ok=False)
    assert result.exit_code == 2 and "typo.db (no such file)" in result.output
    assert list(tmp_path.iterdir()) == []


def test_runs_on_a_missing_parquet_output_says_so(tmp_path):
    result = eat_curate("runs", "--out", tmp_path / "typo.parquet", ok=False)
    assert result.exit_code == 2 and "no eat-curate Parquet output there" in result.output
    assert list(tmp_path.iterdir()) == []


def test_runs_on_an_empty_database_says_no_runs(tmp_path):
    db = tmp_path / "photos.db"
    eat_curate("db", "init", "--db", db)
    assert eat_curate("runs", "--db", db).output == "no runs recorded yet\n"


@pytest.mark.parametrize("command", [["db"], ["db", "init"], ["db", "ddl"], ["runs"]])
def test_every_command_explains_itself(command):
    result = eat_curate(*command, "--help")
    assert "Usage: " in result.output and len(result.output.splitlines()) > 5
