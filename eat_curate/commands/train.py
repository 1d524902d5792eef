"""`eat-curate train` and `eat-curate evaluate`: thin wrappers over ``training/`` (imported lazily)."""

from __future__ import annotations

import math
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Protocol

import click
from click.core import ParameterSource

from eat_curate.commands.options import (Number, bars_wanted, json_option, model_store, models_dir_option,
                                         no_progress_option)
from eat_curate.commands.output import emit, format_table, to_json
from eat_curate.exit_codes import INTERRUPTED
from eat_curate.model.presets import PRESETS

# Kept here rather than imported from training/, which the CLI may only import lazily.
LABEL_FORMATS = ("auto", "ava", "tad66k", "table")
_LABEL_FORMAT_HELP = (
    "Label file format. ava: AVA.txt (index, id, 10 vote counts, 2 tags, challenge); tad66k: CSV of "
    "image,score (0-10); table: CSV/Parquet with a path column and votes_1..votes_10, or score (1-10), "
    "or rating (1-5 stars). auto: .txt is ava, anything else a table. A CSV may be as a spreadsheet "
    "saves it: UTF-8 with or without a byte-order mark, separated by commas, semicolons (then 7,5 reads "
    "as 7.5) or tabs."
)


def _json_safe(value):
    """NaN (a correlation that is undefined, e.g. of a constant prediction) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


# Label files and id lists are click.Path(exists=True) only: training.labels says what is wrong with a
# folder, /dev/null or a FIFO given instead, and what is expected.
def _data_options(function):
    for option in reversed(
        [
            click.option("--data", type=click.Path(exists=True), metavar="FILE", help="Label file (see --format)."),
            click.option(
                "--images",
                type=click.Path(exists=True, file_okay=False),
                help="Folder the label file's image names are relative to (default: the label file's folder; "
                "absolute names are used as they are).",
            ),
            click.option("--format", "label_format", type=click.Choice(LABEL_FORMATS), help=_LABEL_FORMAT_HELP),
        ]
    ):
        function = option(function)
    return function


@click.command()
@click.option(
    "--config",
    "config_file",
    help="YAML file of settings (any option below, '-' or '_'), or a bundled config by name: "
    "ava (the paper's recipe), tad66k, finetune. Options given here override it.",
)
@_data_options
@click.option(
    "--train-ids",
    type=click.Path(exists=True),
    metavar="FILE",
    help="Official split: training image ids, one per line.",
)
@click.option(
    "--test-ids",
    type=click.Path(exists=True),
    metavar="FILE",
    help="Official split: test image ids, one per line (or a CSV, first column).",
)
@click.option(
    "--val-fraction",
    type=Number(0, 1, min_open=True, max_open=True),
    help="Share held out for validation where no split column names val rows: of all images (seeded "
    "split), of the training images (id lists)  [default: 0.05]. Fewer than 10 validation images "
    "cannot tell epochs apart.",
)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), help="Architecture of a fresh model  [default: tiny].")
@click.option("--init", help="Start from this store model: imported DAT ImageNet weights, or an EAT to fine-tune.")
@click.option("--name", help="Store name of the trained model.")
@click.option("--drop-path", type=Number(0, 1), help="Stochastic depth rate  [default: the preset's].")
@click.option("--epochs", type=click.IntRange(1), help="Epochs  [default: 20].")
@click.option("--batch-size", type=click.IntRange(1), help="Images per step (per worker under Ray)  [default: 16].")
@click.option(
    "--lr",
    type=Number(0, min_open=True),
    help="Learning rate  [default: 1e-5; fine-tuning: 1e-6].",
)
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), help="adamw: decoupled decay  [default: adam].")
@click.option("--weight-decay", type=Number(0), help="Weight decay  [default: 0].")
@click.option(
    "--schedule",
    type=click.Choice(["step", "cosine", "constant"]),
    help="step: the paper's lr x --step-gamma every --step-epochs; cosine: --warmup-epochs of linear "
    "warm-up, then cosine to 0; constant  [default: step].",
)
@click.option("--step-epochs", type=click.IntRange(1), help="Step schedule: epochs per decay  [default: 5].")
@click.option(
    "--step-gamma", type=Number(0, 1, min_open=True), help="Step schedule: lr factor  [default: 0.1]."
)
@click.option("--warmup-epochs", type=Number(0), help="Cosine warm-up, may be fractional  [default: 0].")
@click.option(
    "--keep-epoch",
    type=click.Choice(["best", "last"]),
    help="The epoch saved: best: the exploit epoch with the highest validation SRCC (the last one while no "
    "epoch has a defined SRCC); last: the last epoch (when the validation set is too small to tell epochs "
    "apart)  [default: best].",
)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), help="bf16: autocast  [default: fp32].")
@click.option("--clip-grad", type=Number(0, min_open=True), help="Clip the global gradient norm to this.")
@click.option(
    "--loss",
    type=click.Choice(["auto", "emd", "mse"]),
    help="auto: EMD on votes, MSE on score/10 for single scores.",
)
@click.option(
    "--emd",
    type=click.Choice(["per-sample", "published"]),
    help="per-sample: mean of each image's EMD (r=2); published: the published code's one square root "
    "of the mean over the batch and bins  [default: per-sample].",
)
@click.option("--flip/--no-flip", default=None, help="Random horizontal flip  [default: on].")
@click.option(
    "--crop-from",
    type=click.IntRange(1),
    help="Resize to this, then random-crop to the input size (TAD66K: 256).",
)
@click.option(
    "--explore-epochs",
    type=click.IntRange(0),
    help="Epochs of the explore phase, which weakens offsets heading into their interest point's "
    "quadrant; exploit afterwards  [default: 5; 0 when --init is a trained model, which explored already].",
)
@click.option(
    "--explore-toward",
    type=Number(0),
    help="Explore: factor on offsets heading into the quadrant  [default: 0.25].",
)
@click.option("--explore-away", type=Number(0), help="Explore: factor on the other offsets  [default: 1].")
@click.option(
    "--exploit-toward",
    type=Number(0),
    help="Exploit (and scoring): factor on offsets into the quadrant  [default: 1].",
)
@click.option(
    "--exploit-away",
    type=Number(0),
    help="Exploit (and scoring): factor on the others  [default: 1].",
)
@click.option("--seed", type=int, help="Seeds the weights, the split, the order and the augmentation  [default: 0].")
@click.option("--device", help="auto, cpu, cuda, cuda:1 ...  [default: auto].")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads  [default: torch's choice].")
@click.option("--loader-workers", type=click.IntRange(0), help="Decoding processes  [default: 2].")
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False),
    help="Run folder: per-epoch checkpoint, best weights, metrics.csv  [default: <models dir>/../training/NAME].",
)
@click.option(
    "--resume",
    is_flag=True,
    default=None,
    help="Continue the run in the run folder from its last finished epoch.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="ray: Ray Train, DDP over --workers  [default: local].",
)
@click.option("--workers", type=click.IntRange(1), help="Ray Train workers  [default: 1].")
@click.option("--gpus-per-worker", type=Number(0), help="GPUs per Ray worker; >0 uses NCCL  [default: 0].")
@click.option(
    "--cpus-per-worker",
    type=Number(0, min_open=True),
    help="CPUs per Ray worker, fractions allowed  [default: 1].",
)
@click.option("--force", is_flag=True, help="Replace a store model of the same name.")
@no_progress_option
@models_dir_option
@json_option
def train(
    config_file: str | None, force: bool, no_progress: bool, models_dir: Path | None, as_json: bool, **settings
) -> None:
    """Train EAT on AVA, TAD66K or your own labels; the best epoch goes into the model store.

    Defaults are the paper's AVA recipe (EMD loss, Adam lr 1e-5 x0.1 every 5
    epochs, 20 epochs, batch 16, random flip) with an explore phase of 5
    epochs; fine-tuning a trained model (--init eat-ava) has none. Without an
    official split, a seeded 90/5/5 split is used. Images that are missing or
    do not decode are left out and counted.

    Every epoch prints its validation metrics, appends to metrics.csv and
    checkpoints the run; after a crash, the same command with --resume
    continues and ends where the uninterrupted run would have. The exploit
    epoch with the best validation SRCC (or, with --keep-epoch last, the last
    epoch) is saved, with its card (data, split, metrics, steering schedule),
    as --name; scoring then uses the exploit rule.

    \b
    Examples:
      eat-curate train --config ava --data AVA.txt --images ava/images --init dat-tiny --name eat-ava
      eat-curate train --data my_picks.csv --init eat-ava --lr 1e-6 --epochs 5 --name mine
      eat-curate train --config ava ... --engine ray --workers 4 --gpus-per-worker 1
    """
    from training.config import build_config
    from training.errors import TrainingInterrupted
    from training.run_folders import interrupted_outside_the_epochs, run_folder
    from training.trainer import train as run_training

    config = build_config(config_file, **settings)
    store = model_store(models_dir)
    if config.name:  # before any epoch, not at the save after the last
        store.refuse_builtin_name(config.name)
    log_to = sys.stderr if as_json else sys.stdout

    def log(message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=log_to)

    try:
        if config.engine == "ray":
            from training.ray_train import train_with_ray

            result = train_with_ray(config, store, progress=bars_wanted(no_progress), overwrite=force)
        else:
            result = run_training(config, store, progress=bars_wanted(no_progress), log=log, overwrite=force)
    except TrainingInterrupted as interrupted:  # in the epochs: the trainer counted what was kept
        raise _stopped(interrupted) from None
    except KeyboardInterrupt:  # before the first epoch, or in Ray's driver: the run folder tells what was kept
        named = config.checkpoint_dir or config.name
        raise _stopped(interrupted_outside_the_epochs(run_folder(config, store) if named else None)) from None
    summary = {
        "model_id": result.card.model_id,
        "best_epoch": result.best_epoch,
        "kept_by": result.card.extra.get("kept_by"),
        "val": result.card.metrics["val"],
        "test": result.test_metrics.summary() if result.test_metrics else None,
        "run_dir": str(result.run_dir),
        "data": result.data,
    }
    if as_json:
        click.echo(to_json(_json_safe(summary)))
        return
    data = result.data
    dropped = ", ".join(f"{count} {reason}" for reason, count in sorted(data["dropped"].items())) or "none"
    click.echo(f"data: {data['labelled']} labelled, left out: {dropped}; split {data['sizes']} ({data['split']})")
    kept = f"epoch {result.best_epoch} ({summary['kept_by'] or config.keep_epoch})"
    click.echo(f"saved {summary['model_id']}: {kept}, run folder {result.run_dir}")
    rows = [{"split": "val", **summary["val"]}]
    if summary["test"]:
        rows.append({"split": "test", **summary["test"]})
    click.echo(format_table(rows, ["split", "count", "srcc", "plcc", "accuracy", "mean_emd"]))


class _Interruption(Protocol):
    """training.errors.TrainingInterrupted, which this module may import only inside a function."""

    kept: str
    next_run: str | None
    resume: bool


def _stopped(interrupted: _Interruption) -> click.ClickException:
    """Ctrl-C's one line (exit 130): what the run folder kept, then the exact command that goes on from it."""
    line = interrupted.kept
    if interrupted.next_run is not None:
        line += f"; to {interrupted.next_run}, run: {_this_command(resume=interrupted.resume)}"
    stopped = click.ClickException(line)
    stopped.exit_code = INTERRUPTED.code
    return stopped


