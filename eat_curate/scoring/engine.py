"""The in-process engine: a bounded decode pool overlapping one predictor, streaming to sinks.

    items ─► (chunks of 1,000) incremental skip ─► thread pool: read + decode
          ─► batches in input order ─► Predictor ─► records ─► every sink

Memory is bounded by the window of in-flight decodes and one batch, whatever
the input size. Decoding runs in threads because Pillow and PyTorch release
the GIL while they work. Records come out in input order, and an image's
record does not depend on ``workers`` or ``batch_size``.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from eat_curate.io.sources import SourceItem
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.predictor import Predictor
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import (
    DecodedItem,
    decode_item,
    decode_read_items,
    deliver,
    items_to_score,
    read_item,
    score_entries,
)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class EngineOptions:
    batch_size: int = 16
    workers: int = 0  # decode threads; 0 = one per core (at most 8)
    rescore: bool = False  # score even what the sinks already hold
    draft: bool = True  # reduced-scale JPEG decoding (see eat_curate.io.decode)
    gpu_decode: bool = False  # JPEGs decoded in batches on the predictor's device (nvJPEG)
    lookup_chunk: int = 1000  # items per incremental lookup
    max_bytes: int | None = None  # the most read for one image; None: io.sources.DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.workers < 0:
            raise ValueError("workers must be 0 (auto) or more")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.workers = self.workers or default_workers()


class _Batcher:
    """Collects decoded items in input order and flushes them through the model to the sinks."""

    def __init__(self, predictor: Predictor, sinks: Sequence, run: RunInfo, batch_size: int,
                 summary: RunSummary, progress: Progress, finish: Callable[[list], list[DecodedItem]]) -> None:
        self.predictor = predictor
        self.finish = finish  # turns what the pool produced into decoded items (the GPU decodes here)
        self.sinks = sinks
        self.run = run
        self.batch_size = batch_size
        self.summary = summary
        self.progress = progress
        self.pending: list[DecodedItem] = []
        self.decoded_ok = 0
        # Bad inputs are flushed without waiting for a full batch of good ones.
        self.max_pending = 4 * batch_size

    def add(self, entry: DecodedItem) -> None:
        self.pending.append(entry)
        self.decoded_ok += entry.ok
        if self.decoded_ok >= self.batch_size or len(self.pending) >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        records = score_entries(self.finish(self.pending), self.predictor, self.predictor.model_id, self.run.run_id)
        deliver(records, self.sinks, self.summary, self.progress)
        self.pending.clear()
        self.decoded_ok = 0


class LocalEngine:
    """Scores in this process: ``--engine local``."""

    name = "local"

    def __init__(self, predictor: Predictor, options: EngineOptions | None = None) -> None:
        self.predictor = predictor
        self.options = options or EngineOptions()

    def run(
        self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress, summary: RunSummary
    ) -> RunSummary:
        """Score ``items`` into ``sinks``, counting into ``summary`` (kept up to date if interrupted)."""
        options = self.options
        size = self.predictor.input_size
        if options.gpu_decode:
            from eat_curate.scoring.gpu_decode import GpuJpegDecoder

            decoder = GpuJpegDecoder(size, self.predictor.device)  # its CPU fallback decodes as nvJPEG: full size
            task = partial(read_item, with_header=True, max_bytes=options.max_bytes)
            finish = partial(decode_read_items, decoder=decoder)
        else:
            task, finish = partial(decode_item, size=size, draft=options.draft, max_bytes=options.max_bytes), list
        batcher = _Batcher(self.predictor, sinks, run, options.batch_size, summary, progress, finish)
        window: deque[Future] = deque()
        in_flight = max(2 * options.batch_size, 4 * options.workers)
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="decode")
        try:
            todo = items_to_score(items, sinks, self.predictor.model_id, options.rescore, options.lookup_chunk,
                                  summary, progress)
            for item in todo:
                window.append(pool.submit(task, item))
                while len(window) >= in_flight:
                    batcher.add(window.popleft().result())
            while window:
                batcher.add(window.popleft().result())
            batcher.flush()
        finally:
            # On an interrupt, decodes not yet batched are dropped: nothing of
            # them was written, so a resumed run does them again.
            pool.shutdown(wait=True, cancel_futures=True)
            summary.seconds = time.perf_counter() - started
        return summary
