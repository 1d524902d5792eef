"""`eat-curate bench score --engine ray`: the Ray engine against the in-process engine, same run, same machine.

Both engines score the same folder with the same model into a sink that only
counts. The in-process engine is the baseline; the Ray engine (an embedded
local Ray on this machine) is reported as a ratio to it. Each engine runs
once as a warm-up (Ray: start, actors, model load) and is then timed in
alternating rounds.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from eat_curate.benchmarks.score_speed import CountingSink
from eat_curate.io.sources import iter_items
from eat_curate.model.checkpoint import load_model
from eat_curate.runs import RunInfo, RunSummary, new_run_id
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from eat_curate.scoring.progress import Progress
from pipelines.ray_engine import RayEngine, RayOptions, ray_session


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
    folder: Path, model_folder: Path, options: EngineOptions, ray_options: RayOptions, rounds: int = 3,
    limit: int | None = None,
) -> EngineBenchResult:
    items = list(iter_items([str(folder)], limit=limit))
    if not items:
        raise ValueError(f"no images in {folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        local = LocalEngine(Predictor(load_model(model_folder), ray_options.device, ray_options.dtype), options)
    remote = RayEngine(model_folder, options, ray_options, keep_actors=True)  # loads its model once, like `local`
    run = RunInfo(new_run_id(), remote.card.model_id, remote.card.name, remote.card.sha256, [str(folder)])

    def timed(engine) -> float:
        summary = RunSummary()
        engine.run(items, [CountingSink()], run, Progress(), summary)
        return summary.images_per_s

    rates: dict[str, list[float]] = {"local": [], "ray": []}
    with ray_session(ray_options.address, ray_options.local_cpus):  # one Ray for every round
        timed(local), timed(remote)  # warm-up: Ray's actors start and load the model here
        for _ in range(rounds):
            rates["local"].append(timed(local))
            rates["ray"].append(timed(remote))
        remote.close()
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
        ray_actors=len(remote.actor_names),
    )
