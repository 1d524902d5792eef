"""GPU checks and figures, run on a CUDA machine: `PYTHONPATH=. python3 scripts/gpu_check.py --out DIR`.

What only a GPU shows, in one short run (a few minutes on an H100/H200):
1. correctness on CUDA: batch invariance (fp32), agreement with the published forward,
   bf16 vs fp32 score deviation;
2. forward img/s of EAT-tiny/base in bf16 and fp32, against the published forward;
3. JPEG decoding on the GPU (nvJPEG) and the in-process engine end to end with EAT-base
   bf16, GPU decode vs CPU decode, on generated 2 MP and 12 MP JPEGs;
4. training img/s of EAT-base (bf16 and fp32).
Prints each figure as it goes and writes them all to DIR/gpu_check.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
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


def jpeg_folder(root: Path, count: int, width: int, height: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(root / f"img_{i:05d}.jpg", width, height, i) for i in range(count)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_jpeg, jobs, chunksize=8))
    return root


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
    from eat_curate.model.model_store import ModelStore
    from eat_curate.runs import RunInfo, RunSummary
    from eat_curate.scoring.engine import EngineOptions, LocalEngine
    from eat_curate.scoring.predictor import Predictor
    from eat_curate.scoring.progress import Progress

    store = ModelStore(models)
    store.init(preset, preset, seed=0)
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
    parser.add_argument("--skip", nargs="*", default=[], help="steps to leave out")
    args = parser.parse_args()
    device = torch.device(args.device)
    record("device", torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    record("torch", torch.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="gpucheck"))
    steps = [
        ("model", lambda: check_model(device)),
        ("forward", lambda: forward_speed(device)),
        ("engine", lambda: engine_speed(device, scratch / "models", {
            "2mp": jpeg_folder(scratch / "jpeg2mp", args.images_2mp, 1632, 1224),
            "12mp": jpeg_folder(scratch / "jpeg12mp", args.images_12mp, 4000, 3000),
        }, args.preset, args.batch, args.workers)),
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
