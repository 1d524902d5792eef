"""`eat-curate bench score --engine ray`: the Ray engine against the in-process engine, same run, same machine.

Both engines score the same folder with the same model into a sink that only
counts. The in-process engine is the baseline; the Ray engine (an embedded
local Ray on this machine) is reported as a ratio to it. Each engine runs
once as a warm-up (Ray: start, actors, model load) and is then timed in
alternating rounds.

The Ray engine lives in ``pipelines/``, which this package does not import:
the caller builds it and the Ray session, and passes both in.
"""

from __future__ import annotations

import statistics
import warnings
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from eat_curate.benchmarks.engine_runs import counted_run
from eat_curate.io.sources import iter_items
from eat_curate.model.checkpoint import load_model
from eat_curate.runs import RunInfo, new_run_id
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from eat_curate.scoring.execute import Engine


class ActorEngine(Engine, Protocol):
    """An engine whose scoring actors (models loaded) outlive a run: ``pipelines.ray_engine.RayEngine``."""

    actor_names: list[str]

    def close(self) -> None: ...


@dataclass
class EngineBenchResult:
    images: int
    rounds: int
    local_img_s: float
    ray_img_s: float
    ratio: float
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

    ``ray_engine`` must keep its actors between runs; ``ray_session`` holds one Ray for every round.
    """
    items = list(iter_items([str(folder)], limit=limit))
    if not items:
        raise ValueError(f"no images in {folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        local = LocalEngine(Predictor(load_model(model_folder), device, dtype), options)
    card = local.predictor.card
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, [str(folder)])

    rates: dict[str, list[float]] = {"local": [], "ray": []}
    with ray_session:
        for engine in (local, ray_engine):  # warm-up: Ray's actors start and load the model here
            counted_run(engine, items, run)
        for _ in range(rounds):
            rates["local"].append(counted_run(local, items, run).images_per_s)
            rates["ray"].append(counted_run(ray_engine, items, run).images_per_s)
        ray_engine.close()
    local_rate, ray_rate = statistics.median(rates["local"]), statistics.median(rates["ray"])
    return EngineBenchResult(
        images=len(items),
        rounds=rounds,
        local_img_s=local_rate,
        ray_img_s=ray_rate,
        ratio=ray_rate / local_rate,
        dtype=local.predictor.dtype_name,
        device=str(local.predictor.device),
        gpu_decode=options.gpu_decode,
        batch_size=options.batch_size,
        ray_actors=len(ray_engine.actor_names),
    )


def report_lines(result: EngineBenchResult) -> list[str]:
    decoding = "GPU (nvJPEG)" if result.gpu_decode else "CPU"
    return [
        f"{result.images} images, {result.device}, batch {result.batch_size}, {result.dtype}, "
        f"{decoding} decoding, median of {result.rounds} rounds",
        f"  in-process engine (baseline)  {result.local_img_s:8.2f} img/s",
        f"  Ray engine ({result.ray_actors} actor)         {result.ray_img_s:8.2f} img/s   {result.ratio:.2f}x",
    ]
