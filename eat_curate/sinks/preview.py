"""What a run would skip, read without writing: the lookups behind ``score --dry-run``.

Each output answers ``already_scored(inputs, model_id)`` as its sink would
at the start of a run (rule: ``eat_curate.incremental``), without the sink's
side effects: no lock taken, no run cut short merged, no table created, no
file made. An output that does not exist yet holds nothing.

A Parquet output's rows not merged yet (those of a run cut short, or of one
still working) are read as the merge will keep them: newer than the merged
rows, the newest of them winning for each path.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from eat_curate.incremental import InputVersion, stored_versions
from eat_curate.sinks.parquet.index import SCORED_COLUMNS, ScoredIndex
from eat_curate.sinks.parquet.journal import read_journal
from eat_curate.sinks.parquet.sink import unmerged_files
from eat_curate.sinks.parquet.target import check_target, parquet_target
from eat_curate.sinks.sql.database import check_database, connect, database_url, read_only_engine, stored_version
from eat_curate.sinks.sql.sink import scored_keys

class ScoredLookup(Protocol):
    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]: ...

    def close(self) -> None: ...


class ParquetLookup:
    """``--out`` read as it stands: merged files through a :class:`ScoredIndex`, unmerged rows on top."""

    def __init__(self, out: str) -> None:
        self.target = parquet_target(out)
        check_target(self.target)
        self._models: dict[str, tuple[ScoredIndex, dict[str, tuple[Hashable, ...]]]] = {}

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        if model_id not in self._models:
            index = ScoredIndex.build(self.target.committed_files(), model_id)
            self._models[model_id] = index, self._unmerged(model_id)
        index, unmerged = self._models[model_id]
        done = index.done([one for one in inputs if one.key not in unmerged])
        return done | {one.key for one in inputs if one.version in unmerged.get(one.key, ())}

    def _unmerged(self, model_id: str) -> dict[str, tuple[Hashable, ...]]:
        """Per path, the versions its newest unmerged row of ``model_id`` vouches for (none for an error)."""
        latest: dict[str, tuple[Hashable, ...]] = {}
        for batch in self._unmerged_batches():
            rows = batch.select(SCORED_COLUMNS).to_pylist()
            for row in rows:
                if row["model_id"] == model_id:
                    success = row["error_kind"] is None
                    latest[row["path"]] = (
                        tuple(stored_versions(row["bytes"], row["mtime"], row["content_hash"])) if success else ()
                    )
        return latest

    def _unmerged_batches(self) -> Iterator[pa.RecordBatch]:
        work = self.target.work
        if not work.is_dir():
            return
        files = unmerged_files(work, "parquet") + unmerged_files(work, "arrows")
        for path in sorted(files, key=lambda file: int(file.stem)):  # a journal becomes the part of its number
            if path.suffix == ".arrows":
                yield from read_journal(path)
            else:
                yield from pq.ParquetFile(path).iter_batches(columns=SCORED_COLUMNS)

    def close(self) -> None:
        self._models.clear()


class SqlLookup:
    """``--db`` read through a connection that creates nothing: a database without our tables holds nothing."""

    def __init__(self, db: str) -> None:
        self.url = database_url(db)
        check_database(self.url)
        self._engine = None

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        if self.url.get_backend_name() == "sqlite":
            path = Path(self.url.database)
            if not path.is_file() or path.stat().st_size == 0:  # a run would create it
                return set()
        self._engine = self._engine or read_only_engine(self.url)
        with connect(self._engine, self.url) as connection:
            if stored_version(connection) is None:
                return set()
            return scored_keys(connection, inputs, model_id)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def open_lookups(out: str | None, db: str | None) -> list[ScoredLookup]:
    """The read-only lookups of ``--out`` and ``--db``, checked as a run checks its outputs; nothing is created."""
    lookups: list[ScoredLookup] = []
    if out is not None:
        lookups.append(ParquetLookup(out))
    if db is not None:
        lookups.append(SqlLookup(db))
    return lookups
