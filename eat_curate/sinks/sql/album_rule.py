"""``db albums``: move a database to the stable album rule (an image's album is its parent folder's name).

Older versions named a folder's images by their folder's path relative to
the folder given to ``score``: ``score coll`` gave ``p1/hiking``, ``score
coll/p1`` gave ``hiking`` and ``score coll/p1/hiking`` gave none. Now the
album is the name of the folder holding the file, whichever folder above it
was given. This rewrites the albums of rows that the old rule named after
their folders: an album that is empty or is the trailing part of the file's
folder path. Albums taken from a manifest column (anything else) are kept,
and so are a manifest's embedded images, which have no folder.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import sqlalchemy as sa

from eat_curate.errors import StoreError
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import (
    check_schema,
    connect,
    command_engine,
    database_url,
    describe,
    write_transaction,
)
from eat_curate.sinks.sql.prune import BATCH, EXAMPLES, is_local_file_row

_SCHEMES = ("http://", "https://", "s3://", "gs://", "gcs://")


@dataclass
class AlbumMove:
    database: str
    changed: int = 0  # images whose album is (or would be) rewritten
    dry_run: bool = False
    examples: list[tuple[str, str | None, str]] = field(default_factory=list)  # (path, old album, new album)

    def to_dict(self) -> dict:
        return {**self.__dict__, "examples": [list(example) for example in self.examples]}


def parent_album(path: str, album: str | None) -> str | None:
    """The album the stable rule gives ``path``, if the old rule named this row after its folders; else None."""
    if path.startswith(_SCHEMES):
        folder = posixpath.dirname(urlsplit(path).path)
    elif is_local_file_row(path):
        folder = os.path.dirname(path).replace(os.sep, "/")
    else:
        return None
    name = posixpath.basename(folder)
    if not name or album == name:
        return None
    from_folders = album is None or album == "" or (folder + "/").endswith("/" + album.strip("/") + "/")
    return name if from_folders else None


def move_albums_to_parent(db: str, dry_run: bool = False) -> AlbumMove:
    """Rewrite folder-named albums of ``db`` to their parent folder's name (in ``images`` and ``scores``)."""
    url = database_url(db)
    where = describe(url)
    if url.get_backend_name() == "sqlite" and not os.path.isfile(url.database):
        raise StoreError(f"--db {url.database}: no such database")
    report = AlbumMove(database=where, dry_run=dry_run)
    with command_engine(url) as engine:  # a corrupt file, a role without the privilege: one line
        with connect(engine, url) as connection:
            if check_schema(connection, where) is None:
                raise StoreError(f"{where} holds no eat-curate tables")
            images = schema.images
            moves = []
            rows = connection.execute(sa.select(images.c.image_id, images.c.path, images.c.album))
            for image_id, path, album in rows:
                new = parent_album(path, album)
                if new is not None:
                    moves.append({"id": image_id, "new_album": new})
                    if len(report.examples) < EXAMPLES:
                        report.examples.append((path, album, new))
        report.changed = len(moves)
        if not dry_run:
            for start in range(0, len(moves), BATCH):
                with write_transaction(engine) as connection:
                    for table in (schema.images, schema.scores):
                        statement = (
                            sa.update(table)
                            .where(table.c.image_id == sa.bindparam("id"))
                            .values(album=sa.bindparam("new_album"))
                        )
                        connection.execute(statement, moves[start : start + BATCH])
    return report
