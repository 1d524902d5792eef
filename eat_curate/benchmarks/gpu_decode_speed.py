"""Where the time goes when JPEGs are decoded on the GPU (nvJPEG): decoding alone, each stage, the engine.

These figures only mean something on a CUDA machine (``scripts/gpu_check.py``
runs them there); on a CPU the same code decodes with libjpeg-turbo, a dry run.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from PIL import Image

from eat_curate.benchmarks.engine_runs import counted_run
from eat_curate.benchmarks.timing import synchronize
from eat_curate.io.decode import read_header
from eat_curate.io.phash import phash, phash_batch
from eat_curate.io.sources import SourceItem
from eat_curate.runs import RunInfo, RunSummary, new_run_id
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.gpu_decode import GpuJpegDecoder, upright_chw
from eat_curate.scoring.predictor import Predictor
from eat_curate.scoring.tasks import decode_read_items, read_item, score_entries

T = TypeVar("T")


def _run_info(predictor: Predictor) -> RunInfo:
    card = predictor.card
    return RunInfo(new_run_id(), card.model_id, card.name, card.sha256, sources=[])


def decode_only_rate(folder: Path, device: torch.device, count: int = 256, chunk: int = 64) -> float:
    """img/s of torchvision's batched JPEG decoding on ``device``, ``chunk`` at a time, files read beforehand."""
    import torchvision.io

    files = sorted(folder.glob("*.jpg"))[:count]
    datas = [torch.frombuffer(bytearray(file.read_bytes()), dtype=torch.uint8) for file in files]
    torchvision.io.decode_jpeg(datas[:8], device=device)  # warm-up: nvJPEG's handles and buffers
    synchronize(device)
    start = time.perf_counter()
    for first in range(0, len(datas), chunk):
        torchvision.io.decode_jpeg(datas[first : first + chunk], device=device)
    synchronize(device)
    return len(datas) / (time.perf_counter() - start)


def engine_decode_runs(
    predictor: Predictor, items: Sequence[SourceItem], batch_size: int, workers: int
) -> dict[str, RunSummary]:
    """The in-process engine end to end, decoding on the GPU and on the CPU (draft), after a warm-up each."""
    run = _run_info(predictor)
    summaries = {}
    for mode, gpu_decode in (("gpu_decode", True), ("cpu_decode_draft", False)):
        engine = LocalEngine(predictor, EngineOptions(batch_size=batch_size, workers=workers, gpu_decode=gpu_decode))
        counted_run(engine, items[: 2 * batch_size], run)
        summaries[mode] = counted_run(engine, items, run)
    return summaries


def stage_milliseconds(predictor: Predictor, items: Sequence[SourceItem], batch_size: int,
                       repeats: int = 4) -> dict[str, float]:
    """Median ms per batch of each step of the GPU-decode path, and of the Pillow steps it replaces.

    Up to ``repeats`` batches; the first only warms up when there are more.
    """
    device = predictor.device
    decoder = GpuJpegDecoder(predictor.input_size, device)
    times: dict[str, list[float]] = {}

    def stage(name: str, function: Callable[[], T]) -> T:
        synchronize(device)
        start = time.perf_counter()
        result = function()
        synchronize(device)
        times.setdefault(name, []).append(1000 * (time.perf_counter() - start))
        return result

    for repeat in range(max(1, min(repeats, len(items) // batch_size))):
        group = items[repeat * batch_size : (repeat + 1) * batch_size]
        datas = stage("read_bytes", lambda: [Path(item.key).read_bytes() for item in group])
        stage("read_header", lambda: [read_header(data) for data in datas])
        images = stage("nvjpeg_decode", lambda: decoder._decode_on_device(datas))
        upright = [upright_chw(image, 1) for image in images]
        stage("resize_one_by_one", lambda: torch.cat([decoder._resize(image[None]) for image in upright]))
        pixels = stage("resize_batched", lambda: decoder._resize_all(upright))
        stage("phash_batch_on_device", lambda: phash_batch(pixels))
        arrays = stage("to_host", lambda: pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy())
        stage("phash_pillow_one_by_one", lambda: [phash(Image.fromarray(array)) for array in arrays])
        stage("predict", lambda: predictor.predict(arrays))
        reads = [read_item(item, with_header=True) for item in group]
        decoded = stage("decode_read_items_total", lambda: decode_read_items(reads, decoder))
        stage("score_entries_total", lambda: score_entries(decoded, predictor, predictor.model_id, "stages"))
    return {name: statistics.median(values[1:] or values) for name, values in times.items()}


def engine_rates_by_threads(
    predictor: Predictor, items: Sequence[SourceItem], batch_size: int, threads: Iterable[int]
) -> dict[int, float]:
    """img/s of the GPU-decode engine with each number of host threads."""
    run = _run_info(predictor)
    return {
        count: counted_run(
            LocalEngine(predictor, EngineOptions(batch_size=batch_size, workers=count, gpu_decode=True)), items, run
        ).images_per_s
        for count in threads
    }


def profiled_engine_run(
    predictor: Predictor, items: Sequence[SourceItem], batch_size: int, workers: int, top: int = 40
) -> tuple[float, str]:
    """img/s of one GPU-decode engine run under cProfile, and its ``top`` functions by own time."""
    engine = LocalEngine(predictor, EngineOptions(batch_size=batch_size, workers=workers, gpu_decode=True))
    profile = cProfile.Profile()
    profile.enable()
    summary = counted_run(engine, items, _run_info(predictor))
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return summary.images_per_s, text.getvalue()
