"""The Parquet sink's write-ahead journal: an Arrow IPC stream, fsynced after every batch.

Parquet cannot be appended to, and a Parquet file cut short by a crash is
unreadable (its footer is missing). An IPC *stream* has no footer: each batch
is a length-prefixed message, so a stream cut short anywhere still reads up
to its last complete batch. A crash therefore loses at most the batch whose
write had not returned.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eat_curate.records import PARQUET_SCHEMA
from eat_curate.sinks.durable import fsync_folder, publish


class Journal:
    """Appends tables to ``path``; each :meth:`append` is on disk when it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._file = open(path, "wb")
        self._torn = False  # an append failed part-way (a full disk): nothing more goes after its bytes
        try:
            fsync_folder(path.parent)  # the journal's name must survive a crash as well as its bytes
            self._writer = pa.ipc.new_stream(self._file, PARQUET_SCHEMA)
        except BaseException:
            self._file.close()
            raise

    def append(self, table: pa.Table) -> None:
        if self._torn:
            raise RuntimeError(f"journal {self.path} was torn by a failed write; it takes no more")
        try:
            self._writer.write_table(table)
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            self._torn = True
            raise
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the stream; a torn one is only closed (readers stop at its last complete batch)."""
        if self._file.closed:
            return
        try:
            if not self._torn:
                self._writer.close()
        finally:
            self._file.close()


def read_journal(path: Path) -> Iterator[pa.RecordBatch]:
    """The complete batches of a journal, stopping quietly at a torn tail."""
    with pa.OSFile(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):  # empty, or cut inside the first message
            return
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError):  # cut inside a later message
                return


def journal_problem(path: Path) -> str | None:
    """Why the journal at ``path`` cannot be merged, said after its name; None when it can.

    Bytes that are no stream at all read as a journal cut before its first batch: nothing to merge, no problem.
    """
    if not path.is_file():
        return "is not a file"
    try:
        with pa.OSFile(str(path)) as source:
            schema = pa.ipc.open_stream(source).schema
    except (pa.ArrowInvalid, OSError):
        return None
    if schema.equals(PARQUET_SCHEMA):
        return None
    return "holds rows of another schema (written by another eat-curate version, or another tool)"


def journal_to_part(journal: Path, part: Path, row_group_rows: int) -> int:
    """Rewrite a journal as a Parquet part (atomically), remove the journal; returns the rows kept."""
    batches = list(read_journal(journal))
    rows = sum(batch.num_rows for batch in batches)
    if rows:
        temporary = part.with_name(part.name + ".tmp")
        pq.write_table(pa.Table.from_batches(batches, PARQUET_SCHEMA), temporary, row_group_size=row_group_rows)
        publish(temporary, part)
    journal.unlink()
    fsync_folder(journal.parent)
    return rows


def part_counts(parts: Sequence[Path]) -> dict:
    """The run-record counts of the records in ``parts``: ok, failed, failed_by_kind."""
    kinds: Counter = Counter()
    ok = 0
    for part in parts:
        column = pq.read_table(part, columns=["error_kind"]).column("error_kind")
        ok += column.null_count
        kinds.update(kind for kind in column.to_pylist() if kind is not None)
    return {"ok": ok, "failed": sum(kinds.values()), "failed_by_kind": dict(kinds)}
