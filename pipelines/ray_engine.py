"""The Ray engine: decoding as tasks across the cluster, scoring actors pinned to GPUs, sinks on the driver.

    driver: items ─► incremental skip ─► groups of batch_size
    cluster: decode_batch task (CPU, any node) ─► ScoringActor.score (one GPU each)
    driver: records ─► the same sinks as the in-process engine

The steps are those of :mod:`eat_curate.scoring.tasks`, so both engines write
identical records. The driver holds only a bounded window of batches in
flight (backpressure), never the whole input. Weights travel once per node
through the object store. Ray restarts a killed actor and retries the batches
it held (``max_restarts``/``max_task_retries``); decode tasks are retried when
their worker dies; an image is written once, when its batch comes back.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eat_curate.errors import EatCurateError
from eat_curate.io.sources import SourceItem
from eat_curate.model.checkpoint import WEIGHTS_FILE, ModelCard, load_model_bytes, read_card
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.engine import EngineOptions
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import chunked, decode_read_items, deliver, items_to_score, score_entries
from pipelines.decode_tasks import decode_batch, read_batch

ACTOR_NAMESPACE = "eat-curate"


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
    batches_per_actor: int = 2  # queued on each actor: one computing, one ready
    decode_chunk: int | None = None  # images per decode task (default: see decode_chunk_size)
    local_cpus: int | None = None  # CPUs of an embedded local Ray (default: all)


def build_predictor(card: dict, weights: bytes, device: str, dtype: str):
    """The default predictor factory: EAT from the card and weights bytes (runs on the actor)."""
    import warnings

    from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning

    loaded = load_model_bytes(ModelCard.from_dict(card), weights)
    with warnings.catch_warnings():
        # The driver already warned the user once for this run.
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(loaded, device=device, dtype=dtype)


class ScoringActor:
    """Holds one predictor (one model on one device) for the whole run.

    The model loads on the first batch from weights that travel as an
    object-store reference beside each batch (not as a constructor argument,
    which Ray cannot guarantee to a restarted actor): a restarted actor simply
    loads it again on the batch it is retried with.
    """

    def __init__(self, factory: Callable, card: dict, device: str, dtype: str, threads: int | None,
                 gpu_decode: bool = False, draft: bool = True) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.factory, self.card, self.device, self.dtype = factory, card, device, dtype
        self.gpu_decode, self.draft = gpu_decode, draft
        self.predictor = None
        self.decoder = None
        self.incarnation = f"{os.getpid()}@{time.time():.3f}"

    def score(
        self, weights: list, model_id: str, run_id: str, *parts: list
    ) -> tuple[str, list[ScoreRecord]]:
        """Score one batch, given as the outputs of several decode tasks (``parts``, resolved by Ray).

        Items are decoded, or only read when this actor decodes on the GPU (``gpu_decode``).
        """
        entries = [entry for part in parts for entry in part]
        if self.predictor is None:
            import ray

            self.predictor = self.factory(self.card, ray.get(weights[0]), self.device, self.dtype)
            if self.gpu_decode:
                from eat_curate.scoring.gpu_decode import GpuJpegDecoder

                self.decoder = GpuJpegDecoder(self.predictor.input_size, self.predictor.device, self.draft)
        if self.decoder is not None:
            entries = decode_read_items(entries, self.decoder)
        return self.incarnation, score_entries(entries, self.predictor, model_id, run_id)


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
    try:
        if target:
            ray.init(address=target, namespace=ACTOR_NAMESPACE, log_to_driver=False)
        else:
            cpus = local_cpus or os.cpu_count() or 1
            ray.init(num_cpus=local_cpus, include_dashboard=False, namespace=ACTOR_NAMESPACE, log_to_driver=False,
                     _system_config=_local_worker_pool(cpus))
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayEngineError(f"cannot start or reach Ray at {target or 'a local instance'}: {error}") from None
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


MIN_DECODE_CHUNK = 4


def decode_chunk_size(batch_size: int, decode_slots: float, requested: int | None = None) -> int:
    """Images per decode task: ``requested``, else a batch split evenly over the cluster's decode slots.

    More tasks than slots per batch spread nothing further, and each task costs
    Ray milliseconds of scheduling and a result object: on 2 cores, batches
    of 500 8x8 PNGs in chunks of 4 ran at 279 rows/s, in chunks of 125 at 342.
    At least a few images per task, so that a large cluster's many slots do
    not turn each image into a task.
    """
    if requested:
        return requested
    return max(MIN_DECODE_CHUNK, math.ceil(batch_size / max(decode_slots, 1.0)))


def _placement(options: RayOptions, device: str) -> tuple[int, dict]:
    """How many actors, and the resources each holds."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus and device != "cpu":
        count = options.actors or max(1, math.floor(gpus / options.gpus_per_actor))
        if count * options.gpus_per_actor > gpus:
            raise RayEngineError(
                f"{count} actors x {options.gpus_per_actor} GPU need {count * options.gpus_per_actor:g} GPUs; "
                f"the cluster has {gpus:g}"
            )
        return count, {"num_gpus": options.gpus_per_actor, "num_cpus": options.cpus_per_actor or 1}
    if device.startswith("cuda"):
        raise RayEngineError(f"--device {device} asked for, but the Ray cluster has no GPUs")
    return options.actors or 1, {"num_gpus": 0, "num_cpus": options.cpus_per_actor or 1}


