"""GPU checks and figures, run on a CUDA machine: `PYTHONPATH=. python3 scripts/gpu_check.py --out DIR`.

What only a GPU shows, in one short run (about 5-8 minutes on an H100/H200), the figures
of issue 30 first, so that a run cut short keeps them:
1. forward: EAT-base (randomly initialised: speed needs no trained weights) in bf16, the
   forward alone at the batch size, eager vs torch.compile (and CUDA graphs with --cuda-graphs);
2. engine: nvJPEG decoding alone (12 MP), then the in-process engine end to end (the pipeline:
   nvJPEG on the prep stream, the compiled model on the compute stream) on generated 2 MP and
   12 MP JPEGs (and on real photographs given with --photos), with how busy the compute stream was;
   the 2 MP run again with CPU decoding;
3. scores: bf16 compiled vs fp32 eager, mean and max |delta score| on the same pixels;
4. jpeg: nvJPEG decoding alone (12 MP) through each JPEG backend of the GPU path, torchvision and
   nvImageCodec (pip-installed first if missing, at most a minute, from --nvimgcodec-wheels on a
   machine without network; "nvImageCodec: not available (why)" if that fails), and how their pixels
   and refusals compare;
5. ray: the Ray engine end to end (one actor holding the GPU) against the in-process engine;
6. model: correctness on CUDA (batch invariance, the published forward, bf16 vs fp32).
Opt-in (--with): stages (where a batch's time goes on the GPU-decode path), published
(forward img/s of EAT-tiny/base against the published forward), training (img/s of EAT-base).
Prints each figure as it goes and writes them all to DIR/gpu_check.json. `--device cpu`
dry-runs the logic on small sizes (no compiling on a CPU).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

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


MODEL_LABEL = "eat_{preset}_random_init"  # the figures' names say the weights are random


class Models:
    """The predictors the steps share, built once: compiling EAT-base takes minutes."""

    def __init__(self, device, models: Path, preset: str, batch: int) -> None:
        self.device, self.models, self.preset, self.batch = device, models, preset, batch
        self.label = MODEL_LABEL.format(preset=preset)
        self._built: dict[tuple, object] = {}

    def get(self, dtype: str = "bf16", compiled: bool = False, cuda_graphs: bool = False):
        """A predictor; ``compiled`` only where it can be (a CUDA device), at the batch size."""
        from eat_curate.model.checkpoint import load_model
        from eat_curate.scoring.predictor import Predictor

        cuda = self.device.type == "cuda"
        key = (dtype, compiled and cuda, cuda_graphs and cuda)
        if key not in self._built:
            predictor = Predictor(load_model(untrained_model(self.models, self.preset)), device=str(self.device),
                                  dtype=dtype, compile=key[1], cuda_graphs=key[2])
            predictor.use_batch_size(self.batch)
            self._built[key] = predictor
        return self._built[key]


def forward_rate(predictor, pixels, rounds: int = 10) -> float:
    """img/s of the forward alone (normalising included) on device-resident uint8 pixels."""
    from eat_curate.benchmarks.timing import synchronize

    for _ in range(2):
        predictor.scores_of_pixels(pixels)  # warm-up: allocator, cuDNN/cuBLAS choices
    synchronize(predictor.device)
    start = time.perf_counter()
    for _ in range(rounds):
        predictor.scores_of_pixels(pixels)
    synchronize(predictor.device)
    return rounds * len(pixels) / (time.perf_counter() - start)


def forward_step(models: Models, cuda_graphs: bool) -> None:
    """EAT's forward alone in bf16 at the batch size: eager, compiled, and compiled as CUDA graphs."""
    import torch

    from eat_curate.benchmarks.timing import synchronize

    size = models.get().input_size
    pixels = torch.randint(0, 256, (models.batch, size, size, 3), dtype=torch.uint8, device=models.device)
    prefix = f"forward_{models.label}_bf16_batch{models.batch}"
    record(f"{prefix}_eager_img_s", round(forward_rate(models.get(), pixels), 1))
    if models.device.type != "cuda":
        record(f"{prefix}_compiled", "not on a CPU")
        return
    variants = [("compiled", False)] + ([("cuda_graphs", True)] if cuda_graphs else [])
    for name, graphs in variants:
        predictor = models.get(compiled=True, cuda_graphs=graphs)
        start = time.perf_counter()
        predictor.scores_of_pixels(pixels)  # compiles (and captures) at the batch size
        synchronize(models.device)
        record(f"{prefix}_{name}_compile_seconds", round(time.perf_counter() - start, 1))
        record(f"{prefix}_{name}_img_s", round(forward_rate(predictor, pixels), 1))


