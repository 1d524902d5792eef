"""A selection written as a Parquet manifest that `score` and `export` read back.

Columns: ``path`` (absolute), ``album``, ``id`` (the image id, so re-scoring
the manifest updates the same rows), then what the read side knew:
``model_id``, ``rank``, ``mean``, ``std``, ``captured_at`` — or, for a
manifest of errors, ``kind`` and ``message``. ``score`` carries the extra
columns through; ``export --from-manifest`` uses ``rank`` for the
album/rank layout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eat_curate.errors import StoreError
from eat_curate.library.queries import ErrorRow, SelectedImage

SCORES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("album", pa.string()),
        pa.field("id", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("rank", pa.int64(), nullable=False),
        pa.field("mean", pa.float64(), nullable=False),
        pa.field("std", pa.float64(), nullable=False),
        pa.field("captured_at", pa.timestamp("us")),
    ]
)
ERRORS_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("album", pa.string()),
        pa.field("id", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
    ]
)
_ROWS_PER_GROUP = 50_000


def _score_row(image: SelectedImage, model_id: str) -> dict:
    return {
        "path": image.path,
        "album": image.album,
        "id": image.image_id,
        "model_id": model_id,
        "rank": image.rank,
        "mean": image.mean,
        "std": image.std,
        "captured_at": image.captured_at,
    }


def _error_row(error: ErrorRow, model_id: str) -> dict:
    return {
        "path": error.path,
        "album": error.album,
        "id": error.image_id,
        "model_id": model_id,
        "kind": error.kind,
        "message": error.message,
    }


def write_manifest(rows: Iterable[SelectedImage | ErrorRow], path: Path, model_id: str, errors: bool = False) -> int:
    """Write ``rows`` to a new Parquet file at ``path``; returns the row count.

    Refuses to replace an existing file. Written to a temporary sibling and
    renamed, so ``path`` is either complete or absent.
    """
    path = Path(path)
    if path.exists():
        raise StoreError(f"--manifest {path} exists; remove it or choose another name")
    if not path.parent.is_dir():
        raise StoreError(f"--manifest {path}: the folder {path.parent} does not exist")
    schema, to_row = (ERRORS_SCHEMA, _error_row) if errors else (SCORES_SCHEMA, _score_row)
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with pq.ParquetWriter(partial, schema) as writer:
            batch: list[dict] = []
            for row in rows:
                batch.append(to_row(row, model_id))
                if len(batch) == _ROWS_PER_GROUP:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    count += len(batch)
                    batch = []
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count
