"""`eat-curate bench score --engine ray`: the Ray engine against the in-process engine, same run, same machine.

Both engines score the same folder with the same model into a sink that only
counts. The in-process engine is the baseline; the Ray engine (an embedded
local Ray on this machine) is reported as a ratio to it.

The Ray engine starts its scoring actors, and loads their model, with every
run (Ray Data starts an actor pool per Dataset), while the in-process
engine's model is loaded once, before. So each engine scores the first half
of the images and then all of them: the difference is the rate once running
(what a long run gets, and what the ratio compares), and what the whole run
took beyond it is the cost of starting. Each engine runs once untimed first
(Ray's worker processes start and import; lazy initialisation in both), then
in alternating rounds.

The Ray engine lives in ``pipelines/``, which this package does not import:
the caller builds it and the Ray session, and passes both in.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from eat_curate.benchmarks.engine_runs import counted_run
from eat_curate.io.sources import SourceItem, iter_items
from eat_curate.model.checkpoint import load_model
from eat_curate.runs import RunInfo, new_run_id
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.execute import Engine
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning


class ActorEngine(Engine, Protocol):
    """An engine that scores in a pool of actors: ``pipelines.ray_engine.RayEngine``."""

    scoring_actors: int  # in its latest run


@dataclass
class HalfAndWhole:
    """One round of an engine: the seconds for the first half of the images and for all of them."""

    half_images: int
    half_s: float
    images: int
    whole_s: float

    @property
    def images_per_s(self) -> float:
        """The whole run's rate, starting included."""
        return self.images / self.whole_s

    @property
    def running_images_per_s(self) -> float:
        """The rate once running: the second half's images over the time they added."""
        added = self.whole_s - self.half_s
        return (self.images - self.half_images) / added if added > 0 else self.images_per_s

    @property
    def start_s(self) -> float:
        """What the whole run took beyond its images at the running rate: starting and ending."""
        return max(0.0, self.whole_s - self.images / self.running_images_per_s)


def seconds_of(engine: Engine, items: Sequence[SourceItem], run: RunInfo) -> float:
    started = time.perf_counter()
    counted_run(engine, items, run)
    return time.perf_counter() - started


def half_and_whole(engine: Engine, items: Sequence[SourceItem], run: RunInfo) -> HalfAndWhole:
    half = items[: len(items) // 2]
    return HalfAndWhole(len(half), seconds_of(engine, half, run), len(items), seconds_of(engine, items, run))


@dataclass
class EngineBenchResult:
    images: int
    rounds: int
    local_img_s: float  # once running (medians of the rounds)
    ray_img_s: float
    ratio: float  # ray_img_s / local_img_s
    local_run_img_s: float  # whole runs, starting included
    ray_run_img_s: float
    ray_start_s: float  # a Ray run's cost beyond its images: actors start, model loads, the pipeline fills
    dtype: str
    device: str
    gpu_decode: bool
    batch_size: int
    ray_actors: int

    def to_dict(self) -> dict:
        return asdict(self)


def bench_engines(
    folder: Path,
    model_folder: Path,
    options: EngineOptions,
    ray_engine: ActorEngine,
    ray_session: AbstractContextManager,
    device: str = "auto",
    dtype: str = "auto",
    rounds: int = 3,
    limit: int | None = None,
) -> EngineBenchResult:
    """``ray_engine`` against the in-process engine on ``device`` in ``dtype``, both with ``options``.

    ``ray_session`` holds one Ray for every round.
    """
    items = list(iter_items([str(folder)], limit=limit))
    if len(items) < 2:
        raise ValueError(f"fewer than 2 images in {folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        local = LocalEngine(Predictor(load_model(model_folder), device, dtype), options)
    card = local.predictor.card
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, [str(folder)])

    timings: dict[str, list[HalfAndWhole]] = {"local": [], "ray": []}
    with ray_session:
        for engine in (local, ray_engine):  # untimed: workers start and import, lazy set-ups run
            counted_run(engine, items, run)
        for _ in range(rounds):
            timings["local"].append(half_and_whole(local, items, run))
            timings["ray"].append(half_and_whole(ray_engine, items, run))

    def median(engine: str, figure: str) -> float:
        return statistics.median(getattr(timing, figure) for timing in timings[engine])

    local_rate, ray_rate = median("local", "running_images_per_s"), median("ray", "running_images_per_s")
    return EngineBenchResult(
        images=len(items),
        rounds=rounds,
        local_img_s=local_rate,
        ray_img_s=ray_rate,
        ratio=ray_rate / local_rate,
        local_run_img_s=median("local", "images_per_s"),
        ray_run_img_s=median("ray", "images_per_s"),
        ray_start_s=median("ray", "start_s"),
        dtype=local.predictor.dtype_name,
        device=str(local.predictor.device),
        gpu_decode=options.gpu_decode,
        batch_size=options.batch_size,
        ray_actors=ray_engine.scoring_actors,
    )


def report_lines(result: EngineBenchResult) -> list[str]:
    decoding = "GPU (nvJPEG)" if result.gpu_decode else "CPU"
    return [
        f"{result.images} images, {result.device}, batch {result.batch_size}, {result.dtype}, "
        f"{decoding} decoding, median of {result.rounds} rounds",
        "                                once running      whole run",
        f"  in-process engine (baseline)  {result.local_img_s:8.2f} img/s  {result.local_run_img_s:8.2f} img/s",
        f"  Ray engine ({result.ray_actors} actor)         {result.ray_img_s:8.2f} img/s  "
        f"{result.ray_run_img_s:8.2f} img/s   {result.ratio:.2f}x once running",
        f"  a Ray run starts in {result.ray_start_s:.1f} s (actors start, model loads, the pipeline fills)",
    ]