def _this_command(resume: bool) -> str:
    """This command as typed (every option given on the command line), with or without --resume, quoted
    for a shell."""
    ctx = click.get_current_context()
    words = ctx.command_path.split()
    for option in ctx.command.params:
        if option.name != "resume" and ctx.get_parameter_source(option.name) is ParameterSource.COMMANDLINE:
            words += _as_typed(option, ctx.params[option.name])
    return shlex.join([*words, "--resume"] if resume else words)


def _as_typed(option: click.Option, value: object) -> list[str]:
    """The words that give ``option`` its ``value``."""
    if option.is_flag and option.secondary_opts:  # --flip/--no-flip
        return [option.opts[0] if value else option.secondary_opts[0]]
    if option.is_flag:
        return [option.opts[0]] if value else []
    return [option.opts[0], str(value)]


@click.command()
@click.option("--model", required=True, help="Model to evaluate: a store name or a model folder.")
@_data_options
@click.option(
    "--ids",
    type=click.Path(exists=True),
    metavar="FILE",
    help="Only the images in this id list (e.g. an official test list).",
)
@click.option(
    "--exclude-training",
    is_flag=True,
    help="Leave out the images the model was trained or validated on (as its folder records them).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option(
    "--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True, help="bf16: autocast."
)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Images per forward pass.")
@click.option("--loader-workers", type=click.IntRange(0), default=2, show_default=True, help="Decoding processes.")
@no_progress_option
@models_dir_option
@json_option
def evaluate(
    model: str,
    data: str | None,
    images: str | None,
    label_format: str | None,
    ids: str | None,
    exclude_training: bool,
    device: str,
    precision: str,
    batch_size: int,
    loader_workers: int,
    no_progress: bool,
    models_dir: Path | None,
    as_json: bool,
) -> None:
    """Score labelled images with a model and report the paper's metrics.

    SRCC and PLCC of mean scores, binary accuracy at 5.0 (TAD66K's 0.5 on
    score/10 is the same cut), mean EMD where the labels are votes, and a
    calibration table: predicted against true mean score by decile of the
    prediction; where the labels take at most 10 values (your 1-5 stars, from
    `eat-curate ratings`), the scores the model gave each label's images.
    Missing or undecodable images are left out and counted.

    Images the model was trained or validated on (as its folder records
    them) make the figures look better than they are: a warning says how
    many; --exclude-training leaves them out.
    """
    from training.evaluation import evaluate_model

    if data is None:
        raise click.UsageError("give --data, the label file to evaluate on")
    loaded = model_store(models_dir).load(model)
    report = evaluate_model(
        loaded,
        data,
        images,
        label_format or "auto",
        ids,
        device,
        precision,
        batch_size,
        loader_workers,
        progress=bars_wanted(no_progress),
        exclude_training=exclude_training,
    )
    if as_json:
        click.echo(to_json(_json_safe(report.to_dict())))
        return
    metrics = report.metrics
    left_out = Counter(report.dropped) + Counter(report.failures)
    click.echo(
        f"{report.model_id} on {report.labels} ({report.format}): {metrics.count} images, "
        f"{left_out.total()} left out"
    )
    for reason, count in sorted(left_out.items()):
        click.echo(f"  left out, {reason}: {count}")
    emit(
        [
            {
                "srcc": metrics.srcc,
                "plcc": metrics.plcc,
                f"accuracy@{metrics.threshold:g}": metrics.accuracy,
                "mean_emd": metrics.mean_emd,
            }
        ],
        as_json=False,
    )
    click.echo("\ncalibration (by decile of the predicted score):")
    emit(
        [
            {
                "decile": row.decile,
                "count": row.count,
                "predicted": f"{row.predicted_low:.2f}-{row.predicted_high:.2f}",
                "predicted_mean": row.predicted_mean,
                "true_mean": row.true_mean,
            }
            for row in metrics.calibration
        ],
        as_json=False,
    )
    if metrics.by_label:
        _print_by_label(metrics.by_label)


def _print_by_label(groups: list) -> None:
    """What the model predicted for each label; labels that are star ratings (1-5) are named as stars."""
    from training.labels import rating_to_score

    stars = {rating_to_score(count): count for count in range(1, 6)}
    as_stars = all(group.label in stars for group in groups)
    click.echo("\nby label (the scores the model gave each label's images):")
    emit(
        [
            {
                **({"stars": stars[group.label]} if as_stars else {}),
                "label": group.label,
                "count": group.count,
                "predicted": f"{group.predicted_low:.2f}-{group.predicted_high:.2f}",
                "predicted_mean": group.predicted_mean,
            }
            for group in groups
        ],
        as_json=False,
    )
