"""A real local Ray for the Ray engine's tests, and a stand-in model for its actors that notes each load.

Ray runs on 127.0.0.1 only, with usage stats off, a private temp folder and
2 CPUs, and is stopped by the fixture that started it. Tests give actors and
tasks fractional CPUs: whole CPUs would starve this 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray for one test module (2 CPUs, loopback only), shut down afterwards."""
    os.environ.update(RAY_ENV)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    os.environ["RAY_TMPDIR"] = ray_tmp
    import ray

    from pipelines.ray_engine import _local_worker_pool

    # Idle workers kept as the engine's own local Ray keeps them: else Ray kills decode workers a second
    # after their task and each test's next tasks wait seconds for fresh ones to import their modules.
    ray.init(num_cpus=2, include_dashboard=False, namespace="eat-curate", log_to_driver=False,
             _system_config=_local_worker_pool(2))
    yield ray
    ray.shutdown()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def constant_model_noting_loads(loads: Path, seconds_per_batch: float = 0.0) -> Callable:
    """A predictor factory for the scoring actors: the constant model (fixed scores), which leaves a file
    named by its process id in ``loads`` each time an actor loads it, and takes ``seconds_per_batch``."""

    def factory(card: dict, weights: bytes, device: str, dtype: str):
        from eat_curate.scoring.constant import build_constant_predictor

        (loads / str(os.getpid())).touch()
        predictor = build_constant_predictor(card, weights, device, dtype)
        constant = predictor.predict

        def predict(pixels):
            time.sleep(seconds_per_batch)
            return constant(pixels)

        predictor.predict = predict
        return predictor

    return factory


def loading_processes(loads: Path) -> list[int]:
    """The process ids that loaded the model, so far."""
    return sorted(int(path.name) for path in loads.iterdir())


class RecordingProgress:
    """What an engine reports: images saved, and its notes."""

    def __init__(self) -> None:
        self.ok = 0
        self.notes: dict = {}

    def advance(self, records) -> None:
        self.ok += len(records)

    def skip(self, count: int) -> None:
        pass

    def note(self, **fields) -> None:
        self.notes.update(fields)

    def close(self) -> None:
        pass


def score_with(engine, folder: Path, out: Path, progress=None):
    """``engine`` scores ``folder`` into the Parquet file ``out``, as `score` runs it; the run's summary."""
    from eat_curate.io.sources import iter_items
    from eat_curate.model.card import read_card
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.execute import execute_run
    from eat_curate.sinks.outputs import open_sinks

    card = read_card(engine.model_folder)
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, [str(folder)], engine="ray")
    return execute_run(engine, iter_items([str(folder)]), open_sinks(out=str(out), db=None), run, card,
                       progress or RecordingProgress())
