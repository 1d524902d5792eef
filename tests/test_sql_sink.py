"""SqlSink on a real SQLite file and a real PostgreSQL database: the tables, crashes, concurrency, the schema.

Each test that takes ``db`` runs twice: once on a fresh SQLite file, once on
a fresh PostgreSQL database (dropped afterwards). What every sink owes
(idempotent writes, the latest record winning, already_scored) is in
test_sink_contract.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from eat_curate.runs import RunSummary
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_or_upgrade, database_url
from eat_curate.errors import StoreError
from eat_curate.sinks.outputs import open_sinks
from eat_curate.sinks.sql.sink import SqlSink
from sink_records import CARD, MODEL, MTIME, failure, item, query, run_info, score_run, start_python, success


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "photos.db")
    return request.getfixturevalue("pg_url")


# --- what a write leaves in the tables --------------------------------------------------------------


def test_a_write_fills_images_and_scores_with_the_album_copied_in(db):
    score_run(SqlSink(db), [[success(1, album="trips"), success(2, album="family")]])

    scores = query(db, "SELECT image_id, album, p1, p10, mean, std, scored_bytes FROM scores ORDER BY image_id")
    assert [(r["image_id"], r["album"], r["scored_bytes"]) for r in scores] == [
        ("img-1", "trips", 1001),
        ("img-2", "family", 1002),
    ]
    assert scores[0]["p1"] == pytest.approx(0.05) and scores[0]["p10"] == pytest.approx(0.15)
    assert (scores[0]["mean"], scores[0]["std"]) == (5.5, 1.25)
    images = query(db, "SELECT path, bytes, mtime, width, format, extra FROM images WHERE image_id = 'img-1'")
    assert images == [
        {
            "path": "/photos/1.jpg",
            "bytes": 1001,
            "mtime": MTIME,
            "width": 640,
            "format": "JPEG",
            "extra": '{"camera": "x100"}',
        }
    ]


def test_one_sink_moving_between_new_and_existing_rows_leaves_each_image_s_latest_outcome(db):
    # PostgreSQL inserts new rows with a plain INSERT and falls back to the upsert when a key exists,
    # then upserts for a while: these batches take each of those ways, with scores and errors
    # superseding each other on the way.
    sink = SqlSink(db)
    try:
        sink.write([success(i) for i in range(10)] + [failure(10)])  # all new
        sink.write([success(i, run="run-2", mean=7.0) for i in range(5, 15)])  # 5..10 exist; 10 was an error
        sink.write([success(i) for i in range(20, 25)])  # new, right after a conflict
        sink.write([failure(20), success(30), failure(31)])  # an error replaces a score; new error rows
        sink.write([success(31, run="run-3"), failure(20, run="run-3")])  # a score replaces an error; error again
        sink.write([success(i, run="run-4") for i in range(40, 45)])  # new again
    finally:
        sink.close()

    scores = {row["image_id"]: (row["run_id"], row["mean"]) for row in query(db, "SELECT * FROM scores")}
    expected = {f"img-{i}": ("run-1", 5.5) for i in [*range(5), *range(21, 25), 30]}
    expected |= {f"img-{i}": ("run-2", 7.0) for i in range(5, 15)}
    expected |= {"img-31": ("run-3", 5.5)} | {f"img-{i}": ("run-4", 5.5) for i in range(40, 45)}
    assert scores == expected
    assert query(db, "SELECT image_id, run_id, kind FROM errors") == [
        {"image_id": "img-20", "run_id": "run-3", "kind": "truncated"}
    ]
    images = query(db, "SELECT image_id, bytes FROM images")
    assert sorted(row["image_id"] for row in images) == sorted([*expected, "img-20"])
    assert all(row["bytes"] == 1000 + int(row["image_id"][4:]) for row in images)


def test_a_success_without_a_distribution_is_refused_and_its_batch_writes_nothing(db):
    score_run(SqlSink(db), [[success(1)]])
    broken = replace(success(3), probabilities=None)
    sink = SqlSink(db)
    try:
        with pytest.raises(ValueError, match="img-3|/photos/3.jpg"):
            sink.write([success(1, run="run-2", mean=9.0), success(2), broken])
    finally:
        sink.close()
    assert query(db, "SELECT image_id, run_id FROM scores") == [{"image_id": "img-1", "run_id": "run-1"}]
    assert query(db, "SELECT image_id FROM images") == [{"image_id": "img-1"}]

@pytest.mark.postgres
def test_a_row_another_writer_commits_meanwhile_is_updated_not_a_conflict(pg_url):
    other = sa.create_engine(database_url(pg_url))
    create_or_upgrade(other)
    failed = []

    def write(sink: SqlSink) -> None:
        try:
            sink.write([success(1, run="mine"), success(2, run="mine")])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failed.append(error)

    try:
        with other.connect() as connection:
            transaction = connection.begin()
            connection.execute(sa.text(
                "INSERT INTO images (image_id, path, updated_at) VALUES ('img-1', '/elsewhere/1.jpg', now())"
            ))
            sink = SqlSink(pg_url)
            writer = threading.Thread(target=write, args=(sink,))
            writer.start()
            writer.join(timeout=1)
            assert writer.is_alive()  # waits on the other writer's uncommitted img-1
            transaction.commit()
        writer.join(timeout=30)
        assert not writer.is_alive() and not failed, failed
        sink.close()
    finally:
        other.dispose()

    assert query(pg_url, "SELECT image_id, path FROM images ORDER BY image_id") == [
        {"image_id": "img-1", "path": "/photos/1.jpg"},
        {"image_id": "img-2", "path": "/photos/2.jpg"},
    ]
    assert [row["image_id"] for row in query(pg_url, "SELECT image_id FROM scores ORDER BY image_id")] == [
        "img-1",
        "img-2",
    ]


# --- runs and models ------------------------------------------------------------------------------


def test_runs_are_recorded_from_start_to_end_and_the_model_once(db):
    sink = SqlSink(db)
    sink.register_model(CARD)
    run = run_info()
    sink.begin_run(run)
    assert query(db, "SELECT status, ok, ended_at FROM runs") == [{"status": "running", "ok": 0, "ended_at": None}]
    sink.write([success(1), failure(2)])
    summary = RunSummary(ok=1, failed=1, skipped=3, seconds=2.0, outputs=["photos.db"])
    summary.failed_by_kind["truncated"] += 1
    sink.end_run(run, summary, "completed")
    sink.close()

    second = SqlSink(db)
    second.register_model(CARD)
    second.begin_run(run_info("run-2"))
    second.close()

    (row,) = query(db, "SELECT * FROM runs WHERE run_id = 'run-1'")
    assert (row["status"], row["ok"], row["failed"], row["skipped"], row["images_per_s"]) == ("completed", 1, 1, 3, 1.0)
    assert json.loads(row["failed_by_kind"]) == {"truncated": 1}
    assert json.loads(row["sources"]) == ["/photos"] and json.loads(row["options"]) == {"batch_size": 16}
    assert json.loads(row["outputs"]) == ["photos.db"] and row["ended_at"] is not None
    models = query(db, "SELECT model_id, name, preset, trained, card FROM models")
    assert [(m["model_id"], m["name"], m["preset"], bool(m["trained"])) for m in models] == [
        (MODEL, "micro", "micro", False)
    ]
    assert json.loads(models[0]["card"]) == CARD


def test_a_run_whose_process_died_is_marked_interrupted_by_the_next_run(db):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    crashed = replace(run_info("crashed"), pid=int(gone.stdout))  # a process that has exited: as after kill -9
    live = replace(run_info("live"), started_at=crashed.started_at, pid=os.getpid())
    for run in (crashed, live):
        sink = SqlSink(db)
        sink.begin_run(run)
        sink._open_run = None  # leave it "running", as a killed process would
        sink.close()

    SqlSink(db).begin_run(run_info("next"))
    statuses = {row["run_id"]: row["status"] for row in query(db, "SELECT run_id, status FROM runs")}
    assert statuses == {"crashed": "interrupted", "live": "running", "next": "running"}


# --- crashes and concurrency ------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from eat_curate.sinks.sql.sink import SqlSink
    from sink_records import success

    db, first, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sink = SqlSink(db)
    print("ready", flush=True)
    for b in range(batches):
        start = first + b * rows
        sink.write([success(i, run="writer") for i in range(start, start + rows)])
        print(b, flush=True)  # acknowledged: write() has returned
    sink.close()
    """
)


