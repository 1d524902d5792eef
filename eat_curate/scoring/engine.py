"""The in-process engine: reading, decoding, the model and the writing overlap, streaming to sinks.

    lister (incremental skip) ─► readers: read + hash + decode (thread pool)
        ─► prep: batches, pixels into reused buffers (GPU decode on its own stream with --gpu-decode)
        ─► compute: the Predictor (its own stream on a GPU) ─► writer: records ─► every sink

Each stage runs on a thread of its own with bounded queues between them
(:mod:`eat_curate.scoring.pipeline`; the stages: :mod:`eat_curate.scoring.stages`),
so a run takes about as long as its slowest stage. Memory is bounded by
the window of in-flight reads and a few batches, whatever the input size.
Decoding runs in threads because Pillow and PyTorch release the GIL while
they work. Records come out in input order, and an image's record does not
depend on ``workers``, ``batch_size`` or timing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from eat_curate.io.sources import SourceItem
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.buffers import BatchSlot, SlotPool, Streams
from eat_curate.scoring.gpu_decode import GpuJpegDecoder
from eat_curate.scoring.pipeline import Pipeline
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.stages import Compute, Prep, RecordWriter, batch_model, read_for_device, read_on_cpu
from eat_curate.scoring.tasks import LOOKUP_CHUNK, items_to_score

CPU_BATCH_SIZE = 16  # the CPU default all along (README's bench score figures are at 16)
GPU_BATCH_SIZE = 256  # the batch scripts/gpu_check.py measures at: 16 leaves most of an H100 idle per launch
QUEUE_DEPTH = 2  # batches waiting between prep and compute, and between compute and the writer
# Slots (buffers of a batch): one being prepared, one being scored, one being written, and the queues.
SLOTS = 2 * QUEUE_DEPTH + 3


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def default_batch_size(device: torch.device | str) -> int:
    """The batch size that suits ``device``: large on a GPU, small on a CPU."""
    return GPU_BATCH_SIZE if torch.device(device).type == "cuda" else CPU_BATCH_SIZE


@dataclass
class EngineOptions:
    batch_size: int = CPU_BATCH_SIZE  # the CLI passes default_batch_size(device) when none is given
    workers: int = 0  # decode threads; 0 = one per core (at most 8)
    rescore: bool = False  # score even what the sinks already hold
    draft: bool = True  # reduced-scale JPEG decoding (see eat_curate.io.decode)
    gpu_decode: bool = False  # JPEGs decoded in batches on the predictor's device (nvJPEG)
    lookup_chunk: int = LOOKUP_CHUNK  # items per incremental lookup
    max_bytes: int | None = None  # the most read for one image; None: io.sources.DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.workers < 0:
            raise ValueError("workers must be 0 (auto) or more")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.workers = self.workers or default_workers()

    @property
    def window(self) -> int:
        """Inputs queued for the readers or read and waiting for prep: enough to keep every reader busy."""
        return max(2 * self.batch_size, 4 * self.workers)

    @property
    def max_in_flight(self) -> int:
        """The most inputs between being handed to the readers and being written.

        The window, what prep gathers (a batch is cut at 4 x batch_size
        entries at most), and a batch in each slot.
        """
        return self.window + (SLOTS + 1) * 4 * self.batch_size


@dataclass
class ComputeTime:
    """How busy the model's stream was in a run (the model's thread on a CPU)."""

    busy_s: float  # running the model and copying its results
    span_s: float  # from the first batch's start to the last one's end
    wall_s: float  # the whole run, listing and writing included

    @property
    def busy_share(self) -> float:
        """Of the span: how close the pipeline came to keeping the model busy once it started."""
        return self.busy_s / self.span_s if self.span_s else 0.0


class LocalEngine:
    """Scores in this process: ``--engine local``."""

    name = "local"

    def __init__(self, predictor, options: EngineOptions | None = None) -> None:
        """``predictor``: a :class:`~eat_curate.scoring.predictor.Predictor`, or anything with its
        ``input_size``, ``model_id`` and ``predict`` (such as ``scoring.constant.ConstantPredictor``)."""
        self.predictor = predictor
        self.options = options or EngineOptions()
        self.compute_time: ComputeTime | None = None  # of the last run

    def run(
        self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress, summary: RunSummary
    ) -> RunSummary:
        """Score ``items`` into ``sinks``, counting into ``summary`` (kept up to date if interrupted)."""
        options, predictor = self.options, self.predictor
        size = predictor.input_size
        model = batch_model(predictor)
        if hasattr(model, "use_batch_size"):
            model.use_batch_size(options.batch_size)  # a compiled forward is traced at the run's batch size
        streams = Streams(model.device)
        pipeline: Pipeline = Pipeline(options.workers, options.window, QUEUE_DEPTH)
        slots = SlotPool(pipeline.channel(SLOTS, "slots"), partial(BatchSlot.allocate, options.batch_size, size, streams))
        if options.gpu_decode:
            decoder = GpuJpegDecoder(size, model.device)
            # The CPU fallback decodes as nvJPEG does, at full size: one way of scoring per run.
            read = partial(read_for_device, size=size, fallback_draft=False, max_bytes=options.max_bytes)
        else:
            decoder = None
            read = partial(read_on_cpu, size=size, draft=options.draft, max_bytes=options.max_bytes)
        prep = Prep(slots, streams, options.batch_size, size, decoder, fallback_draft=False)
        write = RecordWriter(sinks, summary, progress, predictor.model_id, run.run_id, slots)
        compute = Compute(model, streams)
        started = time.perf_counter()
        try:
            todo = items_to_score(items, sinks, predictor.model_id, options.rescore, options.lookup_chunk,
                                  summary, progress)
            pipeline.run(todo, read, prep, compute, write)
        finally:
            # On an interrupt, batches not yet written are dropped: nothing of them was
            # written, so a resumed run does them again.
            if streams.cuda:
                torch.cuda.synchronize(streams.device)  # no buffer is freed under a kernel still using it
            summary.seconds = time.perf_counter() - started
        self.compute_time = ComputeTime(compute.clock.busy_seconds(), compute.clock.span_seconds(), summary.seconds)
        return summary
