"""Hostile databases and hand-edited results behind `db` and the read commands: one line, never a traceback.

A Parquet result edited by hand (NaN scores, a success without its
distribution, text an SQL column cannot hold) is refused before the database
is touched. A PostgreSQL role without the privilege, an SQLite file with a
corrupt page, a database in a folder whose name has `%`, `?` or `#`, and a
read-only mount holding a crashed writer's write-ahead log are each read
right or refused in one line with the exit code that says whose move it is
(2: fix the command or the grant; 4: the infrastructure).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from conftest import PG_ADMIN_URL
from eat_curate.errors import StoreError
from eat_curate.exit_codes import INFRASTRUCTURE, REFUSED
from eat_curate.records import ScoreRecord, records_to_table
from eat_curate.sinks import SqlSink
from read_library import invoke
from score_rows import scored, write_scores
from sink_records import failure, query, score_run, start_python, success
from small_disk import mounted_tmpfs, remount


def one_line_error(result, code: int, *words: str) -> str:
    """The command's only error line, after checking its exit code and that it names no bug."""
    assert result.exit_code == code, (result.exit_code, result.output, repr(result.exception))
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "unexpected" not in errors[0] and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def write_result(path: Path, records: list[ScoreRecord], edit: Callable[[pa.Table], pa.Table] | None = None) -> Path:
    """``records`` as a Parquet result of `score --out`, optionally edited column-wise afterwards."""
    table = records_to_table(records)
    pq.write_table(edit(table) if edit else table, path)
    return path


def _set(**values) -> Callable[[list[ScoreRecord]], None]:
    def _set_values(records: list[ScoreRecord]) -> None:
        for name, value in values.items():
            setattr(records[1], name, value)

    return _set_values


def _captured_in_year_10000(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("captured_at")
    micros = pa.array([253_402_300_800_000_000] * table.num_rows, pa.int64())  # 10000-01-01
    return table.set_column(index, table.schema.field(index), pc.cast(micros, pa.timestamp("us")))


def _extra_cut_short(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("extra")
    return table.set_column(index, "extra", pa.array(['{"camera": "x100"'] * table.num_rows, pa.string()))


# Edits someone might make to a result by hand, each one a row no database can hold as `score` writes it:
# (an edit of the second record, or of the table, and what the error says).
HAND_EDITS = {
    "a NaN mean": (_set(mean=math.nan), "mean is missing, NaN or infinite"),
    "an infinite std": (_set(std=math.inf), "std is missing, NaN or infinite"),
    "a success without its distribution": (_set(probabilities=None), "p1 is missing"),
    "a NaN probability": (_set(probabilities=[0.1] * 4 + [math.nan] + [0.1] * 5), "p5 is missing, NaN"),
    "a success without a mean": (_set(mean=None), "mean is missing"),
    "extra that is not JSON": (_extra_cut_short, "extra that is not a JSON object"),
    "a NUL in a path": (_set(path="/photos/a\x00b.jpg"), "NUL character in path"),
    "an image id too long": (_set(image_id="x" * 129), "image_id of more than 128 characters"),
    "a capture time past year 9999": (_captured_in_year_10000, "captured_at outside years 1-9999"),
}


def _hand_edited(tmp_path: Path, case: str) -> Path:
    edit, _ = HAND_EDITS[case]
    records = [success(i) for i in range(3)] + [failure(3)]
    if edit.__name__.startswith("_set"):
        edit(records)
        return write_result(tmp_path / "edited.parquet", records)
    return write_result(tmp_path / "edited.parquet", records, edit)


@pytest.mark.parametrize("case", list(HAND_EDITS))
def test_import_refuses_a_hand_edited_row_in_one_line_before_the_database_exists(tmp_path, case):
    source, db = _hand_edited(tmp_path, case), tmp_path / "photos.db"

    result = invoke("db", "import", source, "--db", db, expect_ok=False)

    one_line_error(result, REFUSED.code, HAND_EDITS[case][1], "row ", "nothing was imported")
    assert not db.exists()


@pytest.mark.parametrize("case", ["a NUL in a path", "an image id too long", "a NaN mean"])
def test_import_into_postgresql_refuses_what_its_columns_cannot_hold_and_creates_no_table(tmp_path, pg_url, case):
    result = invoke("db", "import", _hand_edited(tmp_path, case), "--db", pg_url, expect_ok=False)

    one_line_error(result, REFUSED.code, HAND_EDITS[case][1])
    assert query(pg_url, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'") == [{"n": 0}]


def test_an_untouched_result_still_imports_every_row(tmp_path):
    source = write_result(tmp_path / "scores.parquet", [success(i) for i in range(3)] + [failure(3)])

    invoke("db", "import", source, "--db", tmp_path / "photos.db")

    assert query(str(tmp_path / "photos.db"), "SELECT count(*) AS n FROM scores") == [{"n": 3}]


# --- a PostgreSQL role without the privilege ----------------------------------------------------------------


@pytest.fixture
def limited_role(pg_url: str) -> Iterator[Callable[[str], str]]:
    """A login role of this test's own on ``pg_url``'s database; call it with GRANTs to run as the role's URL."""
    role = f"eatc_role_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE ROLE {role} LOGIN"))

    def as_role(grant: str = "") -> str:
        if grant:
            with admin.connect() as connection:
                connection.execute(sa.text(grant.format(role=role)))
        return sa.make_url(pg_url).set(username=role).render_as_string(hide_password=False)

    try:
        yield as_role
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP OWNED BY {role}"))  # its grants on this database
        admin.dispose()
        with sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))


