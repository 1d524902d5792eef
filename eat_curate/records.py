"""ScoreRecord: the one record every engine produces and every sink writes.

One record per input image, success or failure. On success ``probabilities``,
``mean`` and ``std`` are set and ``error`` is None; on failure they are None
and ``error_kind``/``error`` say why. Image facts (hash, size, dimensions)
are filled as far as they could be read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

import pyarrow as pa

from eat_curate.runs import utc_now

NUM_BINS = 10

# Short, stable reasons an image could not be scored (the summary groups by them).
ERROR_KINDS = (
    "empty",  # zero bytes
    "not-an-image",  # no known image format in the bytes (e.g. text named .jpg)
    "unsupported",  # an image format Pillow cannot decode here (e.g. HEIC without pillow-heif)
    "truncated",  # the data ends early or is corrupt
    "too-large",  # over the pixel limit (decompression bomb guard)
    "unreadable",  # the file or URL could not be read (permissions, missing, network)
    "internal",  # a bug: reported, never hidden
)


@dataclass
class ScoreRecord:
    image_id: str
    path: str  # file path or URI; "<manifest>#<row>" for bytes embedded in a manifest
    album: str | None
    model_id: str
    run_id: str
    content_hash: str | None = None  # sha256 of the file's bytes, hex
    bytes: int | None = None
    mtime: float | None = None  # seconds since the epoch, for incremental re-runs
    width: int | None = None  # as stored
    height: int | None = None
    oriented_width: int | None = None  # after EXIF orientation
    oriented_height: int | None = None
    format: str | None = None  # JPEG, PNG, WEBP, ...
    phash: int | None = None  # 64-bit perceptual hash as a signed int64
    captured_at: datetime | None = None  # EXIF DateTimeOriginal, naive local time as recorded
    probabilities: list[float] | None = None  # NUM_BINS values
    mean: float | None = None  # sum(i * p_i), 1..10
    std: float | None = None
    scored_at: datetime = field(default_factory=utc_now)
    error_kind: str | None = None
    error: str | None = None
    extra: dict | None = None  # manifest columns carried through

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_row(self) -> dict:
        """A flat dict matching :data:`PARQUET_SCHEMA` (``extra`` as JSON text)."""
        row = asdict(self)
        row["extra"] = json.dumps(self.extra, ensure_ascii=False, default=str) if self.extra else None
        return row

    @classmethod
    def from_row(cls, row: dict) -> "ScoreRecord":
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in row.items() if key in names}
        if isinstance(values.get("extra"), str):
            values["extra"] = json.loads(values["extra"])
        return cls(**values)


PARQUET_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("album", pa.string()),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("content_hash", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("mtime", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("oriented_width", pa.int32()),
        pa.field("oriented_height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("phash", pa.int64()),
        pa.field("captured_at", pa.timestamp("us")),
        pa.field("probabilities", pa.list_(pa.float32(), NUM_BINS)),
        pa.field("mean", pa.float32()),
        pa.field("std", pa.float32()),
        pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("error_kind", pa.string()),
        pa.field("error", pa.string()),
        pa.field("extra", pa.string()),
    ]
)


_PLAIN_COLUMNS = [name for name in PARQUET_SCHEMA.names if name != "extra"]


def records_to_table(records: Sequence[ScoreRecord]) -> pa.Table:
    """Records as an Arrow table of :data:`PARQUET_SCHEMA`, built column by column.

    Column-wise on purpose: a dict per record (``to_row``) costs about 20 times
    more, more than all the rest of the Parquet sink's work.
    """
    columns = {name: [getattr(record, name) for record in records] for name in _PLAIN_COLUMNS}
    columns["extra"] = [
        json.dumps(record.extra, ensure_ascii=False, default=str) if record.extra else None for record in records
    ]
    return pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA)
