"""A database that restarts, fails over or stays locked for a while is waited for; one gone for good is one line.

The retry loop is shown with a clock of its own (no sleeping); which errors
count as transient is shown on errors real servers raise; and `score` is
run against a PostgreSQL cluster of the test's own (tests/pg_cluster.py)
that is restarted and stopped under it, and against an SQLite file another
connection holds locked.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from conftest import make_photo
from eat_curate.exit_codes import INFRASTRUCTURE, REFUSED
from eat_curate.sinks.faults import InfrastructureFailure
from eat_curate.sinks.retry import Retrier, RetryLimitReached, RetryPolicy
from eat_curate.sinks.sql.db_faults import is_storage_fault, is_transient, reason
from eat_curate.sinks.sql.database import database_url, init_database
from pg_cluster import own_cluster

# --- the retry loop, on a clock of its own ------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with ``error`` ``failures`` times, then returns "done"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


class Passing(Exception):
    """Stands for a transient database error."""


def retrier(limit_s: float, clock: FakeTime, heard: list | None = None) -> Retrier:
    return Retrier(
        RetryPolicy(limit_s=limit_s, first_delay_s=0.5, max_delay_s=8),
        "photos.db",
        transient=lambda error: isinstance(error, Passing),
        reason=str,
        on_wait=heard.append if heard is not None else None,
        sleep=clock.sleep,
        clock=lambda: clock.now,
        rng=random.Random(0),
    )


def test_a_transient_failure_is_retried_with_doubling_jittered_waits_until_it_passes():
    clock, heard = FakeTime(), []
    operation = Flaky(6, Passing("database is locked"))

    assert retrier(300, clock, heard).call(operation) == "done"

    assert operation.calls == 7
    steps = [0.5, 1, 2, 4, 8, 8]  # doubling from 0.5 s, capped at 8 s
    assert all(step / 2 <= slept <= step for slept, step in zip(clock.sleeps, steps, strict=True))
    assert len(set(clock.sleeps)) == 6  # jittered: two clients cut off together do not come back together
    assert heard[0].startswith("photos.db: database is locked; retrying in 0.") and heard[0].endswith("(0 s of 300 s)")
    assert heard[-1] is None  # the wait is over: the progress bar goes back to scoring


def test_the_waits_stop_at_the_limit_and_the_error_says_so_in_one_line():
    clock = FakeTime()
    operation = Flaky(1000, Passing("cannot connect (Connection refused)"))

    with pytest.raises(RetryLimitReached) as raised:
        retrier(30, clock).call(operation)

    assert clock.now == pytest.approx(30)  # the last try is at the limit, not past it
    assert isinstance(raised.value, InfrastructureFailure) and raised.value.exit_code == INFRASTRUCTURE.code
    message = str(raised.value)
    assert "\n" not in message and "Connection refused" in message and "after 30 s of retries" in message


def test_once_the_limit_was_reached_later_operations_are_tried_once_without_waiting():
    clock = FakeTime()
    retry = retrier(10, clock)
    with pytest.raises(RetryLimitReached):
        retry.call(Flaky(1000, Passing("gone")))
    waited = clock.now

    # Recording the run's end: one try, no second wait of 10 s.
    with pytest.raises(RetryLimitReached, match="reached earlier in this run"):
        retry.call(Flaky(1, Passing("gone")))
    assert clock.now == waited
    assert retry.call(Flaky(0, Passing("back"))) == "done"


def test_an_error_that_will_not_pass_is_raised_at_once():
    clock = FakeTime()
    operation = Flaky(1, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        retrier(300, clock).call(operation)
    assert operation.calls == 1 and clock.sleeps == []


# --- which real errors pass ---------------------------------------------------------------------------


def _raised(function) -> BaseException:
    try:
        function()
    except BaseException as error:  # noqa: BLE001 - the error is the result
        return error
    raise AssertionError("expected an error")


def test_sqlite_locked_beyond_its_busy_timeout_is_transient(tmp_path):
    path = tmp_path / "photos.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)

    locked = _raised(lambda: waiter.execute("BEGIN IMMEDIATE"))

    assert "database is locked" in str(locked)
    assert is_transient(locked) and not is_storage_fault(locked)
    wrapped = sa.exc.OperationalError("BEGIN IMMEDIATE", None, locked)  # as SQLAlchemy hands it over
    assert is_transient(wrapped) and reason(wrapped) == "database is locked"


def test_sqlite_full_is_a_storage_fault_not_a_transient_one(tmp_path):
    full = sqlite3.connect(tmp_path / "photos.db", isolation_level=None)
    full.execute("CREATE TABLE t (x)")
    full.execute("PRAGMA max_page_count = 3")  # as a full disk answers: SQLITE_FULL

    error = _raised(lambda: full.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100))

    assert "full" in str(error) and is_storage_fault(error) and not is_transient(error)


@pytest.fixture(scope="module")
def pg_own():
    with own_cluster("eatretry") as cluster:
        yield cluster


@pytest.mark.postgres
def test_postgresql_errors_are_told_apart_by_sqlstate_and_refusals_by_the_server_s_words(pg_own):
    url = pg_own.create_database("classes")
    dsn = url.replace("postgresql+psycopg", "postgresql")

    refused = _raised(lambda: psycopg.connect("host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=2"))
    missing_database = _raised(lambda: psycopg.connect(dsn.rsplit("/", 1)[0] + "/nowhere"))
    missing_role = _raised(lambda: psycopg.connect(dsn.replace("postgres@", "ghost@")))
    victim, killer = psycopg.connect(dsn, autocommit=True), psycopg.connect(dsn, autocommit=True)
    killer.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    terminated = _raised(lambda: victim.execute("SELECT 1"))
    killer.execute("CREATE TABLE t (k int PRIMARY KEY)")
    duplicate = _raised(lambda: killer.execute("INSERT INTO t VALUES (1), (1)"))

    assert is_transient(refused) and reason(refused) == "Connection refused"
    assert terminated.sqlstate == "57P01" and is_transient(terminated)  # admin shutdown: a restart
    assert not is_transient(missing_database) and 'database "nowhere" does not exist' in reason(missing_database)
    assert not is_transient(missing_role) and 'role "ghost" does not exist' in reason(missing_role)
    assert duplicate.sqlstate == "23505" and not is_transient(duplicate) and not is_storage_fault(duplicate)
    killer.close()


@pytest.mark.postgres
def test_a_serialization_failure_is_transient(pg_own):
    dsn = pg_own.create_database("serial").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE t (k int PRIMARY KEY, v int)")
        setup.execute("INSERT INTO t VALUES (1, 0)")
    first, second = psycopg.connect(dsn), psycopg.connect(dsn)
    for connection in (first, second):
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        connection.execute("SELECT v FROM t")
    first.execute("UPDATE t SET v = 1")
    first.commit()

    conflict = _raised(lambda: second.execute("UPDATE t SET v = 2"))

    assert conflict.sqlstate == "40001" and is_transient(conflict)
    first.close()
    second.close()


# --- score against real faults ------------------------------------------------------------------------


def photos(folder: Path, count: int) -> Path:
    for i in range(count):
        make_photo(folder / f"album{i % 3}" / f"p{i:03d}.jpg", size=(64, 48), seed=i, quality=80)
    return folder


def start_score(folder: Path, model: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(model),
               "--workers", "1", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def count(url: str, table: str = "scores") -> int:
    """Rows in ``table``; raises while the server is down."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 1} if url.startswith("postgresql") else {})
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def wait_for_rows(url: str, rows: int, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        try:
            if count(url) >= rows:
                return
        except sa.exc.SQLAlchemyError:  # the tables do not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {rows} rows after {timeout_s} s")


def run_row(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT * FROM runs ORDER BY started_at")).mappings().all()
    finally:
        engine.dispose()
    return dict(rows[-1])


def error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.startswith("Error:")]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgresql_restart_mid_run_is_waited_out_and_the_run_completes(pg_own, micro_model_path, tmp_path):
    url = pg_own.create_database("restart")
    folder = photos(tmp_path / "photos", 120)
    process = start_score(folder, micro_model_path, "--db", url, "--batch-size", "2", "--json")
    try:
        wait_for_rows(url, 20, process)
        before = count(url)
        restarted = time.monotonic()
        restart = threading.Thread(target=pg_own.restart)
        restart.start()
        # Poll until the server went away and a batch landed after it came back.
        went_down = back = landed = None
        while landed is None and time.monotonic() - restarted < 120:
            try:
                rows = count(url)
            except sa.exc.OperationalError:
                went_down = went_down or time.monotonic()
            else:
                if went_down is None:
                    before = rows
                else:
                    back = back or time.monotonic()
                    if rows > before:
                        landed = time.monotonic()
            time.sleep(0.02)
        restart.join()
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert went_down is not None and landed is not None, "the restart was not seen, or no batch landed after it"
    print(f"\nFIGURE postgresql restart: server unreachable for {back - restarted:.2f} s; first batch landed "
          f"{landed - restarted:.2f} s after the restart began ({landed - back:.2f} s after the server was back)")

    assert process.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout)
    assert summary["outcome"] == "done" and summary["ok"] == 120
    assert count(url) == count(url, "images") == 120  # one row per input: nothing lost, nothing twice
    run = run_row(url)
    assert run["status"] == "completed" and run["ok"] == 120


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_down_past_the_retry_limit_ends_with_the_infrastructure_code_and_no_partial_batch(
    pg_own, micro_model_path, tmp_path
):
    url = pg_own.create_database("down")
    folder = photos(tmp_path / "photos", 60)
    process = start_score(folder, micro_model_path, "--db", url, "--batch-size", "2", "--db-retry-for", "3", "--json")
    try:
        wait_for_rows(url, 10, process)
        pg_own.stop()
        stopped = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
        pg_own.start()
        pg_own.wait_until_up()

    assert process.returncode == INFRASTRUCTURE.code, stderr.decode()[-2000:]
    assert 3 <= took < 30
    summary = json.loads(stdout)
    assert summary["outcome"] == "infrastructure" and summary["exit_code"] == INFRASTRUCTURE.code
    assert "Traceback" not in stderr.decode()
    (line,) = error_lines(stderr)
    assert "limit 3 s" in line and "run the same command again" in line
    # Each batch went in whole with the run's counts, in one transaction: none is half there.
    saved = count(url)
    run = run_row(url)
    assert run["ok"] + run["failed"] == saved == count(url, "images")
    assert summary["ok"] <= saved

    resumed = subprocess.run(
        [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(micro_model_path),
         "--db", url, "--json"], capture_output=True, text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["skipped"] == saved
    assert count(url) == count(url, "images") == 60


@pytest.mark.postgres
def test_a_wrong_login_or_a_missing_database_stops_at_once_in_one_line(pg_own, micro_model_path, tmp_path):
    folder = photos(tmp_path / "photos", 2)
    for url, words in [
        (pg_own.url("postgres", user="ghost"), 'role "ghost" does not exist'),
        (pg_own.url("nowhere"), 'database "nowhere" does not exist'),
    ]:
        started = time.monotonic()
        process = start_score(folder, micro_model_path, "--db", url)  # default --db-retry-for: minutes
        _, stderr = process.communicate(timeout=120)
        assert time.monotonic() - started < 60  # no retries: it fails as fast as the program starts
        assert process.returncode == REFUSED.code
        (line,) = error_lines(stderr)
        assert words in line and "Traceback" not in stderr.decode()


def test_a_database_from_a_newer_eat_curate_stops_at_once_in_one_line(micro_model_path, tmp_path):
    db = tmp_path / "photos.db"
    init_database(str(db))
    engine = sa.create_engine(database_url(str(db)))
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE eat_meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()

    process = start_score(photos(tmp_path / "photos", 2), micro_model_path, "--db", str(db))
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == REFUSED.code
    (line,) = error_lines(stderr)
    assert "newer than this eat-curate understands" in line


@pytest.mark.slow
def test_an_sqlite_file_another_writer_keeps_locked_is_waited_for_and_the_run_completes(micro_model_path, tmp_path):
    db = tmp_path / "photos.db"
    init_database(str(db))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another eat-curate or an admin's shell holds it
    process = start_score(photos(tmp_path / "photos", 8), micro_model_path, "--db", str(db), "--batch-size", "4")
    seen = bytearray()

    def read_stderr() -> None:  # the bar rewrites one line: read what comes, not lines
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            seen.extend(chunk)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while b"retrying in" not in seen and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b"database is locked; retrying in" in seen, seen.decode()[-2000:]  # the bar shows the wait
    finally:
        holder.execute("COMMIT")
        holder.close()
    process.wait(timeout=300)
    reader.join()

    assert process.returncode == 0, seen.decode()[-2000:]
    assert count(f"sqlite:///{db}") == 8
