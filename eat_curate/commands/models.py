"""`eat-curate models`: the model store (list, info, init, import, remove)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from eat_curate.commands.card_view import card_lines
from eat_curate.commands.options import json_option, model_store, models_dir_option
from eat_curate.commands.output import emit, to_json
from eat_curate.model.presets import PRESETS
from eat_curate.model.weight_formats import FORMATS


@click.group()
def models() -> None:
    """Manage the models that score images.

    A model is a folder with safetensors weights and a JSON card (preset,
    head mode, steering mode, training data, metrics, sha256 of the weights).
    """


@models.command("list")
@models_dir_option
@json_option
def list_models(models_dir: Path | None, as_json: bool) -> None:
    """List the models in the store and those built into the package.

    A model folder that cannot score (its card or weights missing, damaged or
    wrong) is listed too, with its problem.
    """
    store = model_store(models_dir)
    default = store.default_name()
    rows = [
        {
            "name": entry.name,
            "preset": entry.card.preset if entry.card else None,
            "trained": entry.card.trained if entry.card else None,
            "built_in": entry.built_in,
            "default": entry.name == default and entry.built_in,
            "model_id": entry.card.model_id if entry.card else None,
            "source": entry.card.source if entry.card else None,
            "problem": entry.problem,
        }
        for entry in store.list()
    ]
    if not as_json and not rows:
        click.echo(f"No models in {store.root}. Create one with `eat-curate models init` or `models import`.")
        return
    broken = [row["name"] for row in rows if row["problem"]]
    if as_json:
        click.echo(to_json(finite(rows)))
        return
    emit(rows if broken else [{k: v for k, v in row.items() if k != "problem"} for row in rows], as_json=False)
    if broken:
        click.echo(f"{len(broken)} cannot score ({', '.join(broken)}): see problem; "
                   "`eat-curate models remove NAME` deletes one", err=True)


@models.command()
@click.argument("name")
@models_dir_option
@json_option
def info(name: str, models_dir: Path | None, as_json: bool) -> None:
    """Show a model's card (NAME from the store, or a model folder)."""
    entry = model_store(models_dir).entry(name)  # a card that does not read is refused, saying why
    card = entry.card
    data = card.to_dict()
    if as_json:
        click.echo(to_json(finite(data)))
    else:
        for line in card_lines(data, card.model_id):
            click.echo(line)
        click.echo(f"(the whole card: eat-curate models info {name} --json)", err=True)
    if entry.problem:
        click.echo(f"warning: this model cannot score: {entry.problem}", err=True)


@models.command()
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--name", required=True, help="Name in the store.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--force", is_flag=True, help="Replace a model of the same name.")
@models_dir_option
def init(preset: str, name: str, seed: int, force: bool, models_dir: Path | None) -> None:
    """Create an UNTRAINED model with seeded random weights.

    For tests, benchmarks and as a starting point for training: its scores
    mean nothing, and scoring with it warns every run.
    """
    card = model_store(models_dir).init(preset, name, seed, overwrite=force)
    click.echo(f"created untrained model {card.model_id} (preset {preset}, seed {seed})")


@models.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--preset", type=click.Choice(sorted(PRESETS)), required=True, help="Architecture of the checkpoint.")
@click.option("--name", required=True, help="Name in the store.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="published-eat: a published EAT AVA/TAD66K state dict; dat-imagenet: DAT ImageNet weights "
    "(a dict with 'model'), an initialisation for training.",
)
@click.option("--force", is_flag=True, help="Replace a model of the same name.")
@models_dir_option
def import_(file: Path, preset: str, name: str, fmt: str, force: bool, models_dir: Path | None) -> None:
    """Import published EAT or DAT ImageNet weights from FILE.

    Only tensors are read (no code in the file can run); every key must fit
    the preset, or nothing is written.
    """
    card, fresh = model_store(models_dir).import_file(file, preset, name, fmt, overwrite=force)
    click.echo(f"imported {file.name} as {card.model_id} ({card.extra['import_format']}, head {card.head_mode})")
    if fresh:
        click.echo(f"initialised fresh (not in the file): {len(fresh)} tensors, e.g. {fresh[0]}")


@models.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@models_dir_option
def remove(name: str, yes: bool, models_dir: Path | None) -> None:
    """Delete model NAME from the store."""
    store = model_store(models_dir)
    folder = store.removable(name)  # refused before asking: a built-in, a name not there, a folder not only a model's
    if not yes:
        click.confirm(f"Delete model {name!r} ({folder})?", abort=True)
    click.echo(f"removed {store.remove(name)}")


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: a card may hold them (a metric that was undefined), and
    JSON has no spelling for them that every reader takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
