"""Folding a run's parts into the Parquet output so that each input has exactly one row.

A row's key is (path, model_id); the newest row of a key wins (an error
retried into a success is replaced by the success). The output eat-curate
writes never repeats a key, but another tool may have repeated rows in it:
the merge then keeps the row readers read (``KeptRows``), so the next run
writes each key once. Memory holds 8 bytes per row of the output and of the
new parts, and one row group at a time.

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
from eat_curate.sinks.parquet.footer import parquet_file

KEY_COLUMNS = ["path", "model_id"]
_READ_ROWS = 8192  # rows decoded at a time while copying; the writer gathers them into full row groups
_KEY_ROWS = 65_536  # rows whose keys are hashed at a time


def row_keys(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Hashes of the (path, model_id) of every row, as int64."""
    paths = batch.column("path").to_pylist()
    models = batch.column("model_id").to_pylist()
    return np.fromiter(map(hash, zip(paths, models)), dtype=np.int64, count=len(paths))


def _file_keys(path: Path) -> np.ndarray:
    """Hashes of the (path, model_id) of every row of ``path``, in row order, read a batch at a time."""
    batches = parquet_file(path).iter_batches(batch_size=_KEY_ROWS, columns=KEY_COLUMNS)
    return np.concatenate([row_keys(batch) for batch in batches] or [np.empty(0, dtype=np.int64)])


def _repeated(keys: np.ndarray) -> np.ndarray:
    """The values that occur more than once in ``keys``, sorted."""
    ordered = np.sort(keys)
    return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])


def _outdated(keys: np.ndarray, times: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The ``rows`` (positions) that another row of their key outdates: one with a later time, or as late and first."""
    order = np.lexsort((rows, -times, keys))  # by key, then newest first, then first in position
    ordered = keys[order]
    outdated = np.zeros(len(order), dtype=bool)
    outdated[1:] = ordered[1:] == ordered[:-1]
    return rows[order][outdated]


def _scoring_times(path: Path) -> np.ndarray:
    """The ``scored_at`` of every row of ``path``, in microseconds, in row order."""
    column = parquet_file(path).read(columns=["scored_at"]).column("scored_at")
    return column.to_numpy().astype("datetime64[us]").view(np.int64)


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


class KeptRows:
    """Which rows of finished files (the output file, or a dataset's parts in name order) a merge keeps.

    A row goes when a new row has its key, or when another row of these files
    has its key and is newer (by ``scored_at``; of rows as new, the first in
    file order wins): only another tool repeats a key, and this is the row
    readers read (``library/parquet_views.py``). Memory: 8 bytes per row.
    """

    def __init__(self, files: Sequence[Path], newest: NewestRows) -> None:
        self._files = list(files)
        keys = [_file_keys(path) for path in self._files]
        self._masks = [~newest.superseded(file_keys) for file_keys in keys]
        self._drop_older_repeats(keys)

    def _drop_older_repeats(self, keys: list[np.ndarray]) -> None:
        """Unmark every row whose key another row repeats, except the one readers read."""
        every = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
        repeated = _repeated(every)
        if not len(repeated):
            return  # the usual case: no scoring time is read
        holding = [np.isin(file_keys, repeated) for file_keys in keys]
        rows = np.nonzero(np.concatenate(holding))[0]  # positions in the files taken one after the other
        times = np.concatenate(
            [_scoring_times(path)[mask] for path, mask in zip(self._files, holding) if mask.any()]
        )
        starts = np.cumsum([0, *map(len, keys)])
        for position in _outdated(every[rows], times, rows):
            index = int(np.searchsorted(starts, position, side="right")) - 1
            self._masks[index][position - starts[index]] = False

    def mask(self, index: int) -> np.ndarray | None:
        """Rows of file ``index`` to keep; None: all of them."""
        mask = self._masks[index]
        return None if mask.all() else mask


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    yield from parquet_file(path).iter_batches(batch_size=_READ_ROWS)


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


def _copy_rows(source: Path, keep: np.ndarray | None, writer: _RowGroupWriter, progress: tqdm | None = None) -> None:
    """Copy ``source`` into ``writer``: every row (None), or the rows of a mask."""
    offset = 0
    for batch in _batches(source):
        size = batch.num_rows
        if keep is not None:
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
    old_rows = parquet_file(out).metadata.num_rows if out.is_file() else 0
    kept = KeptRows([out] if old_rows else [], newest)
    total = old_rows + sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    temporary = scratch / (out.name + ".tmp")
    writer = _RowGroupWriter(temporary, PARQUET_SCHEMA.with_metadata(metadata), row_group_rows)
    try:
        with tqdm(total=total, unit="row", desc=f"merging {out.name}", disable=None, leave=False) as progress:
            if old_rows:
                _copy_rows(out, kept.mask(0), writer, progress)
            for index, part in enumerate(parts):
                _copy_rows(part, newest.mask(index), writer, progress)
        writer.close()
    except BaseException:
        writer.abandon()
        raise
    publish(temporary, out)
    return pq.ParquetFile(out).metadata.num_rows


def _rewrite(source: Path, keep: np.ndarray, destination: Path, row_group_rows: int) -> None:
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
    kept = KeptRows(dataset_parts, newest)
    for index, old in enumerate(tqdm(dataset_parts, unit="file", desc="updating dataset", disable=None, leave=False)):
        keep = kept.mask(index)
        if keep is not None:
            _rewrite(old, keep, old, row_group_rows)
    for index, (part, destination) in enumerate(zip(parts, destinations)):
        mask = newest.mask(index)
        if mask is None or mask.all():
            os.replace(part, destination)
            fsync_folder(destination.parent)
        else:
            _rewrite(part, mask, destination, row_group_rows)
            part.unlink()
