"""`eat-curate bench score`: the in-process engine end to end against a naive loop, same model, same run.

Naive loop, the way a first script would do it: decode each file at full
resolution with Pillow, resize, stack 8, run the model in fp32, repeat — no
overlap between decoding and the model. The engine: reduced-scale JPEG
decoding in a thread pool overlapping the predictor, in the dtype ``auto``
picks, writing nowhere (a sink that only counts).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from eat_curate.benchmarks.engine_runs import CountingSink, counted_run
from eat_curate.io.resize import resize_for_model
from eat_curate.io.sources import iter_items
from eat_curate.model.checkpoint import LoadedModel
from eat_curate.runs import RunInfo, new_run_id
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning


@dataclass
class ScoreBenchResult:
    images: int
    megapixels_mean: float
    naive_img_s: float
    engine_img_s: float
    ratio: float
    engine_dtype: str
    batch_size: int
    workers: int
    mean_abs_score_diff: float  # engine (draft decode, auto dtype) vs naive (full decode, fp32)

    def to_dict(self) -> dict:
        return asdict(self)


def naive_loop(paths: Sequence[Path], predictor: Predictor, batch_size: int = 8) -> tuple[float, dict[str, float]]:
    """Full decode, resize, model, one batch at a time; returns (img/s, mean per path)."""
    means: dict[str, float] = {}
    start = time.perf_counter()
    for first in range(0, len(paths), batch_size):
        chunk = paths[first : first + batch_size]
        pixels = []
        for path in chunk:
            with Image.open(path) as image:
                pixels.append(resize_for_model(ImageOps.exif_transpose(image).convert("RGB"), predictor.input_size))
        prediction = predictor.predict(np.stack(pixels))
        means.update((str(path), float(mean)) for path, mean in zip(chunk, prediction.mean))
    return len(paths) / (time.perf_counter() - start), means


def bench_score(
    folder: Path, loaded_fp32: LoadedModel, loaded_engine: LoadedModel, batch_size: int = 16, workers: int = 0,
    dtype: str = "auto", limit: int | None = None,
) -> ScoreBenchResult:
    items = list(iter_items([str(folder)], limit=limit))
    paths = [Path(item.key) for item in items]
    if not paths:
        raise ValueError(f"no images in {folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        naive_predictor = Predictor(loaded_fp32, device="cpu", dtype="fp32")
        engine_predictor = Predictor(loaded_engine, device="cpu", dtype=dtype)
    megapixels = []
    for path in paths:
        with Image.open(path) as image:
            megapixels.append(image.width * image.height / 1e6)

    # Warm both paths (allocator, oneDNN kernels) on a few images first.
    naive_loop(paths[:2], naive_predictor, 2)
    engine = LocalEngine(engine_predictor, EngineOptions(batch_size=batch_size, workers=workers))
    run = RunInfo(new_run_id(), engine_predictor.model_id, "bench", "", [str(folder)])
    counted_run(engine, items[:batch_size], run)

    naive_rate, naive_means = naive_loop(paths, naive_predictor, 8)
    sink = CountingSink()
    engine_rate = counted_run(engine, items, run, sink).images_per_s
    diffs = [abs(sink.means[key] - naive_means[key]) for key in naive_means if sink.means.get(key) is not None]
    return ScoreBenchResult(
        images=len(paths),
        megapixels_mean=float(np.mean(megapixels)),
        naive_img_s=naive_rate,
        engine_img_s=engine_rate,
        ratio=engine_rate / naive_rate,
        engine_dtype=engine_predictor.dtype_name,
        batch_size=batch_size,
        workers=engine.options.workers,
        mean_abs_score_diff=float(np.mean(diffs)) if diffs else float("nan"),
    )


def report_lines(result: ScoreBenchResult, model_ref: str) -> list[str]:
    return [
        f"{result.images} images, {result.megapixels_mean:.1f} MP on average, model {model_ref}",
        f"  naive loop (full decode, fp32, batch 8)   {result.naive_img_s:8.2f} img/s",
        f"  in-process engine ({result.engine_dtype}, batch {result.batch_size}, "
        f"{result.workers} decode threads)  {result.engine_img_s:8.2f} img/s   {result.ratio:.2f}x",
        f"  mean |score diff| engine vs naive: {result.mean_abs_score_diff:.4f} (draft decode + dtype)",
    ]