def engine_run(predictor, folder: Path, batch: int, workers: int, gpu_decode: bool):
    """The in-process engine over ``folder`` after a warm-up run; (summary, compute time)."""
    from eat_curate.benchmarks.engine_runs import counted_run
    from eat_curate.io.sources import iter_items
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.engine import EngineOptions, LocalEngine

    items = list(iter_items([str(folder)]))
    engine = LocalEngine(predictor, EngineOptions(batch_size=batch, workers=workers, gpu_decode=gpu_decode))
    run = RunInfo(new_run_id(), predictor.model_id, "gpu-check", "", [str(folder)])
    counted_run(engine, items[: 2 * batch], run)
    summary = counted_run(engine, items, run)
    return summary, engine.compute_time


def engine_step(models: Models, folders: dict[str, Path], workers: int, cuda_graphs: bool) -> None:
    """nvJPEG alone, then the in-process engine end to end (compiled model), GPU and CPU decoding."""
    from eat_curate.benchmarks.gpu_decode_speed import decode_only_rate
    from eat_curate.scoring.jpeg_backends import choose_backend

    nvjpeg = decode_only_rate(folders["12mp"], models.device)
    record("nvjpeg_decode_only_12mp_img_s", round(nvjpeg, 1))
    record("engine_jpeg_backend", choose_backend(models.device).name)  # what the engine's decoder picks
    predictor = models.get(compiled=True, cuda_graphs=cuda_graphs)
    runs = [(label, folder, True) for label, folder in folders.items()] + [("2mp", folders["2mp"], False)]
    for label, folder, gpu_decode in runs:
        summary, compute = engine_run(predictor, folder, models.batch, workers, gpu_decode)
        name = f"engine_{label}_{models.label}_bf16_{'compiled' if predictor.compiled else 'eager'}" + (
            "_gpu_decode" if gpu_decode else "_cpu_decode")
        record(f"{name}_img_s", round(summary.images_per_s, 1))
        record(f"{name}_ok_failed", [summary.ok, summary.failed])
        record(f"{name}_compute_busy_share_of_span", round(compute.busy_share, 3))
        record(f"{name}_compute_busy_share_of_wall", round(compute.busy_s / compute.wall_s, 3))
        if label == "12mp" and gpu_decode:
            record("engine_12mp_vs_nvjpeg_alone", round(summary.images_per_s / nvjpeg, 3))


def scores_step(models: Models, folders: dict[str, Path], workers: int, count: int) -> None:
    """bf16 compiled against fp32 eager on the same pixels (both decoded on the GPU): |delta score|."""
    import numpy as np

    from eat_curate.benchmarks.engine_runs import CountingSink, counted_run
    from eat_curate.io.sources import iter_items
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.engine import EngineOptions, LocalEngine

    items = [item for folder in folders.values() for item in list(iter_items([str(folder)]))[:count]]
    means = {}
    for name, predictor in (("fp32_eager", models.get("fp32")), ("bf16_eager", models.get("bf16")),
                            ("bf16_compiled", models.get("bf16", compiled=True))):
        sink = CountingSink()
        engine = LocalEngine(predictor, EngineOptions(batch_size=models.batch, workers=workers, gpu_decode=True))
        counted_run(engine, items, RunInfo(new_run_id(), predictor.model_id, "gpu-check", "", []), sink)
        means[name] = sink.means
    reference = means["fp32_eager"]
    for name in ("bf16_eager", "bf16_compiled"):
        deltas = np.array([abs(means[name][key] - value) for key, value in reference.items() if value is not None])
        label = f"scores_{models.label}_{name}_vs_fp32_eager"
        record(f"{label}_mean_abs_delta", round(float(deltas.mean()), 5))
        record(f"{label}_max_abs_delta", round(float(deltas.max()), 5))
    record("scores_images", len(reference))


