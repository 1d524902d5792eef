"""The Ray engine (``--engine ray``): Ray Data on a Ray cluster, the sinks on the driver.

    driver:   items ─► incremental skip ─► item blocks in the object store, by segment (pipelines.segments)
    Ray Data: decode tasks (CPU, any node) ─► scoring actors (one model each; one GPU each on GPU clusters)
              (pipelines.scoring_dataset, one Dataset per segment)
    driver:   iter_batches ─► ScoreRecords (pipelines.score_records) ─► the same sinks, counted as
              the in-process engine counts them

The steps are those of :mod:`eat_curate.scoring.tasks`, with the same
options (draft, GPU decoding at full size, the per-image read cap
``max_bytes``), so both engines write identical records. Blocks carry Arrow
columns (pipelines.block_columns): item rows, then facts and pixels (or
bytes), then scores. Fault tolerance is Ray Data's: a decode task whose
worker dies runs again, a killed scoring actor is restarted (its model
loaded again) and the batches it held are retried, and an image is written
once, when its scored row reaches the driver. Records arrive in no fixed
order; the sinks do not need one.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from eat_curate.io import remote_retry
from eat_curate.errors import EatCurateError
from eat_curate.io.sources import SourceItem
from eat_curate.model.card import WEIGHTS_FILE, read_card
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.engine import EngineOptions
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import deliver, items_to_score
from pipelines.score_records import records_from_block
from pipelines.scoring_actor import build_predictor
from pipelines.scoring_dataset import ScoringPlan, ScoringPool, scoring_dataset
from pipelines.segments import FIRST_SEGMENT_S, ITEM_BLOCK_ROWS, LISTING_SLICE_S, SegmentCutter

ACTOR_NAMESPACE = "eat-curate"
SEGMENT_ROWS = 1_000_000  # items per segment; each segment starts the scoring actors anew
SEGMENT_SHARE_OF_OBJECT_STORE = 0.25  # the most of the object store one segment's item rows take


class RayEngineError(EatCurateError):
    """Ray is missing, unreachable, or the cluster cannot host the requested actors."""


@dataclass
class RayOptions:
    address: str | None = None  # None: RAY_ADDRESS if set, else an embedded local Ray for this run
    actors: int | None = None  # default: one per GPU (GPU clusters), else 1
    gpus_per_actor: float = 1.0
    cpus_per_actor: float | None = None  # default 1; fractional values share a core
    actor_threads: int | None = None  # torch threads per CPU actor (default: ceil(cpus_per_actor))
    decode_cpus: float = 1.0  # CPUs reserved by each decode task
    device: str = "auto"
    dtype: str = "auto"
    decode_chunk: int | None = None  # images per decode task (default: see decode_chunk_size)
    local_cpus: int | None = None  # CPUs of an embedded local Ray (default: all)
    segment_rows: int = SEGMENT_ROWS
    segment_bytes: int | None = None  # default: a quarter of the cluster's object store
    first_segment_s: float | None = FIRST_SEGMENT_S  # listing before scoring starts (None: the whole segment)
    block_rows: int = ITEM_BLOCK_ROWS  # item rows per object-store block (split to decode_chunk by the Dataset)
    compile: bool | None = None  # torch.compile the actors' forward; None: on GPUs (as the in-process engine)
    cuda_graphs: bool = False  # and replay it as CUDA graphs


@contextmanager
def ray_session(address: str | None, local_cpus: int | None) -> Iterator[None]:
    """Connect to ``address`` (or RAY_ADDRESS), or start a local Ray on 127.0.0.1; disconnect/stop at the end."""
    target = address or os.environ.get("RAY_ADDRESS")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not target:
        # A single-node Ray for this run only: keep its traffic on the loopback interface
        # (Ray otherwise binds to the machine's network address). Read when Ray is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise RayEngineError("the Ray engine needs Ray: pip install 'eat-curate[ray]'") from None
    if ray.is_initialized():  # the caller owns the session (a job entrypoint, a test)
        yield
        return
    # ray.init makes SIGTERM exit the driver at once; the caller's handler stays (`score` ends the run
    # on SIGTERM as on Ctrl-C, with the run record saying so).
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if target:
            ray.init(address=target, namespace=ACTOR_NAMESPACE, log_to_driver=False)
        else:
            cpus = local_cpus or os.cpu_count() or 1
            ray.init(num_cpus=local_cpus, include_dashboard=False, namespace=ACTOR_NAMESPACE, log_to_driver=False,
                     _system_config=_local_worker_pool(cpus))
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayEngineError(f"cannot start or reach Ray at {target or 'a local instance'}: {error}") from None
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)
    try:
        yield
    finally:
        ray.shutdown()


def _local_worker_pool(cpus: int) -> dict:
    """Worker-pool settings of an embedded Ray.

    Ray keeps about one idle worker per CPU and kills the rest after a second.
    With fractional decode tasks beside a scoring actor that is too few on a
    small machine: decode workers are killed between batches and restarted,
    each paying seconds of imports, and the actor waits (measured on 2 cores:
    2.4 s gaps, a third of the in-process engine's throughput).
    """
    return {"num_workers_soft_limit": 2 * cpus + 2, "idle_worker_killing_time_threshold_ms": 60_000}


MIN_DECODE_CHUNK = 16


def decode_chunk_size(batch_size: int, decode_slots: float, requested: int | None = None) -> int:
    """Images per decode task (one item block each): ``requested``, else a batch split evenly over the
    decode slots, but at least ``MIN_DECODE_CHUNK`` and at most a batch.

    Splitting a batch gets its first images to the actors sooner on a large
    cluster; more tasks than slots spread nothing further, and each block costs
    Ray Data milliseconds (a task, a result object, metadata on the driver): on
    2 cores, 400 2-MP JPEGs in batches of 16 took 22.5 s in blocks of 4 and
    16.2 s in blocks of 16.
    """
    if requested:
        return requested
    return min(batch_size, max(MIN_DECODE_CHUNK, math.ceil(batch_size / max(decode_slots, 1.0))))


def scoring_pool(options: RayOptions, cluster_gpus: float) -> ScoringPool:
    """How many scoring actors, and the resources each holds: a GPU each where the cluster has GPUs."""
    device = options.device
    if cluster_gpus and device != "cpu":
        count = options.actors or max(1, math.floor(cluster_gpus / options.gpus_per_actor))
        if count * options.gpus_per_actor > cluster_gpus:
            raise RayEngineError(
                f"{count} actors x {options.gpus_per_actor} GPU need {count * options.gpus_per_actor:g} GPUs; "
                f"the cluster has {cluster_gpus:g}"
            )
        return ScoringPool(count, options.cpus_per_actor or 1, options.gpus_per_actor, options.actor_threads)
    if device.startswith("cuda"):
        raise RayEngineError(f"--device {device} asked for, but the Ray cluster has no GPUs")
    cpus = options.cpus_per_actor or 1
    return ScoringPool(options.actors or 1, cpus, 0, options.actor_threads or max(1, math.ceil(cpus)))


def last_line(message: str) -> str:
    """The last line of a Ray error (its cause, after the remote traceback)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message


class RayEngine:
    """Scores on a Ray cluster: ``--engine ray``."""

    name = "ray"

    def __init__(
        self,
        model_folder: Path,
        options: EngineOptions | None = None,
        ray_options: RayOptions | None = None,
        predictor_factory: Callable | None = None,
    ) -> None:
        """``predictor_factory(card, weights, device, dtype)`` builds each actor's predictor (default: EAT,
        compiled as ``ray_options`` say)."""
        self.model_folder = Path(model_folder)
        self.card = read_card(self.model_folder)
        self.options = options or EngineOptions()
        self.ray_options = ray_options or RayOptions()
        self.predictor_factory = predictor_factory or partial(
            build_predictor, compile=self.ray_options.compile, cuda_graphs=self.ray_options.cuda_graphs)
        self.scoring_actors = 0  # of the latest run, once it has started

    def run(
        self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress, summary: RunSummary
    ) -> RunSummary:
        started = time.perf_counter()
        with ray_session(self.ray_options.address, self.ray_options.local_cpus):
            try:
                self._run(items, sinks, run, progress, summary)
            finally:
                summary.seconds = time.perf_counter() - started
        return summary

    def _run(self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress,
             summary: RunSummary) -> None:
        import ray

        options, ray_options = self.options, self.ray_options
        cluster = ray.cluster_resources()
        plan = self.scoring_plan(scoring_pool(ray_options, cluster.get("GPU", 0)))
        self.scoring_actors = plan.pool.actors
        progress.note(actors=plan.pool.actors)
        decode_slots = cluster.get("CPU", 1) / max(ray_options.decode_cpus, 0.1)
        decode_rows = decode_chunk_size(options.batch_size, decode_slots, ray_options.decode_chunk)
        segment_bytes = ray_options.segment_bytes or int(
            SEGMENT_SHARE_OF_OBJECT_STORE * cluster.get("object_store_memory", 2**31))
        todo = items_to_score(items, sinks, self.card.model_id, options.rescore, options.lookup_chunk,
                              summary, progress)
        cutter = SegmentCutter(todo, ray_options.block_rows, ray_options.segment_rows, segment_bytes)
        cutter.fill(ray_options.first_segment_s)
        while (segment := cutter.take()) is not None:
            scored = scoring_dataset(segment.blocks, plan, decode_rows)
            try:
                for rows in scored.iter_batches(batch_format="pyarrow", batch_size=None):
                    deliver(records_from_block(rows, self.card.model_id, run.run_id), sinks, summary, progress)
                    cutter.fill(LISTING_SLICE_S)  # the next segment, while Ray Data works on this one
            except ray.exceptions.ActorDiedError as error:
                # Killed actors are restarted; one dies for good when its model does not load.
                raise RayEngineError(f"the scoring actors cannot run: {last_line(str(error))}") from None
            cutter.fill(None)  # what is left of the next segment

    def scoring_plan(self, pool: ScoringPool) -> ScoringPlan:
        """What every segment of a run is scored with, on ``pool`` (puts the weights in the object store)."""
        import ray

        options, ray_options = self.options, self.ray_options
        return ScoringPlan(
            pool=pool,
            predictor_factory=self.predictor_factory,
            card=self.card.to_dict(),
            # Put once for the run; each node fetches it once from the object store.
            weights=ray.put((self.model_folder / WEIGHTS_FILE).read_bytes()),
            device=ray_options.device,
            dtype=ray_options.dtype,
            input_size=self.card.input_size,
            batch_size=options.batch_size,
            decode_cpus=ray_options.decode_cpus,
            draft=options.draft,
            gpu_decode=options.gpu_decode,
            max_bytes=options.max_bytes,
            remote_retry=remote_retry.DEFAULT_RETRY,  # what score --remote-tries/--remote-timeout installed here
        )
