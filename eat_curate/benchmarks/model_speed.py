"""`eat-curate bench model`: our EAT forward against the published forward, same weights, same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from eat_curate.benchmarks.timing import interleaved_rates, synchronize
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


def paired_models(preset: str, seed: int) -> tuple[PublishedEAT, EAT]:
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
    device: str = "cpu",
) -> ModelBenchResult:
    if threads:
        torch.set_num_threads(threads)
    target = torch.device(device)
    # On CUDA our model runs channels-last, as the predictor runs it there (cuDNN prefers it);
    # on CPU the layout stays that of the figures published so far.
    layout = torch.channels_last if target.type == "cuda" else torch.contiguous_format
    size = get_preset(preset).image_size
    published, ours = paired_models(preset, seed)
    published, ours = published.to(target), ours.to(target, memory_format=layout)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, size, size, generator=generator).to(target, memory_format=layout)

    # Same outputs: image by image, since the published forward mixes a batch's interest points.
    logit_diff = max(
        (published(images[i : i + 1]) - ours(images[i : i + 1])).abs().max().item()
        for i in range(min(2, batch_size))
    )

    def runner(model: torch.nn.Module, bf16: bool):
        def run() -> int:
            with torch.autocast(target.type, dtype=torch.bfloat16, enabled=bf16):
                model(images)
            synchronize(target)
            return batch_size

        return run

    runners = {"published": runner(published, False), "ours_fp32": runner(ours, False)}
    score_diff = None
    if with_bf16:
        runners["ours_bf16"] = runner(ours, True)
        with torch.autocast(target.type, dtype=torch.bfloat16):
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


def report_lines(result: ModelBenchResult) -> list[str]:
    lines = [
        f"EAT-{result.preset}, batch {result.batch_size}, {result.threads} threads, median of {result.rounds} rounds",
        f"  published forward (fp32)  {result.published_fp32_img_s:8.2f} img/s",
        f"  eat-curate (fp32)         {result.ours_fp32_img_s:8.2f} img/s   {result.fp32_ratio:.2f}x",
    ]
    if result.ours_bf16_img_s is not None:
        lines.append(f"  eat-curate (bf16)         {result.ours_bf16_img_s:8.2f} img/s   {result.bf16_ratio:.2f}x")
    lines.append(f"  same outputs: max |logit diff| fp32 {result.max_abs_logit_diff_fp32:.2e}")
    if result.mean_abs_score_diff_bf16 is not None:
        lines.append(
            f"  bf16 vs fp32: mean |score diff| {result.mean_abs_score_diff_bf16:.4f} (softmax head, random weights)"
        )
    return lines
