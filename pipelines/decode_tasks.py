"""The Ray engine's decode tasks, in a module of their own so that their workers start light.

Ray ships a task function by reference: each worker process imports the
function's module before its first task. This module imports only decoding
(Pillow, numpy, scipy), not torch and the model, which the scoring actor
alone needs: about 0.9 s instead of 8 s of imports per worker on a 2-core
machine, paid again whenever Ray replaces an idle worker.
"""

from __future__ import annotations

from eat_curate.io.sources import SourceItem
from eat_curate.scoring.tasks import DecodedItem, ReadItem, decode_item, read_item


def decode_batch(items: list[SourceItem], size: int, draft: bool) -> list[DecodedItem]:
    """Decode ``items`` to the model's pixels (CPU decoding)."""
    return [decode_item(item, size, draft) for item in items]


def read_batch(items: list[SourceItem]) -> list[ReadItem]:
    """For GPU decoding: the bytes only; the scoring actor decodes them."""
    return [read_item(item, with_header=True) for item in items]
