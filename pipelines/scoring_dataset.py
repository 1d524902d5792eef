"""One segment's Ray Dataset: item blocks ─► CPU decode tasks ─► a pool of scoring actors.

    from_arrow_refs(item blocks)
      .repartition(decode_rows)                  split, as it streams, to one decode task's rows
      .map_batches(decode_block)                 tasks, ``decode_cpus`` each, anywhere: read (at most
                                                 ``max_bytes`` an image), hash, decode; or, for GPU decoding,
                                                 read_block: read, hash, parse the header. Run again if
                                                 their worker dies (Ray Data retries tasks on system failures)
      .map_batches(ScoringActor, compute=pool)   actors, one model each (a GPU each on GPU clusters);
                                                 restarted if killed, with the batches they held retried

The input is the driver's to-do list (what the incremental skip left), not
the sources themselves, hence ``from_arrow_refs`` rather than a reader. It
asks each block for its metadata in a task of its own before the Dataset
starts (about 3 ms a block on 2 loaded cores), which is why item blocks are
large (``pipelines.segments``) and split here: a decode task takes a few
images, so a batch spreads over every decode slot. Resources are declared
here, at the call site; the functions and the class know nothing of Ray.
The driver reads the result with ``iter_batches``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from eat_curate.io.remote_retry import RetryPolicy
from pipelines import decode_tasks
from pipelines.scoring_actor import ScoringActor

# Decode workers are replaced after this many tasks: it bounds what a decoder plugin may leak
# (rawpy, pillow-heif), and, as actors cannot take it, it keeps Ray Data from fusing the decode
# into the scoring actors when both reserve the same CPUs (the default): decoding would then run
# inside the actors, between their batches, instead of in tasks on every free core.
DECODE_TASKS_PER_WORKER = 1000


@dataclass(frozen=True)
class ScoringPool:
    """The scoring actors: how many, and what each holds."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int | None  # torch threads of a CPU actor; None: torch's default (GPU actors)


@dataclass(frozen=True)
class ScoringPlan:
    """What every segment of a run is scored with."""

    pool: ScoringPool
    predictor_factory: Callable
    card: dict
    weights: object  # object reference to the weights' bytes, put once for the run
    device: str
    dtype: str
    input_size: int
    batch_size: int
    decode_cpus: float
    draft: bool  # reduced-scale JPEG decoding on the CPU path (the GPU path decodes at full size)
    gpu_decode: bool
    max_bytes: int | None  # the most read for one image (None: io.sources.DEFAULT_MAX_BYTES)
    remote_retry: RetryPolicy  # tries and timeouts of remote reads (score --remote-tries/--remote-timeout)


def scoring_dataset(blocks: list, plan: ScoringPlan, decode_rows: int):
    """The lazy Dataset of scored rows (``pipelines.block_columns``) for the item-row ``blocks``,
    decoded ``decode_rows`` images a task."""
    import ray.data

    dataset = ray.data.from_arrow_refs(blocks).repartition(target_num_rows_per_block=decode_rows)
    # Looked up at each run, not at import, so that a test can swap in a decode that fails.
    if plan.gpu_decode:
        prepare, prepare_args = decode_tasks.read_block, {"max_bytes": plan.max_bytes, "retry": plan.remote_retry}
    else:
        prepare, prepare_args = decode_tasks.decode_block, {
            "size": plan.input_size, "draft": plan.draft, "max_bytes": plan.max_bytes, "retry": plan.remote_retry}
    # One task per block of ``decode_rows``: the engine sizes them to spread one batch over the decode slots.
    dataset = dataset.map_batches(prepare, batch_format="pyarrow", fn_kwargs=prepare_args,
                                  num_cpus=plan.decode_cpus, max_calls=DECODE_TASKS_PER_WORKER)
    pool = plan.pool
    dataset = dataset.map_batches(
        ScoringActor,
        batch_format="pyarrow",
        batch_size=plan.batch_size,
        compute=ray.data.ActorPoolStrategy(size=pool.actors),  # a fixed pool (``concurrency=`` is deprecated)
        num_cpus=pool.num_cpus,
        num_gpus=pool.num_gpus,
        fn_constructor_kwargs={
            "factory": plan.predictor_factory, "card": plan.card, "weights": [plan.weights], "device": plan.device,
            "dtype": plan.dtype, "threads": pool.threads, "gpu_decode": plan.gpu_decode, "batch_size": plan.batch_size,
        },
    )
    quiet(dataset.context)
    return dataset


def quiet(context) -> None:
    """No Ray Data progress bars or execution banners: the engine reports progress through its own."""
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    # Else it advises, once, to turn its progress bars back on.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    executor = logging.getLogger("ray.data._internal.execution.streaming_executor")
    if not any(isinstance(each, _OffTheConsole) for each in executor.filters):
        executor.addFilter(_OffTheConsole())


class _OffTheConsole(logging.Filter):
    """Keeps Ray Data's INFO lines ("Dataset ... execution finished in 7.69 seconds", one a run) off the
    console, in its log file only: Ray Data's console handler skips records marked ``hide``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            record.hide = True
        return True
