"""The driver's to-do list, cut into segments of blocks in the object store: the Ray engine's input.

A Ray Dataset is planned over inputs that exist when it starts, and Ray Data
has no source fed by the driver as it goes (a task that streams blocks
buffers them up to ``target_max_block_size``, 128 MiB, before any is seen).
So the driver streams its items (after the incremental skip) into blocks of
``block_rows`` item rows, puts each in the object store as soon as it is
full, and keeps only the references; every ``segment_rows`` rows or
``segment_bytes`` bytes, the blocks so far form one segment, which the
engine scores as one Dataset. The driver's memory stays flat whatever the
input's size.

Blocks are large (:data:`ITEM_BLOCK_ROWS`): each costs the driver a put and
Ray Data a metadata task, about 2 and 3 ms on 2 loaded cores, so blocks of
16 rows cost 5 minutes before a million-row segment could start, and
blocks of 1,024 rows 5 seconds. The Dataset splits them to the decode
tasks' size itself (``pipelines.scoring_dataset``).

Listing overlaps scoring (:class:`SegmentCutter`): the first segment closes
after ``first_segment_s`` of listing, whatever it holds by then, so scoring
starts at once; each later one is listed between the batches of the one
being scored. A segment costs one start of the scoring actors (their model
load), so a run whose listing takes less than ``first_segment_s`` (most of
them) is one segment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from eat_curate.io.sources import SourceItem
from eat_curate.scoring.tasks import chunked
from pipelines.item_rows import items_table

ITEM_BLOCK_ROWS = 1024
FIRST_SEGMENT_S = 10.0  # listing before the first segment starts; a listing done sooner is one segment
LISTING_SLICE_S = 0.05  # listing between two batches of the segment being scored


@dataclass
class Segment:
    blocks: list = field(default_factory=list)  # object references to item-row tables
    rows: int = 0
    bytes: int = 0


class SegmentCutter:
    """Lists ``items`` into segments, a block at a time, for as long as the engine lets it.

    ``fill(seconds)`` lists blocks into the open segment until it is full,
    the items end, or ``seconds`` have passed (None: no time limit); ``take()``
    then hands it over and opens the next. So the engine decides when
    listing runs: before the first segment, and between batches later.
    """

    def __init__(self, items: Iterable[SourceItem], block_rows: int, segment_rows: int, segment_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._chunks = chunked(items, block_rows)
        self.segment_rows, self.segment_bytes = segment_rows, segment_bytes
        self._clock = clock
        self._open = Segment()
        self.listed_all = False

    @property
    def full(self) -> bool:
        return self._open.rows >= self.segment_rows or self._open.bytes >= self.segment_bytes

    def fill(self, seconds: float | None) -> None:
        """List blocks into the open segment for at most ``seconds`` (at least one block, if any is left)."""
        import ray

        deadline = None if seconds is None else self._clock() + seconds
        while not (self.full or self.listed_all):
            chunk = next(self._chunks, None)
            if chunk is None:
                self.listed_all = True
                return
            table = items_table(chunk)
            self._open.blocks.append(ray.put(table))
            self._open.rows += table.num_rows
            self._open.bytes += table.nbytes
            if deadline is not None and self._clock() >= deadline:
                return

    def take(self) -> Segment | None:
        """The open segment (None when nothing is left), and a new one opened."""
        segment, self._open = self._open, Segment()
        return segment if segment.blocks else None


def segments(items: Iterable[SourceItem], block_rows: int, segment_rows: int,
             segment_bytes: int) -> Iterator[Segment]:
    """``items`` as segments of object-store blocks of ``block_rows`` rows, each at most about
    ``segment_rows`` rows and ``segment_bytes`` bytes (the block that crosses a limit ends its segment),
    each listed whole before it is handed over."""
    cutter = SegmentCutter(items, block_rows, segment_rows, segment_bytes)
    while True:
        cutter.fill(None)
        segment = cutter.take()
        if segment is None:
            return
        yield segment
