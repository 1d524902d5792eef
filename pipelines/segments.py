"""The driver's to-do list, cut into segments of blocks in the object store: the Ray engine's input.

A Ray Dataset is planned over inputs that exist when it starts, and Ray Data
has no source fed by the driver as it goes (a task that streams blocks
buffers them up to ``target_max_block_size``, 128 MiB, before any is seen).
So the driver streams its items (after the incremental skip) into blocks of
``block_rows`` item rows, puts each in the object store as soon as it is
full, and keeps only the references; every ``segment_rows`` rows or
``segment_bytes`` bytes, the blocks so far form one segment, which the
engine scores as one Dataset. The driver's memory stays flat whatever the
input's size; a segment costs one start of the scoring actors (their model
load), so segments are large: one for most runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from eat_curate.io.sources import SourceItem
from eat_curate.scoring.tasks import chunked
from pipelines.item_rows import items_table


@dataclass
class Segment:
    blocks: list = field(default_factory=list)  # object references to item-row tables
    rows: int = 0
    bytes: int = 0


def segments(items: Iterable[SourceItem], block_rows: int, segment_rows: int,
             segment_bytes: int) -> Iterator[Segment]:
    """``items`` as segments of object-store blocks of ``block_rows`` rows, each at most about
    ``segment_rows`` rows and ``segment_bytes`` bytes (the block that crosses a limit ends its segment)."""
    import ray

    segment = Segment()
    for chunk in chunked(items, block_rows):
        table = items_table(chunk)
        segment.blocks.append(ray.put(table))
        segment.rows += table.num_rows
        segment.bytes += table.nbytes
        if segment.rows >= segment_rows or segment.bytes >= segment_bytes:
            yield segment
            segment = Segment()
    if segment.blocks:
        yield segment
