"""``db prune``: the rows of files that no longer exist, found and (unless a dry run) deleted.

After a photo is renamed or deleted, its old row stays: an album of 15 files
shows 16 images. Pruning walks the ``images`` table, keeps rows whose file is
still there, and deletes the rest with their scores and errors, in batches of
one transaction each (a crash leaves every batch whole).

Only rows naming a local file are judged: URLs cannot be checked cheaply and
a manifest's embedded images (``<manifest>#<row>``) have no file of their own.
A folder that is not there, or is empty, is what a disk that is not mounted
looks like, and judging the rows below it would forget every photo on it.
With ``under`` given, only files below those folders are judged, and a
folder given that looks unmounted is refused. Without it, the folders the
runs scored (their recorded sources) stand guard instead: the rows below one
that looks unmounted are kept and reported, so one command neither forgets an
unplugged disk nor, on a database shared by several machines, another
machine's photos. Naming a folder above it is how to forget them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

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
class UnmountedFolder:
    """A scored folder that looks like an unplugged disk's mount point, and the rows kept below it."""

    why: str  # "is not there", "is empty", "cannot be listed (...)"
    rows: int = 0  # rows of missing files below it, kept


@dataclass
class PruneReport:
    database: str
    checked: int = 0  # rows naming a local file (below ``under``, when given)
    missing: int = 0  # of those, files that are gone
    deleted: int = 0  # images deleted (0 on a dry run)
    dry_run: bool = False
    examples: list[str] = field(default_factory=list)  # the first missing paths
    kept: dict[str, UnmountedFolder] = field(default_factory=dict)  # no FOLDER given: folder -> rows kept

    def to_dict(self) -> dict:
        return asdict(self)


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
        if problem := unmounted_look(folder):
            raise StoreError(f"{folder} {problem} (a disk that is not mounted?): nothing was pruned. To forget "
                             "the photos that were in it, prune the folder above it")
    folders = [os.path.join(os.path.realpath(folder), "") for folder in under]
    report = PruneReport(database=where, dry_run=dry_run)
    with command_engine(url) as engine:  # a corrupt file, a role without the privilege: one line
        with connect(engine, url) as connection:
            if check_schema(connection, where) is None:
                raise StoreError(f"{where} holds no eat-curate tables")
            report.kept = {} if under else _unmounted_scored_folders(connection)
            gone = list(_missing_ids(connection, folders, report))
            report.kept = {folder: kept for folder, kept in report.kept.items() if kept.rows}
        if not dry_run:
            for start in range(0, len(gone), BATCH):
                batch = gone[start : start + BATCH]
                with write_transaction(engine) as connection:
                    for table in (schema.scores, schema.errors, schema.images):
                        connection.execute(sa.delete(table).where(table.c.image_id.in_(batch)))
                report.deleted += len(batch)
    return report


def unmounted_look(folder: str) -> str | None:
    """Why ``folder`` looks like the mount point of a disk that is not mounted (not there, empty, unlistable);
    None when it does not."""
    try:
        with os.scandir(folder) as entries:
            return "is empty" if next(entries, None) is None else None
    except FileNotFoundError:
        return "is not there"
    except NotADirectoryError:
        return None  # a manifest file, not a folder: no photo is below it
    except OSError as error:
        return f"cannot be listed ({error.strerror or error})"


def _unmounted_scored_folders(connection: sa.Connection) -> dict[str, UnmountedFolder]:
    """The local folders runs scored (their recorded sources) that look unmounted now."""
    looks = {}
    for (text,) in connection.execute(sa.select(schema.runs.c.sources).distinct()):
        for source in _recorded_sources(text):
            if os.path.isabs(source) and not _URL.match(source) and (problem := unmounted_look(source)):
                looks[os.path.join(source, "")] = UnmountedFolder(problem)
    return looks


def _recorded_sources(text: object) -> list[str]:
    """A run record's sources; nothing from a value another tool left that is not a JSON list of text."""
    try:
        sources = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return []
    return [source for source in sources if isinstance(source, str)] if isinstance(sources, list) else []


def _missing_ids(connection: sa.Connection, folders: Sequence[str], report: PruneReport) -> Iterator[str]:
    rows: Iterable = connection.execution_options(yield_per=10_000).execute(
        sa.select(schema.images.c.image_id, schema.images.c.path)
    )
    for image_id, path in rows:
        if not is_local_file_row(path) or not _below(path, folders):
            continue
        there = os.path.lexists(path)
        if not there and (guard := _guarding_folder(path, report.kept)):
            report.kept[guard].rows += 1  # not judged: its disk may only be unplugged
            continue
        report.checked += 1
        if not there:
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


def _guarding_folder(path: str, guards: dict[str, UnmountedFolder]) -> str | None:
    """The unmounted-looking scored folder ``path`` is below (the deepest), if any."""
    below = [folder for folder in guards if path.startswith(folder)]
    return max(below, key=len) if below else None