class RayEngine:
    """Scores on a Ray cluster: ``--engine ray``."""

    name = "ray"

    def __init__(
        self,
        model_folder: Path,
        options: EngineOptions | None = None,
        ray_options: RayOptions | None = None,
        predictor_factory: Callable = build_predictor,
        keep_actors: bool = False,
    ) -> None:
        self.model_folder = Path(model_folder)
        # Keep the actors (and their loaded models) between runs of this engine, for a
        # driver that scores again and again in one Ray session; close() ends them.
        self.keep_actors = keep_actors
        self._actors: list = []
        self.card = read_card(self.model_folder)
        self.options = options or EngineOptions()
        self.ray_options = ray_options or RayOptions()
        self.predictor_factory = predictor_factory
        self.actor_names: list[str] = []

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

    def _start_actors(self, run: RunInfo) -> list:
        import ray

        ray_options = self.ray_options
        count, resources = _placement(ray_options, ray_options.device)
        threads = ray_options.actor_threads or (
            None if resources["num_gpus"] else max(1, math.ceil(resources["num_cpus"]))
        )
        # Put once; each node fetches it once from the object store. Held for the whole run.
        self._weights = ray.put((self.model_folder / WEIGHTS_FILE).read_bytes())
        actor_class = ray.remote(ScoringActor)
        self.actor_names = [f"scorer-{run.run_id}-{i}" for i in range(count)]
        return [
            actor_class.options(
                name=name, max_restarts=-1, max_task_retries=-1, **resources
            ).remote(self.predictor_factory, self.card.to_dict(), ray_options.device, ray_options.dtype, threads,
                     self.options.gpu_decode, self.options.draft)
            for name in self.actor_names
        ]

    def _run(self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress,
             summary: RunSummary) -> None:
        import ray

        options, ray_options = self.options, self.ray_options
        actors = self._actors or self._start_actors(run)
        self._actors = actors
        if options.gpu_decode:
            prepare = ray.remote(read_batch).options(num_cpus=ray_options.decode_cpus, max_retries=3)
        else:
            prepare = ray.remote(decode_batch).options(num_cpus=ray_options.decode_cpus, max_retries=3)
        cluster_cpus = ray.cluster_resources().get("CPU", 1)
        # Batches in flight: enough to keep every actor busy and every decode slot filled.
        decode_slots = cluster_cpus / max(ray_options.decode_cpus, 0.1)
        chunk = decode_chunk_size(options.batch_size, decode_slots, ray_options.decode_chunk)
        limit = len(actors) * ray_options.batches_per_actor + max(1, math.ceil(decode_slots * chunk / options.batch_size))
        in_flight: dict = {}  # score result ref -> actor index
        load = [0] * len(actors)
        incarnations: dict[int, str] = {}
        restarts = 0
        size = self.card.input_size

        def collect() -> None:
            """Wait for a batch to come back and deliver its records."""
            nonlocal restarts
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                index = in_flight.pop(ref)
                load[index] -= 1
                try:
                    incarnation, records = ray.get(ref)
                except ray.exceptions.ActorDiedError as error:
                    # Restarts are automatic; a dead actor here failed to start (e.g. its model did not load).
                    raise RayEngineError(f"scoring actor {self.actor_names[index]} cannot run: {error}") from None
                if incarnations.setdefault(index, incarnation) != incarnation:
                    incarnations[index] = incarnation
                    restarts += 1
                deliver(records, sinks, summary, progress)
                progress.note(actors=len(actors), restarts=restarts)

        try:
            todo = items_to_score(items, sinks, self.card.model_id, options.rescore, options.lookup_chunk,
                                  summary, progress)
            for group in chunked(todo, options.batch_size):
                index = min(range(len(actors)), key=load.__getitem__)
                # Decode in small tasks, so decoding spreads over more cores and the
                # first batch is ready sooner; the actor gets them all as one batch.
                parts = [
                    prepare.remote(part) if options.gpu_decode else prepare.remote(part, size, options.draft)
                    for part in chunked(group, chunk)
                ]
                # The weights reference is wrapped in a list so Ray passes it unresolved.
                ref = actors[index].score.remote([self._weights], self.card.model_id, run.run_id, *parts)
                in_flight[ref] = index
                load[index] += 1
                while len(in_flight) >= limit:
                    collect()
            while in_flight:
                collect()
        finally:
            if not self.keep_actors:
                self.close()

    def close(self) -> None:
        """End the scoring actors (a run does this itself unless ``keep_actors``)."""
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