PIP_SECONDS = 60  # the most an attempt to install nvImageCodec may take (a machine without network)


def nvimgcodec_missing(wheels: Path | None) -> str | None:
    """None once ``nvidia.nvimgcodec`` imports (pip-installing it first if need be), else why it does not."""
    import torch

    from eat_curate.scoring.jpeg_backends import nvimgcodec_module, one_line

    try:
        if nvimgcodec_module() is not None:
            return None
    except Exception as error:  # installed but broken: installing again would not help
        return one_line(error)
    major = (torch.version.cuda or "12").split(".")[0]  # the wheel of torch's CUDA major version
    package = f"nvidia-nvimgcodec-cu{major}[nvjpeg]>=0.5"
    command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--retries", "0",
               "--timeout", "10", package] + (["--no-index", "--find-links", str(wheels)] if wheels else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_SECONDS)
    except subprocess.TimeoutExpired:
        return f"pip install {package}: no answer in {PIP_SECONDS} s"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"pip install {package} failed: {lines[-1] if lines else done.returncode}"
    importlib.invalidate_caches()
    try:
        return None if nvimgcodec_module() is not None else "installed, but nvidia.nvimgcodec is not found"
    except Exception as error:
        return one_line(error)


def jpeg_backends_step(device, folder: Path, wheels: Path | None, count: int = 256, chunk: int = 64,
                       compared: int = 16) -> None:
    """nvJPEG decoding alone of the same JPEGs through each backend at hand: img/s, pixels, refusals."""
    import numpy as np

    from eat_curate.benchmarks.timing import interleaved_rates, synchronize
    from eat_curate.scoring import jpeg_backends
    from eat_curate.scoring.gpu_decode import encoded_tensor

    backends = [jpeg_backends.TorchvisionBackend(device)]
    if device.type != "cuda":
        record("nvImageCodec", "not on a CPU")
    else:
        missing = nvimgcodec_missing(wheels)
        if missing is None:
            try:
                backends.append(jpeg_backends.NvImageCodecBackend(device))
            except Exception as error:
                missing = jpeg_backends.one_line(error)
            else:
                module = importlib.import_module(jpeg_backends.NVIMGCODEC_MODULE)
                record("nvImageCodec", getattr(module, "__version__", "installed"))
        if missing is not None:
            record("nvImageCodec", f"not available ({missing})")
    encoded = [encoded_tensor(path.read_bytes()) for path in sorted(folder.glob("*.jpg"))[:count]]

    def decode_all(backend) -> int:
        for first in range(0, len(encoded), chunk):
            backend.decode(encoded[first : first + chunk])
        synchronize(device)
        return len(encoded)

    rates = interleaved_rates({backend.name: (lambda backend=backend: decode_all(backend)) for backend in backends},
                              rounds=3)
    for name, rate in rates.items():
        record(f"jpeg_backend_{name}_decode_12mp_img_s", round(rate, 1))
    if len(backends) > 1:  # the same files through both: do they refuse the same ones, and how close are the pixels?
        reference, other = (backend.decode(encoded[:compared]) for backend in backends)
        label = f"jpeg_backend_{backends[1].name}_vs_{backends[0].name}"
        record(f"{label}_refused", [sum(image is None for image in reference), sum(image is None for image in other)])
        diffs = [(a.int() - b.int()).abs() for a, b in zip(reference, other)
                 if a is not None and b is not None and a.shape == b.shape]
        if diffs:
            record(f"{label}_mean_abs_pixel_diff", round(float(np.mean([d.float().mean().item() for d in diffs])), 4))
            record(f"{label}_max_abs_pixel_diff", max(int(d.max().item()) for d in diffs))
        record(f"{label}_shape_mismatches", sum(a is not None and b is not None and a.shape != b.shape
                                                for a, b in zip(reference, other)))
        record(f"{label}_rate_ratio", round(rates[backends[1].name] / rates[backends[0].name], 3))


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
                                       ray_engine=RayEngine(model_folder, options, ray_options),
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


