"""What the read side leaves out on one connection: a shot's other files, and (``--hide-missing``) vanished ones.

Every score query asks :func:`shown_rows` for the model it reads. The first
ask on a connection works out, once, in temporary tables of that connection:

- ``eat_paired_shots``: the shots holding more than one file (one pass over
  the index ``ix_images_shot``; see ``shots``), and ``eat_paired_files``:
  their files (shot, image id, path);
- ``eat_left_out_<n>``: one per model read (the commands read one), the
  image ids of its rows that are not their shot's lead, and of files found
  missing. One column, its primary key: ``NOT IN`` then probes its index
  directly, even inside the per-album subqueries of album statistics.

Queries then read plain indexed tables instead of repeating the rule in
every subquery, and a library without pairs (nor missing files) gets no
extra condition at all. Nothing is written to the database itself: an SQLite
file opened read-only takes temporary tables too, and they go with the
connection.

``--hide-missing`` (:func:`hide_missing_files`, before the first query):
the model's rows that name a local file that is gone, by the check ``db
prune`` makes (``sinks.sql.prune.is_local_file_row``, then
``os.path.lexists``), are left out like the others, before ranking and
counting, and a vanished file never leads its shot nor is named as another
file of it. URLs and a manifest's embedded images are never checked, so
never hidden.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from eat_curate.library.shots import ShownRows, outranked, paired_files, paired_shots
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.prune import is_local_file_row

_STATE_KEY = "eat_curate_hidden_rows"  # in connection.info: lives exactly as long as the temporary tables
_INSERT_BATCH = 10_000

_temporary = sa.MetaData()
PAIRED_SHOTS = sa.Table(
    "eat_paired_shots", _temporary, sa.Column("shot", sa.Text, primary_key=True), prefixes=["TEMPORARY"]
)
PAIRED_FILES = sa.Table(
    "eat_paired_files",
    _temporary,
    sa.Column("shot", sa.Text, primary_key=True),
    sa.Column("image_id", sa.String(128), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    prefixes=["TEMPORARY"],
)


def _left_out_table(number: int) -> sa.Table:
    return sa.Table(
        f"eat_left_out_{number}",
        sa.MetaData(),
        sa.Column("image_id", sa.String(128), primary_key=True),
        sa.Column("missing", sa.Boolean, nullable=False),  # False: another file of the shot leads
        prefixes=["TEMPORARY"],
    )


@dataclass(frozen=True)
class MissingFiles:
    checked: int  # rows naming a local file
    missing: int  # of those, files that are gone: hidden from every later query on the connection


@dataclass
class _State:
    paired: bool | None = None  # None: not worked out yet
    left_out: dict[str, sa.Table] = field(default_factory=dict)  # by model id
    models: dict[str, ShownRows] = field(default_factory=dict)  # worked out
    missing_checked: set[str] = field(default_factory=set)

    def left_out_table(self, connection: sa.Connection, model_id: str) -> sa.Table:
        if model_id not in self.left_out:
            table = self.left_out[model_id] = _left_out_table(len(self.left_out) + 1)
            table.create(connection)
        return self.left_out[model_id]


def _state(connection: sa.Connection) -> _State:
    state = connection.info.get(_STATE_KEY)
    if state is None:
        _temporary.create_all(connection)
        state = connection.info[_STATE_KEY] = _State()
    return state


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    for start in range(0, len(rows), _INSERT_BATCH):
        connection.execute(table.insert(), rows[start : start + _INSERT_BATCH])


def _count(connection: sa.Connection, query: sa.Select) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()


def shown_rows(connection: sa.Connection, model_id: str) -> ShownRows:
    """Which of ``model_id``'s rows the queries on ``connection`` show (module doc); worked out on first ask."""
    state = _state(connection)
    if model_id in state.models:
        return state.models[model_id]
    if state.paired is None:
        connection.execute(PAIRED_SHOTS.insert().from_select(["shot"], paired_shots()))
        state.paired = _count(connection, sa.select(PAIRED_SHOTS.c.shot)) > 0
        if state.paired:
            connection.execute(
                PAIRED_FILES.insert().from_select(["shot", "image_id", "path"], paired_files(PAIRED_SHOTS))
            )
    table = state.left_out_table(connection, model_id)
    if state.paired:
        # The files already in the table (vanished ones) cannot lead: the next best file does.
        behind = outranked(PAIRED_FILES, model_id, absent=sa.select(table.c.image_id)).subquery("behind")
        connection.execute(
            table.insert().from_select(["image_id", "missing"], sa.select(behind.c.image_id, sa.false()))
        )
    vanished = sa.select(table.c.image_id).where(table.c.missing)
    rows = ShownRows(
        left_out=table if _count(connection, sa.select(table.c.image_id)) else None,
        files=PAIRED_FILES if state.paired else None,
        vanished=vanished.subquery("vanished") if _count(connection, vanished) else None,
    )
    state.models[model_id] = rows
    return rows


def _rows_of_model(connection: sa.Connection, model_id: str, albums: Sequence[str | None]) -> Iterator[tuple[str, str]]:
    """(image id, path) of every image ``model_id`` scored or failed on (in ``albums``, when given)."""
    images = schema.images
    wanted = set(albums)
    for table in (schema.scores, schema.errors):
        query = sa.select(images.c.image_id, images.c.path, images.c.album).join_from(
            table, images, images.c.image_id == table.c.image_id
        )
        # Per statement: Connection.execution_options would stream every later statement too.
        rows = connection.execute(query.where(table.c.model_id == model_id), execution_options={"yield_per": 10_000})
        for image_id, path, album in rows:
            if not wanted or album in wanted:
                yield image_id, path


def hide_missing_files(connection: sa.Connection, model_id: str, albums: Sequence[str | None] = ()) -> MissingFiles:
    """Find ``model_id``'s files that are gone (in ``albums``, when given) and hide their rows (module doc).

    Call before the first query of the model on ``connection``: ranks and counts are worked out once.
    """
    state = _state(connection)
    if model_id in state.models or model_id in state.missing_checked:
        raise RuntimeError(f"hide_missing_files must come before the first query of {model_id} on a connection")
    checked, gone = 0, set()
    for image_id, path in _rows_of_model(connection, model_id, albums):
        if is_local_file_row(path):
            checked += 1
            if not os.path.lexists(path):
                gone.add(image_id)
    _insert(connection, state.left_out_table(connection, model_id), [{"image_id": i, "missing": True} for i in gone])
    state.missing_checked.add(model_id)
    return MissingFiles(checked=checked, missing=len(gone))