def start_writer(db: str, first: int, batches: int, rows: int) -> subprocess.Popen:
    return start_python(WRITER, db, str(first), str(batches), str(rows), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_loses_no_acknowledged_batch_and_the_rerun_fills_in_without_duplicates(db):
    batches, rows = 60, 100
    writer = start_writer(db, 0, batches, rows)
    acknowledged = 0
    for line in writer.stdout:
        if line.strip().isdigit():
            acknowledged = int(line) + 1
        if acknowledged == 15:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.communicate()
    assert writer.returncode == -signal.SIGKILL

    ids = {row["image_id"] for row in query(db, "SELECT image_id FROM scores")}
    assert {f"img-{i}" for i in range(acknowledged * rows)} <= ids

    sink = SqlSink(db)
    items = [item(i) for i in range(batches * rows)]
    done = set().union(*(sink.already_scored([i.version() for i in items[k : k + 1000]], MODEL) for k in range(0, len(items), 1000)))
    sink.write([success(i, run="resumed") for i in range(batches * rows) if f"/photos/{i}.jpg" not in done])
    sink.close()
    assert query(db, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS ids FROM scores") == [
        {"n": batches * rows, "ids": batches * rows}
    ]


def test_two_processes_writing_one_sqlite_file_at_once_both_finish(tmp_path):
    db = str(tmp_path / "shared.db")  # not created yet: both race to create the tables too
    writers = [start_writer(db, first, 25, 200) for first in (0, 2500)]  # images 2500..4999 written by both
    results = [writer.communicate(timeout=120) for writer in writers]

    for writer, (_, stderr) in zip(writers, results):
        assert writer.returncode == 0, stderr
    assert query(db, "SELECT COUNT(*) AS n FROM scores") == [{"n": 7500}]
    assert query(db, "SELECT COUNT(*) AS n FROM images") == [{"n": 7500}]


@pytest.mark.postgres
def test_two_processes_writing_the_same_images_into_postgresql_at_once_both_finish(pg_url):
    # Both race to create the tables, then write images 1000..4999 at about the same time: new rows
    # go in with a plain INSERT, and a key the other writer commits first makes the batch an upsert.
    writers = [start_writer(pg_url, first, 25, 200) for first in (0, 1000)]
    results = [writer.communicate(timeout=120) for writer in writers]

    for writer, (_, stderr) in zip(writers, results):
        assert writer.returncode == 0, stderr
    assert query(pg_url, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS ids FROM scores") == [{"n": 6000, "ids": 6000}]
    assert query(pg_url, "SELECT COUNT(*) AS n FROM images") == [{"n": 6000}]


# --- the schema version -------------------------------------------------------------------------------


def test_a_database_from_a_newer_eat_curate_is_refused_untouched(db):
    score_run(SqlSink(db), [[success(1)]])
    engine = sa.create_engine(database_url(db))
    with engine.begin() as connection:
        connection.execute(schema.eat_meta.update().values(value="99"))
    engine.dispose()

    with pytest.raises(StoreError, match="schema version 99, newer than this eat-curate understands"):
        open_sinks(out=None, db=db)
    with pytest.raises(StoreError, match="schema version 99"):
        SqlSink(db).write([success(2)])
    assert query(db, "SELECT image_id FROM scores") == [{"image_id": "img-1"}]


def test_an_older_database_is_upgraded_by_its_migrations_in_order(tmp_path):
    engine = sa.create_engine(database_url(str(tmp_path / "photos.db")))
    assert create_or_upgrade(engine) == schema.SCHEMA_VERSION

    def add_rating(connection: sa.Connection) -> None:  # what a real v1 -> v2 step looks like
        connection.execute(sa.text("ALTER TABLE scores ADD COLUMN rating INTEGER"))

    version = create_or_upgrade(
        engine, migrations={schema.SCHEMA_VERSION: add_rating}, target=schema.SCHEMA_VERSION + 1
    )
    with engine.connect() as connection:
        columns = {column["name"] for column in sa.inspect(connection).get_columns("scores")}
        stored = connection.execute(sa.text("SELECT value FROM eat_meta WHERE key = 'schema_version'")).scalar_one()
    engine.dispose()
    assert version == schema.SCHEMA_VERSION + 1 and stored == str(version) and "rating" in columns


def test_a_missing_migration_leaves_the_database_as_it_was(tmp_path):
    engine = sa.create_engine(database_url(str(tmp_path / "photos.db")))
    create_or_upgrade(engine)
    current = schema.SCHEMA_VERSION
    with pytest.raises(StoreError, match=f"no migration from schema version {current} to {current + 1}"):
        create_or_upgrade(engine, migrations={}, target=current + 1)
    engine.dispose()
    assert query(str(tmp_path / "photos.db"), "SELECT value FROM eat_meta") == [{"value": str(current)}]


# Indexes of older versions that later ones dropped: (version that dropped it, name, definition).
_DROPPED_INDEXES = [
    (2, "ix_images_album", "images (album)"),
    (2, "ix_scores_model_album_mean", "scores (model_id, album, mean)"),
    (3, "ix_images_content_hash", "images (content_hash)"),
    (3, "ix_scores_model_mean", "scores (model_id, mean)"),
    (6, "ix_images_path", "images (path)"),
]


def make_old_database(db: str, version: int) -> None:
    """The tables as schema ``version`` (1 to 5) created them.

    1 had no runs.pid, none before 4 runs.heartbeat_at, none before 5 images.shot (nor its index); more indexes.
    """
    engine = sa.create_engine(database_url(db))
    with engine.begin() as connection:
        schema.metadata.create_all(connection)
        if version < 5:
            connection.execute(sa.text("DROP INDEX ix_images_shot"))
            connection.execute(sa.text("ALTER TABLE images DROP COLUMN shot"))
        if version < 2:
            connection.execute(sa.text("ALTER TABLE runs DROP COLUMN pid"))
        if version < 4:
            connection.execute(sa.text("ALTER TABLE runs DROP COLUMN heartbeat_at"))
        for dropped_in, name, definition in _DROPPED_INDEXES:
            if dropped_in > version:
                connection.execute(sa.text(f"CREATE INDEX {name} ON {definition}"))
        connection.execute(schema.eat_meta.insert().values(key="schema_version", value=str(version)))
    engine.dispose()


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_an_older_database_is_upgraded_on_first_write_and_records_runs_again(db, version):
    make_old_database(db, version)

    score_run(SqlSink(db), [[success(1)]])

    assert query(db, "SELECT value FROM eat_meta WHERE key = 'schema_version'") == [{"value": str(schema.SCHEMA_VERSION)}]
    assert [row["status"] for row in query(db, "SELECT status, pid FROM runs")] == ["completed"]
    assert query(db, "SELECT pid FROM runs")[0]["pid"] == os.getpid()
    assert query(db, "SELECT heartbeat_at FROM runs")[0]["heartbeat_at"] is not None
    engine = sa.create_engine(database_url(db))
    with engine.connect() as connection:
        indexes = {index["name"] for table in ("images", "scores") for index in sa.inspect(connection).get_indexes(table)}
    engine.dispose()
    assert not indexes & {name for _, name, _ in _DROPPED_INDEXES}
    assert indexes == {"ix_images_shot", "ix_scores_model_album_rank"}


def test_tables_with_our_names_but_not_ours_are_refused(tmp_path):
    db = str(tmp_path / "other-app.db")
    engine = sa.create_engine(database_url(db))
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE images (id INTEGER PRIMARY KEY, blob BLOB)"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"already has tables eat-curate did not create \(images"):
        open_sinks(out=None, db=db)


# --- bad --db: one clear error, nothing created -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user@host/photos", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://user@host/photos", "driver 'psycopg2' is not supported"),
        ("sqlite://", "in-memory SQLite database would lose every score"),
        ("postgresql+psycopg://user@host:port/photos", "not a valid database URL"),
    ],
)
def test_a_wrong_database_url_is_one_clear_error(url, message):
    with pytest.raises(StoreError, match=message):
        open_sinks(out=None, db=url)


def test_an_unreachable_postgresql_is_reported_before_anything_is_written(tmp_path):
    out = tmp_path / "scores.parquet"
    with pytest.raises(StoreError, match=r"cannot connect to postgresql\+psycopg://postgres@127.0.0.1:1/photos"):
        open_sinks(out=str(out), db="postgresql+psycopg://postgres@127.0.0.1:1/photos")
    assert os.listdir(tmp_path) == []


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist_gets_no_tables_anywhere(pg_url):
    missing = pg_url.rsplit("/", 1)[0] + "/eatc_no_such_database"
    with pytest.raises(StoreError, match='database "eatc_no_such_database" does not exist'):
        open_sinks(out=None, db=missing)
    assert query(pg_url, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public'") == [
        {"n": 0}
    ]


def test_an_sqlite_file_in_a_missing_folder_or_a_non_database_file_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_sinks(out=None, db=str(tmp_path / "nowhere" / "photos.db"))
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database")
    with pytest.raises(StoreError, match="is not an SQLite database"):
        open_sinks(out=None, db=str(notes))
    assert sorted(os.listdir(tmp_path)) == ["notes.db"]
    assert notes.read_text() == "my notes, not a database"


def test_a_plain_path_means_an_sqlite_file_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    score_run(SqlSink("photos.db"), [[success(1)]])
    assert Path(tmp_path / "photos.db").is_file()
    assert str(database_url("photos.db")) == f"sqlite:///{tmp_path}/photos.db"
