"""GPU checks and figures, run on a CUDA machine: `PYTHONPATH=. python3 scripts/gpu_check.py --out DIR`.

What only a GPU shows, in one short run (a few minutes on an H100/H200):
1. the Ray engine end to end (one actor holding the GPU) with EAT-base bf16, against the
   in-process engine in the same run, with GPU (nvJPEG) and CPU decoding, on generated 2 MP JPEGs;
2. where a batch's time goes on the GPU-decode path (stage timings, the engine's profile);
3. JPEG decoding on the GPU (nvJPEG) and the in-process engine end to end with EAT-base
   bf16, GPU decode vs CPU decode, on generated 2 MP and 12 MP JPEGs;
4. forward img/s of EAT-tiny/base in bf16 and fp32, against the published forward;
5. correctness on CUDA: batch invariance (fp32), agreement with the published forward,
   bf16 vs fp32 score deviation;
6. training img/s of EAT-base (bf16 and fp32).
Prints each figure as it goes and writes them all to DIR/gpu_check.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

warnings.simplefilter("ignore")
FIGURES: dict = {}


def record(name: str, value) -> None:
    FIGURES[name] = value
    print(f"{name}: {value}", flush=True)


def write_jpeg(args: tuple[Path, int, int, int]) -> None:
    from PIL import Image, ImageFilter

    path, width, height, seed = args
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.SMOOTH)
    noise = rng.normal(0, 6, (height, width, 3))
    picture = Image.fromarray(np.clip(np.asarray(picture, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    picture.save(path, quality=90)


def jpeg_folder(root: Path, count: int, width: int, height: int, unique: int = 256) -> Path:
    """``count`` JPEGs: ``unique`` generated pictures (the slow part), copied under new names up to ``count``."""
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(root / f"img_{i:05d}.jpg", width, height, i) for i in range(min(count, unique))]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_jpeg, jobs, chunksize=4))
    for i in range(len(jobs), count):
        shutil.copyfile(jobs[i % len(jobs)][0], root / f"img_{i:05d}.jpg")
    return root


def untrained_store(models: Path, preset: str):
    """A model store holding an untrained model of ``preset`` under that name (speed does not need weights)."""
    from eat_curate.model.model_store import ModelStore

    store = ModelStore(models)
    if preset not in store.names():
        store.init(preset, preset, seed=0)
    return store


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, repeats: int, device: torch.device) -> float:
    function()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def check_model(device: torch.device) -> None:
    from eat_curate.model import EAT, PUBLISHED_RULE, checkpoint_filter_fn, score_moments
    from eat_curate.model.reference import PublishedEAT

    torch.manual_seed(0)
    published = PublishedEAT("tiny").eval()
    with torch.no_grad():
        for key, value in published.state_dict().items():
            if value.is_floating_point() and not key.endswith("attn_mask"):
                value.normal_(0, 0.05)
    ours = EAT("tiny", head_mode="published").eval()
    ours.load_state_dict(checkpoint_filter_fn(published.state_dict(), ours), strict=True)
    ours.set_steering(PUBLISHED_RULE)
    published, ours = published.to(device), ours.to(device, memory_format=torch.channels_last)
    images = torch.randn(32 if device.type == "cuda" else 8, 3, 224, 224, device=device)
    with torch.inference_mode():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        record("ours_vs_published_max_abs_logit_diff_fp32", (published(images[:1]) - ours(images[:1])).abs().max().item())
        together = ours(images)
        alone = torch.cat([ours(images[i : i + 1]) for i in range(4)])
        record(f"batch1_vs_batch{len(images)}_max_abs_logit_diff_fp32", (together[:4] - alone).abs().max().item())
        softmax_model = EAT("tiny").eval().to(device, memory_format=torch.channels_last)
        full, _ = score_moments(softmax_model.distribution(softmax_model(images)))
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low, _ = score_moments(softmax_model.distribution(softmax_model(images)))
        record("bf16_vs_fp32_mean_abs_score_diff_random_weights", (full - low).abs().mean().item())


def forward_speed(device: torch.device) -> None:
    from eat_curate.model import EAT, checkpoint_filter_fn
    from eat_curate.model.reference import PublishedEAT

    batch = 256 if device.type == "cuda" else 4
    for preset in ("tiny", "base"):
        model = EAT(preset).eval().to(device, memory_format=torch.channels_last)
        images = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
        published_batch = min(64, batch)
        with torch.inference_mode():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                bf16 = batch / timed(lambda: model(images), 10, device)
            fp32 = batch / timed(lambda: model(images), 5, device)
            published = PublishedEAT(preset).eval().to(device)
            published_rate = published_batch / timed(lambda: published(images[:published_batch]), 5, device)
        record(f"forward_{preset}_bf16_img_s_batch{batch}", round(bf16, 1))
        record(f"forward_{preset}_fp32_img_s_batch{batch}", round(fp32, 1))
        record(f"forward_{preset}_published_fp32_img_s_batch{published_batch}", round(published_rate, 1))
        record(f"forward_{preset}_bf16_vs_published_ratio", round(bf16 / published_rate, 2))
        del model, published


def engine_speed(device: torch.device, models: Path, folders: dict[str, Path], preset: str, batch: int,
                 workers: int) -> None:
    import torchvision.io

    from eat_curate.benchmarks.score_speed import CountingSink
    from eat_curate.io.sources import iter_items
    from eat_curate.runs import RunInfo, RunSummary
    from eat_curate.scoring.engine import EngineOptions, LocalEngine
    from eat_curate.scoring.predictor import Predictor
    from eat_curate.scoring.progress import Progress

    store = untrained_store(models, preset)
    predictor = Predictor(store.load(preset), device=str(device), dtype="bf16")
    for label, folder in folders.items():
        files = sorted(folder.glob("*.jpg"))
        datas = [torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8) for f in files[:256]]
        torchvision.io.decode_jpeg(datas[:8], device=device)
        synchronize(device)
        start = time.perf_counter()
        for first in range(0, len(datas), 64):
            torchvision.io.decode_jpeg(datas[first : first + 64], device=device)
        synchronize(device)
        record(f"nvjpeg_decode_only_{label}_img_s", round(len(datas) / (time.perf_counter() - start), 1))
        items = list(iter_items([str(folder)]))
        for mode, options in (
            ("gpu_decode", EngineOptions(batch_size=batch, workers=workers, gpu_decode=True)),
            ("cpu_decode_draft", EngineOptions(batch_size=batch, workers=workers)),
        ):
            engine = LocalEngine(predictor, options)
            run = RunInfo("gpu-check", predictor.model_id, "base", "", [str(folder)])
            engine.run(items[: 2 * batch], [CountingSink()], run, Progress(), RunSummary())  # warm-up
            summary = RunSummary()
            engine.run(items, [CountingSink()], run, Progress(), summary)
            record(f"engine_{label}_eat_{preset}_bf16_{mode}_img_s", round(summary.images_per_s, 1))
            record(f"engine_{label}_{mode}_ok", summary.ok)


def ray_engine_speed(device: torch.device, models: Path, folder: Path, preset: str, batch: int, workers: int,
                     chunks: list[int]) -> None:
    """The Ray engine (one actor holding the GPU) against the in-process engine, as `bench score --engine ray`."""
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.bench import bench_engines
    from pipelines.ray_engine import RayOptions, ray_session

    store = untrained_store(models, preset)
    runs = [(True, chunk) for chunk in chunks] + [(False, chunks[0])]
    with ray_session(None, None):  # one embedded Ray for every configuration
        for gpu_decode, chunk in runs:
            options = EngineOptions(batch_size=batch, workers=workers, gpu_decode=gpu_decode)
            ray_options = RayOptions(device=str(device), dtype="bf16", decode_chunk=chunk,
                                     decode_cpus=0.5 if device.type == "cuda" else 0.25,
                                     cpus_per_actor=1 if device.type == "cuda" else 0.5)
            label = f"ray_{'gpu' if gpu_decode else 'cpu'}_decode_chunk{chunk}_eat_{preset}"
            try:
                result = bench_engines(folder, store.resolve(preset), options, ray_options, rounds=2)
            except Exception as error:  # the other configurations still run
                record(f"{label}_error", f"{type(error).__name__}: {error}")
                continue
            label += f"_{result.dtype}"
            record(f"{label}_in_process_img_s", round(result.local_img_s, 1))
            record(f"{label}_ray_img_s", round(result.ray_img_s, 1))
            record(f"{label}_ratio", round(result.ratio, 3))
            record(f"{label}_images_actors", [result.images, result.ray_actors])


def gpu_path_stages(device: torch.device, models: Path, folder: Path, preset: str, batch: int, workers: int,
                    out: Path) -> None:
    """Where a batch's time goes on the GPU-decode path, stage by stage, and the engine's Python profile."""
    import cProfile
    import pstats

    from eat_curate.benchmarks.score_speed import CountingSink
    from eat_curate.io.decode import read_header
    from eat_curate.io.phash import phash, phash_batch
    from eat_curate.io.sources import iter_items
    from eat_curate.runs import RunInfo, RunSummary
    from eat_curate.scoring.engine import EngineOptions, LocalEngine
    from eat_curate.scoring.gpu_decode import GpuJpegDecoder, upright_chw
    from eat_curate.scoring.predictor import Predictor
    from eat_curate.scoring.progress import Progress
    from eat_curate.scoring.tasks import decode_read_items, read_item, score_entries
    from PIL import Image

    store = untrained_store(models, preset)
    predictor = Predictor(store.load(preset), device=str(device), dtype="bf16")
    decoder = GpuJpegDecoder(predictor.input_size, predictor.device)
    items = list(iter_items([str(folder)]))
    stages: dict[str, list[float]] = {}

    def stage(name: str, function):
        synchronize(device)
        start = time.perf_counter()
        result = function()
        synchronize(device)
        stages.setdefault(name, []).append(1000 * (time.perf_counter() - start))
        return result

    for repeat in range(max(1, min(4, len(items) // batch))):
        group = items[repeat * batch : (repeat + 1) * batch]
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
    for name, values in stages.items():  # the first repeat warms up
        record(f"stage_{name}_ms_per_{batch}", round(statistics.median(values[1:] or values), 1))
    run = RunInfo("stages", predictor.model_id, preset, "", [str(folder)])
    for threads in sorted({4, 8, workers}):
        engine = LocalEngine(predictor, EngineOptions(batch_size=batch, workers=threads, gpu_decode=True))
        summary = RunSummary()
        engine.run(items, [CountingSink()], run, Progress(), summary)
        record(f"engine_gpu_decode_{threads}_threads_img_s", round(summary.images_per_s, 1))
    profile = cProfile.Profile()
    summary = RunSummary()
    profile.enable()
    LocalEngine(predictor, EngineOptions(batch_size=batch, workers=workers, gpu_decode=True)).run(
        items, [CountingSink()], run, Progress(), summary)
    profile.disable()
    record("engine_gpu_decode_profiled_img_s", round(summary.images_per_s, 1))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "engine_profile.txt", "w") as stream:
        pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(40)


def training_speed(device: torch.device, preset: str, batch: int) -> None:
    from training.bench import bench_training

    result = bench_training(preset, batch_size=batch, steps=5, device=str(device))
    record(f"train_{preset}_batch{batch}_fp32_img_s", round(result.fp32_img_s, 1))
    record(f"train_{preset}_batch{batch}_bf16_img_s", round(result.bf16_img_s, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--images-2mp", type=int, default=4096)
    parser.add_argument("--images-12mp", type=int, default=384)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script's logic on small sizes")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--ray-chunks", type=int, nargs="+", default=[4, 32],
                        help="Ray: images per read task to try with GPU decoding")
    parser.add_argument("--skip", nargs="*", default=[], help="steps to leave out")
    args = parser.parse_args()
    device = torch.device(args.device)
    record("device", torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    record("torch", torch.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="gpucheck"))
    folders: dict[str, Path] = {}

    def jpegs() -> dict[str, Path]:
        if not folders:
            started = time.perf_counter()
            folders["2mp"] = jpeg_folder(scratch / "jpeg2mp", args.images_2mp, 1632, 1224)
            folders["12mp"] = jpeg_folder(scratch / "jpeg12mp", args.images_12mp, 4000, 3000, unique=32)
            record("jpeg_generation_seconds", round(time.perf_counter() - started, 1))
        return folders

    # The figures most wanted first: a run cut short by its time limit keeps them.
    steps = [
        ("ray", lambda: ray_engine_speed(device, scratch / "models", jpegs()["2mp"], args.preset, args.batch,
                                         args.workers, args.ray_chunks)),
        ("stages", lambda: gpu_path_stages(device, scratch / "models", jpegs()["2mp"], args.preset, args.batch,
                                           args.workers, args.out)),
        ("engine", lambda: engine_speed(device, scratch / "models", jpegs(), args.preset, args.batch, args.workers)),
        ("forward", lambda: forward_speed(device)),
        ("model", lambda: check_model(device)),
        ("training", lambda: training_speed(device, args.preset, 64 if device.type == "cuda" else 2)),
    ]
    for name, step in steps:
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            step()
        except Exception as error:  # one failing step must not hide the others' figures
            record(f"{name}_error", f"{type(error).__name__}: {error}")
        record(f"{name}_seconds", round(time.perf_counter() - start, 1))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(FIGURES, indent=2))


if __name__ == "__main__":
    sys.exit(main())
