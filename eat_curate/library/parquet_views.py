"""A Parquet result read as eat-curate's SQL tables: views in an in-memory DuckDB over its files.

The read side's SQLAlchemy queries (``queries.py``) then run unchanged on
``score --out`` output. Nothing is written anywhere: the database lives in
memory, the views read the files where they are, and DuckDB reads only the
columns and row groups a query needs.

How the flat ScoreRecord rows (``records.PARQUET_SCHEMA``, one per
(path, model)) map onto the tables of ``sinks/sql/schema.py``:

- ``scores``: the rows without ``error_kind``; ``probabilities[i]`` is
  ``p<i>``, the row's ``bytes``/``mtime``/``content_hash`` are
  ``scored_bytes``/``scored_mtime``/``scored_content_hash``;
- ``errors``: the rows with ``error_kind`` (``kind``, ``message``, ``at``);
- ``images``: the image facts of every row; when several models scored the
  result, one row per image id, from its latest record (as the SQL sink
  keeps it), and ``updated_at`` is that record's ``scored_at``; ``shot`` is
  computed from the path by the SQL twin of the key the SQL sink stores
  (``sinks.shots.with_shot_key_sql``): Parquet results never store it, so
  results of any age pair RAW and JPEG alike;
- ``models`` and ``runs``: small tables filled from the result's history
  (file metadata or ``_eat_curate.json``) with the rows the SQL sink writes;
- ``eat_meta``: the schema version these views imitate.

Another tool may have repeated rows (one (path, model) twice); each is then
read once, from its newest row (of rows as new, the first in file order), as
the next merge keeps it (``sinks/parquet/merge.py``), and a warning says so.

A time Python has no value for (years outside 1-9999, DuckDB's ``'infinity'``
and ``'-infinity'``), which another tool may store, reads as NULL in every
view, as ``stored_values`` reads it from SQL: DuckDB would hand it to Python
as text or as 9999-12-31 / 0001-01-01. Which row is an image's newest is
still decided by the stored ``scored_at``, as the merge decides it.

One difference cannot be read back: Parquet keeps one row per (path, model)
and SQL one per (image id, model), so they part only where a manifest gave
ids that disagree with its paths (two paths, one id).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from eat_curate.errors import StoreError
from eat_curate.library.timestamps import PYTHON_YEARS
from eat_curate.records import NUM_BINS
from eat_curate.runs import utc_now
from eat_curate.sinks.parquet.footer import parquet_file
from eat_curate.sinks.parquet.history import History
from eat_curate.sinks.parquet.result import ParquetResult, open_parquet_result
from eat_curate.sinks.shots import with_shot_key_sql
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.sink import model_row, sql_run_row

ROWS_VIEW = "eat_parquet_rows"

# In-memory only; UTC so that times with a zone come back in UTC, as SQL's do; never fetch extensions.
DUCKDB_CONFIG = {"TimeZone": "UTC", "autoinstall_known_extensions": False}


def python_time(column: str, with_zone: bool) -> str:
    """``column`` where a Python datetime holds it, else NULL (see module doc); ±infinity is outside too.

    Bounds with a zone are UTC instants, whatever the session's zone: a time with one reads back in UTC.
    """
    kind, zone = ("TIMESTAMPTZ", "+00") if with_zone else ("TIMESTAMP", "")
    first, last = (f"{kind} '{bound}{zone}'" for bound in PYTHON_YEARS)
    return f"CASE WHEN {column} BETWEEN {first} AND {last} THEN {column} END"


_CAPTURED_AT = python_time("captured_at", with_zone=False)
_SCORED_AT = python_time("scored_at", with_zone=True)
_IMAGE_COLUMNS = (
    "image_id, path, album, content_hash, bytes, mtime, width, height, oriented_width, oriented_height, "
    f"format, phash, {_CAPTURED_AT} AS captured_at, extra, {_SCORED_AT} AS updated_at"
)
_PROBABILITIES = ", ".join(f"probabilities[{i}] AS p{i}" for i in range(1, NUM_BINS + 1))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def models_in(result: ParquetResult) -> set[str] | None:
    """The model ids in the result, from the files' column statistics (no data read); None when unknown."""
    found: set[str] = set()
    for path in result.files:
        metadata = parquet_file(path).metadata
        column = metadata.schema.names.index("model_id")
        for group in range(metadata.num_row_groups):
            statistics = metadata.row_group(group).column(column).statistics
            if statistics is None or not statistics.has_min_max:
                return None
            try:
                found.update((statistics.min, statistics.max))
            except ValueError:  # not UTF-8: damaged statistics, which the query that reads the pages judges
                return None
    return found


def _read_files(result: ParquetResult, options: str = "") -> str:
    return "read_parquet([" + ", ".join(_literal(str(path)) for path in result.files) + "]" + options + ")"


def repeated_keys(connection: sa.Connection, result: ParquetResult) -> int:
    """How many rows of ``result`` repeat the (path, model) of another row: none, unless another tool added them.

    One pass over two columns (about 0.2 s a million rows); the exact count is only taken when hashes differ.
    """
    rows = _read_files(result)
    suspects = connection.exec_driver_sql(f"SELECT count(*) - count(DISTINCT hash(path, model_id)) FROM {rows}")
    if not suspects.scalar_one():
        return 0
    exact = connection.exec_driver_sql(f"SELECT count(*) - count(DISTINCT (path, model_id)) FROM {rows}")
    return exact.scalar_one()


