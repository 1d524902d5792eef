"""Opening a database to read scores, and choosing which model's scores to read.

``--db`` names an SQL database (an SQLite file or a URL) or the Parquet
result of ``score --out`` (one file or a folder of Parquet files), which
reads as the same tables (``parquet_views``).

Reading never creates anything: an SQLite path that does not exist, a
database without eat-curate's tables or without scores is an error that says
to run ``eat-curate score`` first. SQLite files open read-only. So a database
too old for the read side's queries (before schema version 5, which keys each
image's shot; or before 6 while it holds a shot key stored whole that 6 keys
by digest) is not upgraded here either: the error names ``db init``, which
upgrades it in place without rescoring.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from eat_curate.sinks.shots import MAX_KEY_BYTES
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import (
    check_schema,
    connect,
    database_errors,
    database_url,
    describe,
    read_only_engine,
)
from eat_curate.sinks.sql.stored_values import UnreadableValue
from eat_curate.errors import StoreError

PARQUET_MAGIC = b"PAR1"
NO_SCORES = "no scores in {where}; run eat-curate score first (eat-curate score PHOTOS --db ...)"
SCORES_READABLE_SINCE = 5  # the schema version that stores images.shot, which every score query reads
# The schema version that stores a shot key over shots.MAX_KEY_BYTES as the digest the read side computes.
LONG_KEYS_DIGESTED_SINCE = 6


class ModelChoiceError(StoreError):
    """``--model`` names no scored model, or several models are scored and none was named."""


@dataclass(frozen=True)
class ScoredModel:
    model_id: str  # name@weight-hash, as every score row names it
    scores: int
    errors: int

    @property
    def name(self) -> str:
        return self.model_id.split("@", 1)[0]


def open_read_engine(url: sa.URL) -> sa.Engine:
    """An engine on ``url`` for reading; refuses a missing SQLite file instead of creating it."""
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise StoreError(NO_SCORES.format(where=f"{url.database} (no such file)"))
    return read_only_engine(url)


def names_parquet(db: str) -> bool:
    """Whether ``--db`` names a Parquet result rather than a database.

    A folder, a file starting with Parquet's magic bytes, or a path ending in
    ``.parquet`` (existing or not: a missing one is reported as a missing
    Parquet result, not as a missing SQLite file).
    """
    if "://" in db:
        return False
    path = Path(db).expanduser()
    if path.is_dir() or path.suffix.lower() == ".parquet":
        return True
    if path.is_file():
        with open(path, "rb") as handle:
            return handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    return False


@contextmanager
def read_connection(db: str, scores: bool = True) -> Iterator[sa.Connection]:
    """A connection to ``--db`` (path, URL or Parquet result) holding eat-curate's tables; closed on exit.

    ``scores=False`` (the run listing) also reads a database too old for the score queries.
    """
    if names_parquet(db):
        from eat_curate.library.parquet_views import parquet_connection  # Arrow and DuckDB load for Parquet only

        with parquet_connection(db) as connection, unreadable_values_located(connection, db):
            yield connection
        return
    url = database_url(db)
    where = describe(url)
    engine = open_read_engine(url)
    try:
        # A corrupt page met mid-query, a server gone, a table this role may not read: one line.
        with database_errors(where), connect(engine, url) as connection:
            version = check_schema(connection, where)
            if version is None:
                raise StoreError(NO_SCORES.format(where=where))
            if scores and version < SCORES_READABLE_SINCE:
                _refuse_old(where, version, f"{SCORES_READABLE_SINCE}: images know their shot")
            if scores and version < LONG_KEYS_DIGESTED_SINCE and _holds_long_shot_keys(connection):
                _refuse_old(where, version, f"{LONG_KEYS_DIGESTED_SINCE}: the paths this long are keyed by digest")
            with unreadable_values_located(connection, where):
                yield connection
    finally:
        engine.dispose()


@contextmanager
def unreadable_values_located(connection: sa.Connection, where: str) -> Iterator[None]:
    """A value another tool stored that no reading is honest about (``stored_values``): refused naming its row."""
    try:
        yield
    except UnreadableValue as error:
        raise error.located(connection, where) from None


def _refuse_old(where: str, version: int, needed: str) -> None:
    raise StoreError(f"{where} has schema version {version}, older than the read side needs ({needed}); upgrade "
                     f"it in place, nothing is rescored: eat-curate db init --db {where}")


def _holds_long_shot_keys(connection: sa.Connection) -> bool:
    """Whether a shot key is longer than ``shots.MAX_KEY_BYTES`` in UTF-8 (one pass over ``ix_images_shot``)."""
    shot = schema.images.c.shot
    if connection.dialect.name == "postgresql":
        size = sa.func.octet_length(shot)
    else:  # SQLite: a text's length as a blob is its length in bytes
        size = sa.func.length(sa.cast(shot, sa.LargeBinary))
    return bool(connection.scalar(sa.select(sa.exists().where(size > MAX_KEY_BYTES))))


def scored_models(connection: sa.Connection) -> list[ScoredModel]:
    """Every model with scores or errors in the database, by model id."""
    counts: dict[str, list[int]] = {}
    for table, slot in ((schema.scores, 0), (schema.errors, 1)):
        rows = connection.execute(sa.select(table.c.model_id, sa.func.count()).group_by(table.c.model_id))
        for model_id, count in rows:
            counts.setdefault(model_id, [0, 0])[slot] = count
    return [ScoredModel(model_id, scores, errors) for model_id, (scores, errors) in sorted(counts.items())]


def _listing(models: list[ScoredModel]) -> str:
    return "; ".join(f"{m.model_id} ({m.scores} scores, {m.errors} errors)" for m in models)


def choose_model(models: list[ScoredModel], requested: str | None, where: str) -> str:
    """The model id to read: ``requested`` (a model id or a model name), or the only one there is."""
    if not models:
        raise StoreError(NO_SCORES.format(where=where))
    if requested is None:
        if len(models) == 1:
            return models[0].model_id
        raise ModelChoiceError(
            f"{where} holds scores of {len(models)} models; choose one with --model: {_listing(models)}"
        )
    exact = [m for m in models if m.model_id == requested]
    named = exact or [m for m in models if m.name == requested]
    if len(named) == 1:
        return named[0].model_id
    if named:
        raise ModelChoiceError(
            f"--model {requested!r} matches {len(named)} versions of that model; give the full id: {_listing(named)}"
        )
    raise ModelChoiceError(f"--model {requested!r} has no scores in {where}; scored models: {_listing(models)}")


def resolve_model(connection: sa.Connection, requested: str | None, where: str) -> str:
    """Like :func:`choose_model`, reading the scored models from ``connection``."""
    return choose_model(scored_models(connection), requested, where)
