"""Stand-ins with known costs for the in-process engine's stages, and a sink that keeps what it is given.

For tests about the pipeline's structure (overlap, bounds, failures), where
the real decoder and model would only add unknown costs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from eat_curate.io.decode import DecodedImage
from eat_curate.io.sources import SourceItem
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.engine import LocalEngine
from eat_curate.scoring.predictor import Prediction
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import DecodedItem

SIDE = 8  # the stand-in model's input: tiny pixels, so copying them costs nothing


class StandInModel:
    """A model that takes ``seconds`` per batch and scores every image 5.5; ``fail_on`` raises on that call."""

    input_size = SIDE
    model_id = "stand-in@000000000000"

    def __init__(self, seconds: float = 0.0, fail_on: int | None = None,
                 error: BaseException | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.error = error or RuntimeError("the model broke")
        self.calls = 0

    def predict(self, pixels: np.ndarray) -> Prediction:
        self.calls += 1
        if self.calls == self.fail_on:
            raise self.error
        time.sleep(self.seconds)
        count = len(pixels)
        probabilities = np.full((count, 10), 0.1, dtype=np.float32)
        return Prediction(probabilities, np.full(count, 5.5, np.float32), np.full(count, 2.87, np.float32))


class StandInDecoder:
    """Replaces the CPU decoder: ``seconds`` per image, counting images started; ``fail_on`` raises."""

    def __init__(self, seconds: float = 0.0, fail_on: int | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.started = 0
        self.lock = threading.Lock()

    def __call__(self, item: SourceItem, size: int, draft: bool = True, max_bytes: int | None = None) -> DecodedItem:
        with self.lock:
            self.started += 1
            number = self.started
        if number == self.fail_on:
            raise RuntimeError("a reader broke")
        time.sleep(self.seconds)
        pixels = np.full((size, size, 3), number % 256, dtype=np.uint8)
        return DecodedItem(item, DecodedImage(content_hash=f"{number:064x}", bytes=1, pixels=pixels))


class MemorySink:
    """Keeps every record written, in order; already holds what it scored successfully (incremental runs)."""

    def __init__(self, seconds_per_write: float = 0.0, fail_on: int | None = None,
                 error: BaseException | None = None, on_write: Callable[[], None] | None = None) -> None:
        self.records: list[ScoreRecord] = []
        self.writes = 0
        self.seconds = seconds_per_write
        self.fail_on = fail_on
        self.error = error or RuntimeError("the sink broke")
        self.on_write = on_write
        self.status: str | None = None

    def register_model(self, card: dict) -> None:
        pass

    def begin_run(self, run: RunInfo) -> None:
        pass

    def already_scored(self, inputs, model_id: str) -> set[str]:
        done = {record.path for record in self.records if record.ok}
        return {entry.key for entry in inputs if entry.key in done}

    def write(self, records, tally=None) -> None:
        self.writes += 1
        if self.writes == self.fail_on:
            raise self.error
        time.sleep(self.seconds)
        self.records.extend(records)
        if self.on_write:
            self.on_write()

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        self.status = status

    def close(self) -> None:
        pass


def made_up_items(count: int) -> list[SourceItem]:
    return [SourceItem(key=f"item-{index:04d}", image_id=f"{index:016x}", album=None, data=b"x")
            for index in range(count)]


def score(engine: LocalEngine, items, sink: MemorySink) -> RunSummary:
    run = RunInfo("run-1", engine.predictor.model_id, "model", "", ["test"])
    return engine.run(items, [sink], run, Progress(), RunSummary())
