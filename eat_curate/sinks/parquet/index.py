"""What a model has already scored in Parquet output, as a compact in-memory index.

One sorted int64 array of hashes of (key, version) for the model's success
rows (see ``eat_curate.incremental`` for versions): 8 to 16 bytes per row, built by
reading seven columns one row group at a time, answered with a binary search.
Hashes come from Python's ``hash`` and live only in this process; a false
"already scored" needs a 64-bit collision (odds ~1e-6 at ten million rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from tqdm import tqdm

from eat_curate.incremental import InputVersion, stored_versions
from eat_curate.sinks.parquet.footer import parquet_file

# What tells whether a row is a current success of a model: its key, model, version, error and score.
SCORED_COLUMNS = ["path", "model_id", "bytes", "mtime", "content_hash", "error_kind", "mean"]
_BATCH_ROWS = 65_536


class ScoredIndex:
    def __init__(self, hashes: np.ndarray) -> None:
        self._hashes = hashes  # sorted, unique

    def __len__(self) -> int:
        return len(self._hashes)

    @classmethod
    def build(cls, files: Iterable[Path], model_id: str) -> ScoredIndex:
        files = list(files)
        chunks = []
        rows = sum(parquet_file(path).metadata.num_rows for path in files)
        progress = tqdm(total=rows, unit="row", desc="indexing scored rows", disable=None, leave=False)
        for path in files:
            for batch in parquet_file(path).iter_batches(batch_size=_BATCH_ROWS, columns=SCORED_COLUMNS):
                progress.update(batch.num_rows)
                # A success whose mean another tool made NaN or null is no score: the run scores it again.
                scored = pc.fill_null(pc.is_finite(batch.column("mean")), False)
                wanted = pc.and_(
                    pc.and_(pc.equal(batch.column("model_id"), model_id), pc.is_null(batch.column("error_kind"))),
                    scored,
                )
                rows = batch.filter(wanted)
                if not rows.num_rows:
                    continue
                columns = [rows.column(name).to_pylist() for name in ("path", "bytes", "mtime", "content_hash")]
                chunks.append(
                    np.fromiter(
                        (
                            hash((path, version))
                            for path, size, mtime, content_hash in zip(*columns)
                            for version in stored_versions(size, mtime, content_hash)
                        ),
                        dtype=np.int64,
                    )
                )
        progress.close()
        return cls(np.unique(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.int64))

    def done(self, inputs: Sequence[InputVersion]) -> set[str]:
        """Keys of ``inputs`` whose current version is in the index."""
        if not len(self._hashes) or not inputs:
            return set()
        wanted = np.fromiter((hash((one.key, one.version)) for one in inputs), dtype=np.int64, count=len(inputs))
        found = np.searchsorted(self._hashes, wanted).clip(max=len(self._hashes) - 1)
        hits = self._hashes[found] == wanted
        return {one.key for one, hit in zip(inputs, hits) if hit}