def published_forward_speed(device, batch: int) -> None:
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


DEFAULT_STEPS = ("forward", "engine", "scores", "jpeg", "ray", "model")
EXTRA_STEPS = ("stages", "published", "training")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--images-2mp", type=int, default=4096)
    parser.add_argument("--images-12mp", type=int, default=384)
    parser.add_argument("--photos", type=Path, default=None,
                        help="a folder of real photographs (JPEGs) to run the engine and the score check on too")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script's logic on small sizes")
    parser.add_argument("--preset", default="base", help="EAT preset, randomly initialised")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--cuda-graphs", action="store_true", help="also time the compiled model as CUDA graphs")
    parser.add_argument("--score-images", type=int, default=512, help="scores: images per folder compared")
    parser.add_argument("--ray-chunks", type=int, nargs="+", default=[4, 32],
                        help="Ray: images per read task to try with GPU decoding")
    parser.add_argument("--nvimgcodec-wheels", type=Path, default=None,
                        help="jpeg: a folder of wheels to install nvImageCodec from (pip --no-index)")
    parser.add_argument("--only", nargs="*", choices=DEFAULT_STEPS + EXTRA_STEPS, default=None,
                        help="run only these steps")
    parser.add_argument("--with", dest="extra", nargs="*", choices=EXTRA_STEPS, default=[],
                        help="opt-in steps to run after the default ones")
    parser.add_argument("--skip", nargs="*", default=[], help="steps to leave out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.simplefilter("ignore")  # the untrained model's warning, torchvision's deprecation: figures only

    import torch

    from eat_curate.benchmarks.jpeg_folders import generated_jpeg_folder
    from eat_curate.scoring.jpeg_backends import JpegBackendWarning

    warnings.simplefilter("default", JpegBackendWarning)  # a JPEG backend given up on: the figures need saying so

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    record("device", torch.cuda.get_device_name(device) if cuda else "cpu")
    record("torch", torch.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="gpucheck"))
    models = scratch / "models"
    shared = Models(device, models, args.preset, args.batch)
    folders: dict[str, Path] = {}

    def jpegs() -> dict[str, Path]:
        if not folders:
            started = time.perf_counter()
            folders["2mp"] = generated_jpeg_folder(scratch / "jpeg2mp", args.images_2mp, 1632, 1224)
            folders["12mp"] = generated_jpeg_folder(scratch / "jpeg12mp", args.images_12mp, 4000, 3000, unique=32)
            if args.photos:
                folders["photos"] = args.photos
            record("jpeg_generation_seconds", round(time.perf_counter() - started, 1))
        return folders

    # The figures most wanted first: a run cut short by its time limit keeps them.
    steps = {
        "forward": lambda: forward_step(shared, args.cuda_graphs),
        "engine": lambda: engine_step(shared, jpegs(), args.workers, args.cuda_graphs),
        "scores": lambda: scores_step(shared, jpegs(), args.workers, args.score_images),
        "jpeg": lambda: jpeg_backends_step(device, jpegs()["12mp"], args.nvimgcodec_wheels),
        "ray": lambda: ray_engine_speed(device, models, jpegs()["2mp"], args.preset, args.batch, args.workers,
                                        args.ray_chunks),
        "model": lambda: check_model(device),
        "stages": lambda: gpu_path_stages(device, models, jpegs()["2mp"], args.preset, args.batch, args.workers,
                                          args.out),
        "published": lambda: published_forward_speed(device, 256 if cuda else 4),
        "training": lambda: training_speed(device, args.preset, 64 if cuda else 2),
    }
    chosen = args.only if args.only is not None else [*DEFAULT_STEPS, *args.extra]
    try:
        for name in chosen:
            if name in args.skip:
                continue
            start = time.perf_counter()
            try:
                steps[name]()
            except Exception as error:  # one failing step must not hide the others' figures
                record(f"{name}_error", f"{type(error).__name__}: {error}")
            record(f"{name}_seconds", round(time.perf_counter() - start, 1))
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "gpu_check.json").write_text(json.dumps(FIGURES, indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # generated JPEGs and models: gigabytes on a real run


if __name__ == "__main__":
    sys.exit(main())