def test_a_role_that_may_not_create_tables_is_told_so_in_one_line(tmp_path, limited_role):
    url = limited_role()  # PostgreSQL 15: nobody but the owner creates tables in the public schema
    source = write_result(tmp_path / "scores.parquet", [success(1)])

    for command in (["db", "init", "--db", url], ["db", "import", source, "--db", url]):
        one_line_error(invoke(*command, expect_ok=False), REFUSED.code, "permission denied for schema public")


def test_a_role_without_privileges_on_the_tables_is_told_so_by_every_db_command(tmp_path, pg_url, limited_role):
    invoke("db", "init", "--db", pg_url)
    url = limited_role()
    source = write_result(tmp_path / "scores.parquet", [success(1)])

    for command in (["db", "init"], ["db", "import", source], ["db", "prune"], ["db", "albums"], ["runs"]):
        result = invoke(*command, "--db", url, expect_ok=False)
        one_line_error(result, REFUSED.code, "permission denied for table eat_meta")


def test_a_role_that_may_only_read_is_refused_its_writes_in_one_line(tmp_path, pg_url, limited_role):
    score_run(SqlSink(pg_url), [[success(1)]])
    url = limited_role("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    source = write_result(tmp_path / "scores.parquet", [success(2)])

    one_line_error(invoke("db", "import", source, "--db", url, expect_ok=False), REFUSED.code, "permission denied")
    with pytest.raises(StoreError, match="cannot be written: permission denied for table"):
        score_run(SqlSink(url), [[success(2)]], run_id="run-2")  # what `score --db` does
    assert len(invoke("rank", url, "--json").stdout.split('"image_id"')) == 2  # it still reads the one score


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://root@127.0.0.1:99999/photos",  # a port typed with one digit too many
    "postgresql+psycopg://root@127.0.0.1:5432/photos?sslmode=bogus",
])
def test_a_url_option_libpq_rejects_is_refused_at_once_not_waited_for_as_a_server_down(url):
    """`score` retries an unreachable server for --db-retry-for (300 s); a URL that cannot work must not wait."""
    one_line_error(invoke("db", "init", "--db", url, expect_ok=False), REFUSED.code, "invalid")


# --- SQLite files in a bad way ------------------------------------------------------------------------------


def corrupt_middle_pages(db: Path) -> None:
    """Overwrite the middle third of ``db``'s pages with junk: rows and indexes every query reads, not the schema
    the first pages hold (which pages hold what depends on the schema's tables and indexes)."""
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as handle:
        for page in range(pages // 3, 2 * pages // 3):
            handle.seek(page * 4096)
            handle.write(b"\x0d" + b"\xff" * 4095)


def test_a_corrupt_page_met_mid_query_is_one_line(tmp_path):
    db = tmp_path / "photos.db"
    write_scores(db, [scored(f"img-{i:05d}", mean=1 + i % 90 / 10, album=f"a{i % 7}") for i in range(4000)])
    corrupt_middle_pages(db)

    for command in (["albums", db], ["rank", db], ["filter", db], ["dupes", db]):
        one_line_error(invoke(*command, expect_ok=False), REFUSED.code, "malformed")


def test_a_corrupt_schema_page_is_one_line_for_prune_and_albums(tmp_path):
    db = tmp_path / "photos.db"
    write_scores(db, [scored("a", 5.0)])
    with open(db, "r+b") as handle:  # past the header: the page that holds eat_meta
        handle.seek(2 * 4096)
        handle.write(b"\xff" * 8192)

    for command in ("prune", "albums"):
        one_line_error(invoke("db", command, "--db", db, expect_ok=False), REFUSED.code, "malformed")


@pytest.mark.parametrize("folder", ["100%41", "what?x", "we#ird"])
def test_a_database_in_a_folder_named_with_uri_characters_is_read_there_and_nothing_is_created(tmp_path, folder):
    for name in (folder, "100A"):
        (tmp_path / name).mkdir()
    mine = write_scores(tmp_path / folder / "photos.db", [scored("mine", 7.0, album="mine")])
    write_scores(tmp_path / "100A" / "photos.db", [scored("other", 3.0, album="other")])  # what '%41' decodes to
    before = sorted(path.name for path in tmp_path.iterdir())

    albums = invoke("albums", mine, "--json").stdout

    assert '"mine"' in albums and '"other"' not in albums
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no stray 'what' or 'we' database


# --- a read-only mount holding a crashed writer's write-ahead log ---------------------------------------------

CRASHED_WRITER = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA wal_autocheckpoint = 0")  # the commit stays in the -wal, as a crash leaves it
connection.execute("DELETE FROM scores WHERE image_id = 'deleted'")
os._exit(0)  # no close: no checkpoint, -wal and -shm stay
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of this test's own (remounted read-only at will), unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as disk:
        yield disk


def test_a_read_only_mount_reads_the_commits_a_crashed_writer_left_in_the_write_ahead_log(small_disk):
    db = small_disk / "photos.db"
    write_scores(db, [scored("kept", 6.0), scored("deleted", 9.0)])
    assert start_python(CRASHED_WRITER, str(db)).wait(timeout=60) == 0
    assert Path(f"{db}-wal").stat().st_size > 0
    remount(small_disk, "ro")

    ranked = invoke("rank", db, "--json").stdout

    assert '"kept"' in ranked and '"deleted"' not in ranked  # the committed delete, not the file's older page

    remount(small_disk, "rw")
    os.unlink(f"{db}-shm")  # without it, SQLite cannot read the log on a read-only mount
    remount(small_disk, "ro")

    refused = invoke("rank", db, expect_ok=False)

    one_line_error(refused, INFRASTRUCTURE.code, "photos.db-wal holds commits not yet in the file")
