"""`eat-curate bench model`: our EAT forward against the published forward, same weights, same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.model import EAT, PUBLISHED_RULE, checkpoint_filter_fn, get_preset, score_moments
from eat_curate.model.reference import PublishedEAT


@dataclass
class ModelBenchResult:
    preset: str
    batch_size: int
    threads: int
    rounds: int
    published_fp32_img_s: float
    ours_fp32_img_s: float
    ours_bf16_img_s: float | None
    fp32_ratio: float
    bf16_ratio: float | None
    max_abs_logit_diff_fp32: float
    mean_abs_score_diff_bf16: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _paired_models(preset: str, seed: int) -> tuple[PublishedEAT, EAT]:
    """The published forward with random weights, and our EAT loaded from its state dict."""
    torch.manual_seed(seed)
    published = PublishedEAT(preset).eval()
    with torch.no_grad():
        for key, value in published.state_dict().items():
            if value.is_floating_point() and not key.endswith("attn_mask"):
                value.normal_(0, 0.05)
    ours = EAT(preset, head_mode="published").eval()
    ours.load_state_dict(checkpoint_filter_fn(published.state_dict(), ours), strict=True)
    ours.set_steering(PUBLISHED_RULE)
    return published, ours


@torch.inference_mode()
def bench_model(
    preset: str = "tiny",
    batch_size: int = 8,
    with_bf16: bool = True,
    rounds: int = 5,
    threads: int | None = None,
    seed: int = 0,
) -> ModelBenchResult:
    if threads:
        torch.set_num_threads(threads)
    size = get_preset(preset).image_size
    published, ours = _paired_models(preset, seed)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, size, size, generator=generator)

    # Same outputs: image by image, since the published forward mixes a batch's interest points.
    logit_diff = max((published(images[i : i + 1]) - ours(images[i : i + 1])).abs().max().item() for i in range(2))

    def run_published() -> int:
        published(images)
        return batch_size

    def run_ours() -> int:
        ours(images)
        return batch_size

    def run_ours_bf16() -> int:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours(images)
        return batch_size

    runners = {"published": run_published, "ours_fp32": run_ours}
    score_diff = None
    if with_bf16:
        runners["ours_bf16"] = run_ours_bf16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = ours(images)
        # Scored as our models score (softmax head): the raw published head has no fixed scale.
        mean_low, _ = score_moments(low.float().softmax(dim=-1))
        mean_full, _ = score_moments(ours(images).softmax(dim=-1))
        score_diff = (mean_low - mean_full).abs().mean().item()
    rates = interleaved_rates(runners, rounds=rounds)
    base = rates["published"]
    return ModelBenchResult(
        preset=preset,
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        rounds=rounds,
        published_fp32_img_s=base,
        ours_fp32_img_s=rates["ours_fp32"],
        ours_bf16_img_s=rates.get("ours_bf16"),
        fp32_ratio=rates["ours_fp32"] / base,
        bf16_ratio=rates["ours_bf16"] / base if with_bf16 else None,
        max_abs_logit_diff_fp32=logit_diff,
        mean_abs_score_diff_bf16=score_diff,
    )


# --- one preset against another (e.g. the built-in model's nano against tiny) ------------


@dataclass
class PresetSpeedRow:
    dtype: str
    baseline_img_s: float
    preset_img_s: float
    ratio: float


@dataclass
class PresetSpeedResult:
    preset: str
    baseline: str
    batch_size: int
    threads: int
    rounds: int
    rows: list[PresetSpeedRow]
    preset_weights_mb: float  # as float16 safetensors, as built-in models ship
    baseline_weights_mb: float

    def to_dict(self) -> dict:
        return asdict(self)


def _fp16_megabytes(model: EAT) -> float:
    return sum(value.numel() * (2 if value.is_floating_point() else value.element_size())
               for value in model.state_dict().values()) / 1e6


@torch.inference_mode()
def bench_presets(
    preset: str = "nano",
    baseline: str = "tiny",
    batch_size: int = 8,
    dtypes: tuple[str, ...] = ("fp32", "bf16"),
    rounds: int = 7,
    threads: int | None = None,
    seed: int = 0,
) -> PresetSpeedResult:
    """Scoring forward img/s of ``preset`` against ``baseline`` (random weights), both timed in the same rounds.

    The forward is the predictor's: eval mode, channels-last input, bf16
    autocast for bf16.
    """
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    models = {name: EAT(name).eval() for name in (baseline, preset)}
    sizes = {get_preset(name).image_size for name in models}
    if len(sizes) != 1:
        raise ValueError(f"presets {preset} and {baseline} take different input sizes: {sorted(sizes)}")
    side = sizes.pop()
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, side, side, generator=generator).contiguous(memory_format=torch.channels_last)

    def runner(name: str, dtype: str):
        def run() -> int:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                models[name](images)
            return batch_size

        return run

    runners = {(name, dtype): runner(name, dtype) for dtype in dtypes for name in models}
    rates = interleaved_rates({f"{name}/{dtype}": run for (name, dtype), run in runners.items()}, rounds=rounds)
    rows = [
        PresetSpeedRow(
            dtype,
            rates[f"{baseline}/{dtype}"],
            rates[f"{preset}/{dtype}"],
            rates[f"{preset}/{dtype}"] / rates[f"{baseline}/{dtype}"],
        )
        for dtype in dtypes
    ]
    return PresetSpeedResult(
        preset=preset,
        baseline=baseline,
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        rounds=rounds,
        rows=rows,
        preset_weights_mb=_fp16_megabytes(models[preset]),
        baseline_weights_mb=_fp16_megabytes(models[baseline]),
    )
