"""ScoreRecords from a block of scored rows, on the driver: whole columns at a time.

Each column becomes Python values once (``to_pylist``, or numpy's ``tolist``
for the probabilities), then one record per row; the values are those the
in-process engine puts in its records (float32 scores as Python floats).
"""

from __future__ import annotations

import pyarrow as pa

from eat_curate.io.decoded import RECORD_FIELDS
from eat_curate.records import NUM_BINS, ScoreRecord
from pipelines.block_columns import decoded_ok
from pipelines.item_rows import extra_value


def records_from_block(rows: pa.Table, model_id: str, run_id: str) -> list[ScoreRecord]:
    """One record per scored row, in the block's order."""
    columns = {name: rows[name].to_pylist() for name in ("key", "image_id", "album", "mtime", "mean", "std",
                                                        *RECORD_FIELDS)}
    extras = [extra_value(text) for text in rows["extra"].to_pylist()]
    ok = decoded_ok(rows)
    values = rows["probabilities"].combine_chunks().flatten()  # nulls' slots are dropped: ok rows only
    probabilities = iter(values.to_numpy().reshape(-1, NUM_BINS).tolist())
    return [
        ScoreRecord(
            image_id=columns["image_id"][row],
            path=columns["key"][row],
            album=columns["album"][row],
            model_id=model_id,
            run_id=run_id,
            mtime=columns["mtime"][row],
            extra=extras[row],
            probabilities=next(probabilities) if ok[row] else None,
            mean=columns["mean"][row],
            std=columns["std"][row],
            **{name: columns[name][row] for name in RECORD_FIELDS},
        )
        for row in range(rows.num_rows)
    ]
