"""Source items as Arrow rows: how the driver hands its to-do list to Ray Data.

Each :class:`SourceItem` becomes one row of :data:`ITEM_SCHEMA`, plain typed
columns (no pickled objects), and a worker turns the row back into the item
to read it. ``extra`` travels as JSON text, as the sinks store it: workers
never need it, only the records built on the driver do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from eat_curate.io.sources import SourceItem

ITEM_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("album", pa.string()),
    pa.field("data", pa.large_binary()),  # embedded bytes (a manifest's `image` column); large: images up to 512 MB
    pa.field("content_hash", pa.string()),
    pa.field("size", pa.int64()),
    pa.field("mtime", pa.float64()),
    pa.field("extra", pa.string()),  # JSON text
    pa.field("problem", pa.string()),
    pa.field("location", pa.string()),
])

_PLAIN = [name for name in ITEM_SCHEMA.names if name != "extra"]


def items_table(items: Sequence[SourceItem]) -> pa.Table:
    """``items`` as one Arrow table of :data:`ITEM_SCHEMA`, column by column."""
    columns = {name: [getattr(item, name) for item in items] for name in _PLAIN}
    columns["extra"] = [extra_text(item.extra) for item in items]
    return pa.Table.from_pydict(columns, schema=ITEM_SCHEMA)


def readable_items(rows: pa.Table) -> list[SourceItem]:
    """The items of ``rows`` (item rows) as a worker reads them: everything but ``extra``."""
    columns = {name: rows[name].to_pylist() for name in _PLAIN}
    return [SourceItem(**{name: columns[name][i] for name in _PLAIN}) for i in range(rows.num_rows)]


def extra_text(extra: dict | None) -> str | None:
    return None if extra is None else json.dumps(extra, ensure_ascii=False, default=str)


def extra_value(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)
