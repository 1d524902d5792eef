"""`eat-curate bench presets`: one preset's scoring forward against another's (e.g. the built-in nano against tiny)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.model import EAT, get_preset
from eat_curate.scoring.predictor import cpu_has_fast_bf16


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


def report_lines(result: PresetSpeedResult) -> list[str]:
    preset, baseline = result.preset, result.baseline
    lines = [
        f"EAT-{preset} against EAT-{baseline}, batch {result.batch_size}, {result.threads} threads, "
        f"median of {result.rounds} rounds (scoring forward, random weights)"
    ]
    lines.extend(
        f"  {row.dtype}  {baseline} {row.baseline_img_s:8.2f} img/s   {preset} {row.preset_img_s:8.2f} img/s"
        f"   {row.ratio:.2f}x"
        for row in result.rows
    )
    lines.append(
        f"  weights as float16: {baseline} {result.baseline_weights_mb:.1f} MB, {preset} {result.preset_weights_mb:.1f} MB"
    )
    lines.append(f"  `score --dtype auto` runs {'bf16' if cpu_has_fast_bf16() else 'fp32'} on this CPU")
    return lines
