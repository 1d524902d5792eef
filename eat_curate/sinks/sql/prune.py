"""``db prune``: the rows of files that no longer exist, found and (unless a dry run) deleted.

After a photo is renamed or deleted, its old row stays: an album of 15 files
shows 16 images. Pruning walks the ``images`` table, keeps rows whose file is
still there, and deletes the rest with their scores and errors, in batches of
one transaction each (a crash leaves every batch whole).

Only rows naming a local file are judged: URLs cannot be checked cheaply and
a manifest's embedded images (``<manifest>#<row>``) have no file of their own.
With ``under`` given, only files below those folders are judged, so pruning
one scored folder leaves another, perhaps unmounted, alone; a folder given
that is not there, or is empty, is refused: that is what a disk that is not
mounted looks like, and pruning it would forget every photo on it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

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

BATCH = 1000  # image ids per delete: one transaction, well below every database's bound-parameter limit
EXAMPLES = 20  # missing files named in the report; the count covers them all
_EMBEDDED_ROW = re.compile(r"#\d+$")  # a manifest's embedded image: "<manifest uri>#<row>"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class PruneReport:
    database: str
    checked: int = 0  # rows naming a local file (below ``under``, when given)
    missing: int = 0  # of those, files that are gone
    deleted: int = 0  # images deleted (0 on a dry run)
    dry_run: bool = False
    examples: list[str] = field(default_factory=list)  # the first missing paths

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def is_local_file_row(path: str) -> bool:
    """Whether a stored path names a local file whose presence can be checked."""
    return os.path.isabs(path) and not _URL.match(path) and not _EMBEDDED_ROW.search(path)


def prune_missing(db: str, under: Sequence[str] = (), dry_run: bool = False) -> PruneReport:
    """Find the rows of vanished local files in ``db`` (below ``under`` if given) and delete them unless ``dry_run``."""
    url = database_url(db)
    where = describe(url)
    if url.get_backend_name() == "sqlite" and not os.path.isfile(url.database):
        raise StoreError(f"--db {url.database}: no such database")
    for folder in under:
        _refuse_if_unmounted(folder)
    folders = [os.path.join(os.path.realpath(folder), "") for folder in under]
    report = PruneReport(database=where, dry_run=dry_run)
    with command_engine(url) as engine:  # a corrupt file, a role without the privilege: one line
        with connect(engine, url) as connection:
            if check_schema(connection, where) is None:
                raise StoreError(f"{where} holds no eat-curate tables")
            gone = list(_missing_ids(connection, folders, report))
        if not dry_run:
            for start in range(0, len(gone), BATCH):
                batch = gone[start : start + BATCH]
                with write_transaction(engine) as connection:
                    for table in (schema.scores, schema.errors, schema.images):
                        connection.execute(sa.delete(table).where(table.c.image_id.in_(batch)))
                report.deleted += len(batch)
    return report


def _refuse_if_unmounted(folder: str) -> None:
    """A folder to prune that is missing or empty is most likely a disk not mounted: judging its rows would
    delete them all."""
    try:
        with os.scandir(folder) as entries:
            empty = next(entries, None) is None
    except FileNotFoundError:
        problem = "is not there"
    except OSError as error:
        problem = f"cannot be listed ({error.strerror or error})"
    else:
        problem = "is empty" if empty else None
    if problem:
        raise StoreError(f"{folder} {problem} (a disk that is not mounted?): nothing was pruned. To forget the "
                         "photos that were in it, prune the folder above it")


def _missing_ids(connection: sa.Connection, folders: Sequence[str], report: PruneReport) -> Iterator[str]:
    rows: Iterable = connection.execution_options(yield_per=10_000).execute(
        sa.select(schema.images.c.image_id, schema.images.c.path)
    )
    for image_id, path in rows:
        if not is_local_file_row(path) or not _below(path, folders):
            continue
        report.checked += 1
        if not os.path.lexists(path):
            report.missing += 1
            if len(report.examples) < EXAMPLES:
                report.examples.append(path)
            yield image_id


def _below(path: str, folders: Sequence[str]) -> bool:
    if not folders:
        return True
    # The stored path keeps the folder as it was named (symlinks unresolved); resolve the part that still exists.
    resolved = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    return any(resolved.startswith(folder) or path.startswith(folder) for folder in folders)
