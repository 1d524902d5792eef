"""Folding a run's parts into the Parquet output so that each input has exactly one row.

A row's key is (path, model_id); the newest row of a key wins (an error
retried into a success is replaced by the success). The finished output
never repeats a key, so only the keys of the new parts need tracking: memory
holds 8 bytes per new row and one row group at a time, however big the output.

Keys are hashed with Python's ``hash`` of the (path, model_id) tuple: fast,
64-bit, and valid within the one process that merges (never stored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from eat_curate.records import PARQUET_SCHEMA
from eat_curate.sinks.durable import fsync_folder, publish

KEY_COLUMNS = ["path", "model_id"]
_READ_ROWS = 8192  # rows decoded at a time while copying; the writer gathers them into full row groups


def row_keys(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Hashes of the (path, model_id) of every row, as int64."""
    paths = batch.column("path").to_pylist()
    models = batch.column("model_id").to_pylist()
    return np.fromiter(map(hash, zip(paths, models)), dtype=np.int64, count=len(paths))


def _file_keys(path: Path) -> np.ndarray:
    table = pq.read_table(path, columns=KEY_COLUMNS)
    return row_keys(table)


class NewestRows:
    """Among new parts (oldest first): every key they hold, and which of their rows are the newest of their key.

    Memory: the sorted keys (8 bytes per row). A key written twice within
    the parts is rare (a retry in the same run), so per-row masks are only
    built when that happens.
    """

    def __init__(self, parts: Sequence[Path]) -> None:
        self._parts = list(parts)
        every = np.concatenate([_file_keys(part) for part in parts]) if parts else np.empty(0, dtype=np.int64)
        every.sort()
        first = np.ones(len(every), dtype=bool)
        first[1:] = every[1:] != every[:-1]
        repeated = np.unique(every[~first])
        self.keys = every[first]  # sorted, unique
        del every, first
        self._masks = self._last_occurrences(repeated) if len(repeated) else [None] * len(self._parts)

    def _last_occurrences(self, repeated: np.ndarray) -> list[np.ndarray]:
        kept: set[int] = set()
        masks = []
        for part in reversed(self._parts):
            keys = _file_keys(part)
            mask = np.ones(len(keys), dtype=bool)
            for row in np.nonzero(np.isin(keys, repeated))[0][::-1]:
                if keys[row] in kept:
                    mask[row] = False  # a newer row of this key exists
                else:
                    kept.add(keys[row])
            masks.append(mask)
        return masks[::-1]

    def mask(self, index: int) -> np.ndarray | None:
        """Rows of part ``index`` to keep; None: all of them."""
        return self._masks[index]

    def superseded(self, keys: np.ndarray) -> np.ndarray:
        """Which of ``keys`` (rows of older files) a new row replaces."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool)
        found = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return self.keys[found] == keys


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(path).iter_batches(batch_size=_READ_ROWS)


class _RowGroupWriter:
    """Buffers filtered batches into row groups of about ``rows`` rows."""

    def __init__(self, path: Path, schema: pa.Schema, rows: int) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(path, schema)
        self._rows = rows
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
            if self._pending_rows >= self._rows:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, PARQUET_SCHEMA)
            self._writer.write_table(table, row_group_size=self._rows)
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abandon(self) -> None:
        """After a failure (a full disk): close and remove the half-written file, so it holds no space."""
        try:
            self._writer.close()
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


def _copy_rows(
    source: Path, keep: np.ndarray | NewestRows | None, writer: _RowGroupWriter, progress: tqdm | None = None
) -> None:
    """Copy ``source`` into ``writer``: every row (None), the rows of a mask, or the rows no new row supersedes."""
    offset = 0
    for batch in _batches(source):
        size = batch.num_rows
        if isinstance(keep, NewestRows):
            batch = batch.filter(pa.array(~keep.superseded(row_keys(batch))))
        elif keep is not None:
            batch = batch.filter(pa.array(keep[offset : offset + size]))
        offset += size
        writer.add(batch)
        if progress is not None:
            progress.update(size)


def merge_into_file(
    out: Path, parts: Sequence[Path], metadata: dict[bytes, bytes], scratch: Path, row_group_rows: int
) -> int:
    """Write ``out`` (if it exists) plus ``parts`` as one new file with ``metadata``; replace ``out`` atomically.

    Returns the number of rows of the new file.
    """
    newest = NewestRows(parts)
    old_rows = pq.ParquetFile(out).metadata.num_rows if out.is_file() else 0
    total = old_rows + sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    temporary = scratch / (out.name + ".tmp")
    writer = _RowGroupWriter(temporary, PARQUET_SCHEMA.with_metadata(metadata), row_group_rows)
    try:
        with tqdm(total=total, unit="row", desc=f"merging {out.name}", disable=None, leave=False) as progress:
            if old_rows:
                _copy_rows(out, newest, writer, progress)
            for index, part in enumerate(parts):
                _copy_rows(part, newest.mask(index), writer, progress)
        writer.close()
    except BaseException:
        writer.abandon()
        raise
    publish(temporary, out)
    return pq.ParquetFile(out).metadata.num_rows


def _rewrite(source: Path, keep: np.ndarray | NewestRows, destination: Path, row_group_rows: int) -> None:
    """Write the kept rows of ``source`` to ``destination`` atomically; none kept: no file."""
    temporary = destination.with_name(f".{destination.name}.tmp")  # hidden: dataset readers skip it
    writer = _RowGroupWriter(temporary, PARQUET_SCHEMA, row_group_rows)
    try:
        _copy_rows(source, keep, writer)
        writer.close()
    except BaseException:
        writer.abandon()
        raise
    if pq.ParquetFile(temporary).metadata.num_rows:
        publish(temporary, destination)
    else:
        temporary.unlink()
        destination.unlink(missing_ok=True)
        fsync_folder(destination.parent)


def merge_into_dataset(
    dataset_parts: Sequence[Path], parts: Sequence[Path], destinations: Sequence[Path], row_group_rows: int
) -> None:
    """Move ``parts`` into the dataset as ``destinations``, first removing the rows they supersede.

    Each step is atomic and the step order makes a crash harmless: a rerun
    finds the parts not yet moved and treats those already moved as old.
    """
    newest = NewestRows(parts)
    for old in tqdm(dataset_parts, unit="file", desc="updating dataset", disable=None, leave=False):
        if newest.superseded(_file_keys(old)).any():
            _rewrite(old, newest, old, row_group_rows)
    for index, (part, destination) in enumerate(zip(parts, destinations)):
        mask = newest.mask(index)
        if mask is None or mask.all():
            os.replace(part, destination)
            fsync_folder(destination.parent)
        else:
            _rewrite(part, mask, destination, row_group_rows)
            part.unlink()
