"""A selection written as a Parquet manifest that `score` and `export` read back.

Columns: ``path`` (absolute), ``album``, ``id`` (the image id, so re-scoring
the manifest updates the same rows), then what the read side knew:
``model_id``, ``rank``, ``mean``, ``std``, ``captured_at`` and ``lead`` —
or, for a manifest of errors, ``kind`` and ``message``. Every file of a shot
(RAW + JPEG) has a row: its lead's (``lead`` true), then the others', each
with the shot's album, rank and score, so an export of the manifest carries
them together. ``score`` carries the extra
columns through; ``export --from-manifest`` uses ``rank`` for the
album/rank layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eat_curate.errors import StoreError
from eat_curate.io.whole_files import written_whole
from eat_curate.library.queries import ErrorRow, SelectedImage
from eat_curate.sinks.faults import cannot_write

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
        pa.field("lead", pa.bool_(), nullable=False),  # false: another file of the shot above it
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


def _score_rows(image: SelectedImage, model_id: str) -> list[dict]:
    shot = {
        "album": image.album,
        "model_id": model_id,
        "rank": image.rank,
        "mean": image.mean,
        "std": image.std,
        "captured_at": image.captured_at,
    }
    files = [(image.image_id, image.path), *((file.image_id, file.path) for file in image.also)]
    return [{"path": path, "id": image_id, **shot, "lead": image_id == image.image_id} for image_id, path in files]


def _error_rows(error: ErrorRow, model_id: str) -> list[dict]:
    return [
        {
            "path": error.path,
            "album": error.album,
            "id": error.image_id,
            "model_id": model_id,
            "kind": error.kind,
            "message": error.message,
        }
    ]


def write_manifest(rows: Iterable[SelectedImage | ErrorRow], path: Path, model_id: str, errors: bool = False) -> int:
    """Write ``rows`` (every file of each shot) to a new Parquet file at ``path``; returns the row count.

    Refuses to replace an existing file. Written to a temporary sibling and
    renamed, so ``path`` is either complete or absent.
    """
    path = Path(path)
    if path.exists():
        raise StoreError(f"--manifest {path} exists; remove it or choose another name")
    if not path.parent.is_dir():
        raise StoreError(f"--manifest {path}: the folder {path.parent} does not exist")
    schema, to_rows = (ERRORS_SCHEMA, _error_rows) if errors else (SCORES_SCHEMA, _score_rows)
    count = 0
    try:
        with written_whole(path) as partial, pq.ParquetWriter(partial, schema) as writer:
            batch: list[dict] = []
            for row in rows:
                batch.extend(to_rows(row, model_id))
                if len(batch) >= _ROWS_PER_GROUP:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    count += len(batch)
                    batch = []
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    except OSError as error:
        raise cannot_write(error, f"--manifest {path}: cannot write the manifest") from None
    return count
