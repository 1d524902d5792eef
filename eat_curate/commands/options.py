"""Options that mean the same thing on every command that takes them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from eat_curate.model.model_store import ModelStore


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(function)


def models_dir_option(function):
    return click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Model store folder (default: $EAT_CURATE_HOME/models, else the user data folder).",
    )(function)


def model_store(models_dir: Path | None) -> ModelStore:
    from eat_curate.model.model_store import ModelStore  # torch: only for commands that use models

    return ModelStore(models_dir)
