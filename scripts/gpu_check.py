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
Prints each figure as it goes and writes them all to DIR/gpu_check.json. The measurements
are those of `eat-curate bench` (eat_curate.benchmarks); this script picks sizes and names.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
FIGURES: dict = {}


def record(name: str, value) -> None:
    FIGURES[name] = value
    print(f"{name}: {value}", flush=True)


def untrained_model(models: Path, preset: str) -> Path:
    """The folder of an untrained ``preset`` model in the store ``models`` (speed does not need trained weights)."""
    from eat_curate.model.model_store import ModelStore

    store = ModelStore(models)
    if preset not in store.names():
        store.init(preset, preset, seed=0)
    return store.resolve(preset)


def bf16_predictor(model_folder: Path, device):
    from eat_curate.model.checkpoint import load_model
    from eat_curate.scoring.predictor import Predictor

    return Predictor(load_model(model_folder), device=str(device), dtype="bf16")


def ray_engine_speed(device, models: Path, folder: Path, preset: str, batch: int, workers: int,
                     chunks: list[int]) -> None:
    """The Ray engine (one actor holding the GPU) against the in-process engine, as `bench score --engine ray`."""
    from eat_curate.benchmarks.ray_engine_speed import bench_engines
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions, ray_session

    model_folder = untrained_model(models, preset)
    runs = [(True, chunk) for chunk in chunks] + [(False, chunks[0])]
    with ray_session(None, None):  # one embedded Ray for every configuration
        for gpu_decode, chunk in runs:
            options = EngineOptions(batch_size=batch, workers=workers, gpu_decode=gpu_decode)
            ray_options = RayOptions(device=str(device), dtype="bf16", decode_chunk=chunk,
                                     decode_cpus=0.5 if device.type == "cuda" else 0.25,
                                     cpus_per_actor=1 if device.type == "cuda" else 0.5)
            label = f"ray_{'gpu' if gpu_decode else 'cpu'}_decode_chunk{chunk}_eat_{preset}"
            try:
                result = bench_engines(folder, model_folder, options,
                                       ray_engine=RayEngine(model_folder, options, ray_options, keep_actors=True),
                                       ray_session=ray_session(None, None), device=str(device), dtype="bf16",
                                       rounds=2)
            except Exception as error:  # the other configurations still run
                record(f"{label}_error", f"{type(error).__name__}: {error}")
                continue
            label += f"_{result.dtype}"
            record(f"{label}_in_process_img_s", round(result.local_img_s, 1))
            record(f"{label}_ray_img_s", round(result.ray_img_s, 1))
            record(f"{label}_ratio", round(result.ratio, 3))
            record(f"{label}_images_actors", [result.images, result.ray_actors])


def gpu_path_stages(device, models: Path, folder: Path, preset: str, batch: int, workers: int, out: Path) -> None:
    """Where a batch's time goes on the GPU-decode path, stage by stage, and the engine's Python profile."""
    from eat_curate.benchmarks import gpu_decode_speed
    from eat_curate.io.sources import iter_items

    predictor = bf16_predictor(untrained_model(models, preset), device)
    items = list(iter_items([str(folder)]))
    for name, milliseconds in gpu_decode_speed.stage_milliseconds(predictor, items, batch).items():
        record(f"stage_{name}_ms_per_{batch}", round(milliseconds, 1))
    for threads, rate in gpu_decode_speed.engine_rates_by_threads(predictor, items, batch, sorted({4, 8, workers})).items():
        record(f"engine_gpu_decode_{threads}_threads_img_s", round(rate, 1))
    rate, profile = gpu_decode_speed.profiled_engine_run(predictor, items, batch, workers)
    record("engine_gpu_decode_profiled_img_s", round(rate, 1))
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_profile.txt").write_text(profile)


def engine_speed(device, models: Path, folders: dict[str, Path], preset: str, batch: int, workers: int) -> None:
    """nvJPEG decoding alone, then the in-process engine decoding on the GPU and on the CPU."""
    from eat_curate.benchmarks.gpu_decode_speed import decode_only_rate, engine_decode_runs
    from eat_curate.io.sources import iter_items

    predictor = bf16_predictor(untrained_model(models, preset), device)
    for label, folder in folders.items():
        record(f"nvjpeg_decode_only_{label}_img_s", round(decode_only_rate(folder, device), 1))
        runs = engine_decode_runs(predictor, list(iter_items([str(folder)])), batch, workers)
        for mode, summary in runs.items():
            record(f"engine_{label}_eat_{preset}_bf16_{mode}_img_s", round(summary.images_per_s, 1))
            record(f"engine_{label}_{mode}_ok", summary.ok)


def forward_speed(device, batch: int) -> None:
    from eat_curate.benchmarks.model_speed import bench_model

    for preset in ("tiny", "base"):
        result = bench_model(preset, batch, rounds=5, device=str(device))
        record(f"forward_{preset}_bf16_img_s_batch{batch}", round(result.ours_bf16_img_s, 1))
        record(f"forward_{preset}_fp32_img_s_batch{batch}", round(result.ours_fp32_img_s, 1))
        record(f"forward_{preset}_published_fp32_img_s_batch{batch}", round(result.published_fp32_img_s, 1))
        record(f"forward_{preset}_bf16_vs_published_ratio", round(result.bf16_ratio, 2))


def check_model(device) -> None:
    from eat_curate.benchmarks.device_checks import check_model

    for name, value in check_model(device).items():
        record(name, value)


def training_speed(device, preset: str, batch: int) -> None:
    from eat_curate.benchmarks.train_speed import bench_training
    from training.losses import emd_loss

    result = bench_training(emd_loss, preset, batch_size=batch, steps=5, device=str(device))
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

    import torch

    from eat_curate.benchmarks.jpeg_folders import generated_jpeg_folder

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    record("device", torch.cuda.get_device_name(device) if cuda else "cpu")
    record("torch", torch.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="gpucheck"))
    models = scratch / "models"
    folders: dict[str, Path] = {}

    def jpegs() -> dict[str, Path]:
        if not folders:
            started = time.perf_counter()
            folders["2mp"] = generated_jpeg_folder(scratch / "jpeg2mp", args.images_2mp, 1632, 1224)
            folders["12mp"] = generated_jpeg_folder(scratch / "jpeg12mp", args.images_12mp, 4000, 3000, unique=32)
            record("jpeg_generation_seconds", round(time.perf_counter() - started, 1))
        return folders

    # The figures most wanted first: a run cut short by its time limit keeps them.
    steps = [
        ("ray", lambda: ray_engine_speed(device, models, jpegs()["2mp"], args.preset, args.batch, args.workers,
                                         args.ray_chunks)),
        ("stages", lambda: gpu_path_stages(device, models, jpegs()["2mp"], args.preset, args.batch, args.workers,
                                           args.out)),
        ("engine", lambda: engine_speed(device, models, jpegs(), args.preset, args.batch, args.workers)),
        ("forward", lambda: forward_speed(device, 256 if cuda else 4)),
        ("model", lambda: check_model(device)),
        ("training", lambda: training_speed(device, args.preset, 64 if cuda else 2)),
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
