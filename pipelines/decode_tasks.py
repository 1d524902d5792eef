"""The Ray engine's CPU stage: Ray Data ``map_batches`` functions from item rows to decoded (or read) rows.

Each reads its items' bytes (never more than ``max_bytes`` an image: a larger
one is a ``too-large`` error row, as in the in-process engine), hashes them,
and either decodes them to the model's pixels (CPU decoding) or parses only
their headers (GPU decoding: the scoring actor decodes the bytes).

In a module of their own so that their workers start light. Ray ships a
task function by reference: each worker process imports the function's
module before its first task. This module imports only decoding (Pillow,
numpy, scipy) and Arrow, not torch and the model, which the scoring actors
alone need: about 0.9 s instead of 8 s of imports per worker on a 2-core
machine, paid again whenever Ray replaces an idle worker.
"""

from __future__ import annotations

import pyarrow as pa

from eat_curate.io import remote_retry
from eat_curate.io.remote_retry import RetryPolicy
from eat_curate.scoring.tasks import decode_item, read_item
from pipelines.block_columns import decoded_rows, read_rows
from pipelines.item_rows import readable_items


def decode_block(items: pa.Table, size: int, draft: bool, max_bytes: int | None,
                 retry: RetryPolicy | None = None) -> pa.Table:
    """Read and decode every item row to the model's pixels and the image's facts (CPU decoding).
    ``retry``: the driver's policy for remote reads, installed in this worker (else the defaults)."""
    _use_drivers_policy(retry)
    decoded = [decode_item(item, size, draft, max_bytes).decoded for item in readable_items(items)]
    return decoded_rows(items, decoded, size)


def read_block(items: pa.Table, max_bytes: int | None, retry: RetryPolicy | None = None) -> pa.Table:
    """For GPU decoding: every item's bytes and parsed header; the scoring actor decodes them."""
    _use_drivers_policy(retry)
    return read_rows(items, [read_item(item, with_header=True, max_bytes=max_bytes) for item in readable_items(items)])


def _use_drivers_policy(retry: RetryPolicy | None) -> None:
    # A worker process is shared by the tasks of one run (and of later runs on a long-lived cluster):
    # set every time, so a run never inherits an earlier run's policy.
    remote_retry.use_policy(retry or RetryPolicy())
