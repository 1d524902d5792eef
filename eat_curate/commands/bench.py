"""`eat-curate bench`: benchmarks that print figures and ratios against a baseline measured in the same run."""

from __future__ import annotations

import click

from eat_curate.commands.output import to_json
from eat_curate.model.presets import PRESETS


@click.group()
def bench() -> None:
    """Measure speed; every figure comes with a baseline measured in the same run."""


@bench.command("model")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16", "both"]),
    default="both",
    show_default=True,
    help="Our forward in fp32, bf16 autocast, or both (the published baseline always runs fp32).",
)
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Timed rounds (median).")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_model_command(preset: str, batch_size: int, dtype: str, rounds: int, threads: int | None, as_json: bool) -> None:
    """Forward img/s of our EAT against the published EAT forward, on random weights shared by both.

    Runs the two in turn every round (so machine noise hits both), checks
    that they give the same outputs, and prints the ratio.
    """
    from eat_curate.benchmarks.model_speed import bench_model

    if dtype == "bf16":
        click.echo("note: fp32 is timed too; it is the reference for the bf16 score deviation", err=True)
    result = bench_model(preset, batch_size, with_bf16=dtype != "fp32", rounds=rounds, threads=threads)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"EAT-{result.preset}, batch {result.batch_size}, {result.threads} threads, median of {result.rounds} rounds")
    click.echo(f"  published forward (fp32)  {result.published_fp32_img_s:8.2f} img/s")
    click.echo(f"  eat-curate (fp32)         {result.ours_fp32_img_s:8.2f} img/s   {result.fp32_ratio:.2f}x")
    if result.ours_bf16_img_s is not None:
        click.echo(f"  eat-curate (bf16)         {result.ours_bf16_img_s:8.2f} img/s   {result.bf16_ratio:.2f}x")
    click.echo(f"  same outputs: max |logit diff| fp32 {result.max_abs_logit_diff_fp32:.2e}")
    if result.mean_abs_score_diff_bf16 is not None:
        click.echo(f"  bf16 vs fp32: mean |score diff| {result.mean_abs_score_diff_bf16:.4f} (random weights)")