def view_statements(result: ParquetResult, one_row_per_image: bool, unique_keys: bool = True) -> list[str]:
    """CREATE VIEW statements of the row tables over ``result``'s files.

    ``unique_keys``: False when rows repeat a (path, model); each is then read once, its newest row (of rows
    as new, the first in file order), as a merge keeps it (slow: every query sorts every row, so only then).
    """
    rows = f"SELECT * FROM {_read_files(result)}"
    if not unique_keys:
        # The file and row numbers make a tie the same row every time (DuckDB's threads would pick any).
        positions = _read_files(result, ", filename = true, file_row_number = true")
        rows = (
            f"SELECT * EXCLUDE (filename, file_row_number) FROM {positions} QUALIFY row_number() OVER "
            "(PARTITION BY path, model_id ORDER BY scored_at DESC, filename, file_row_number) = 1"
        )
    images = f"SELECT {_IMAGE_COLUMNS} FROM {ROWS_VIEW}"
    if not one_row_per_image:
        # The latest record of each image, as the SQL sink's upserts leave it. One ordering key on
        # purpose: DuckDB then keeps the newest row per image without sorting every row.
        images += " QUALIFY row_number() OVER (PARTITION BY image_id ORDER BY scored_at DESC) = 1"
    images = with_shot_key_sql(images)
    return [
        f"CREATE VIEW {ROWS_VIEW} AS {rows}",
        f"CREATE VIEW scores AS SELECT image_id, model_id, album, run_id, {_PROBABILITIES}, "
        f"CAST(mean AS DOUBLE) AS mean, CAST(std AS DOUBLE) AS std, {_SCORED_AT} AS scored_at, "
        "bytes AS scored_bytes, mtime AS scored_mtime, content_hash AS scored_content_hash "
        f"FROM {ROWS_VIEW} WHERE error_kind IS NULL",
        "CREATE VIEW errors AS SELECT image_id, model_id, run_id, error_kind AS kind, "
        f"coalesce(error, '') AS message, {_SCORED_AT} AS at FROM {ROWS_VIEW} WHERE error_kind IS NOT NULL",
        f"CREATE VIEW images AS {images}",
    ]


def _registered_at(history: History, model_id: str) -> datetime:
    """When the model's first run began: the time the SQL sink registers a model."""
    starts = [run["started_at"] for run in history.runs if run.get("model_id") == model_id and run.get("started_at")]
    return datetime.fromisoformat(min(starts)) if starts else utc_now()


def fill_history_tables(connection: sa.Connection, history: History) -> None:
    """``models``, ``runs`` and ``eat_meta`` as tables, holding what the SQL sink would have written."""
    tables = [schema.models, schema.runs, schema.eat_meta]
    schema.metadata.create_all(connection, tables=tables)
    connection.execute(schema.eat_meta.insert(), [{"key": "schema_version", "value": str(schema.SCHEMA_VERSION)}])
    models = [
        {**model_row(model_id, card), "registered_at": _registered_at(history, model_id)}
        for model_id, card in sorted(history.models.items())
    ]
    if models:
        connection.execute(schema.models.insert(), models)
    if history.runs:
        connection.execute(schema.runs.insert(), [sql_run_row(run) for run in history.runs])


# What DuckDB raises and says of a Parquet page it cannot read ("Error": its decoders' plain errors, such as
# "Out of buffer"); a mistake in our SQL is a Parser-, Binder- or CatalogException, and stays unexpected.
_DAMAGED_PAGE_ERRORS = ("Error", "IOException", "InvalidInputException")
_DAMAGED_PAGE_SIGNS = ("Failed to read file", "Parquet file", "TProtocolException", "don't know what type")


def _refuse_damaged_pages(engine: sa.Engine, result: ParquetResult) -> None:
    """A page DuckDB cannot read (a disk error, a copy cut or overwritten) is the file's refusal, not an
    unexpected error: its footer read, so the damage shows only when a query reads the pages."""

    @sa.event.listens_for(engine, "handle_error")
    def damaged(context: sa.engine.ExceptionContext) -> None:
        error = context.original_exception
        message = str(error)
        if type(error).__name__ in _DAMAGED_PAGE_ERRORS or any(sign in message for sign in _DAMAGED_PAGE_SIGNS):
            said = message.splitlines()[0] if message.strip() else type(error).__name__  # some say nothing
            raise StoreError(f"{result.where} cannot be read, it is damaged: {said}") from None


@contextmanager
def parquet_connection(location: str) -> Iterator[sa.Connection]:
    """A connection to an in-memory DuckDB whose tables are views of the Parquet result at ``location``."""
    result = open_parquet_result(location)
    engine = sa.create_engine("duckdb:///:memory:", connect_args={"config": DUCKDB_CONFIG})
    _refuse_damaged_pages(engine, result)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET enable_progress_bar = false")  # stdout carries --json
            # Every query reads the footers again otherwise: tens of MB each in a file of an older version.
            connection.exec_driver_sql("SET parquet_metadata_cache = true")
            models = models_in(result)
            repeated = repeated_keys(connection, result)
            if repeated:
                warnings.warn(
                    f"{result.where}: {repeated} rows repeat the path and model of another row (added by another "
                    "tool?); each path and model is read once, from its newest row",
                    stacklevel=3,
                )
            one_row_per_image = models is not None and len(models) <= 1
            for statement in view_statements(result, one_row_per_image, unique_keys=not repeated):
                connection.exec_driver_sql(statement)
            fill_history_tables(connection, result.history())
            connection.commit()
            yield connection
    finally:
        engine.dispose()
