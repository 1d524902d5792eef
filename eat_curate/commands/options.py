"""Options that mean the same thing on every command that takes them."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from eat_curate.model.model_store import ModelStore


class Number(click.FloatRange):
    """A float option, in a range if bounds are given, that refuses NaN: "nan" parses as a float and, since
    it compares false with everything, passes any range check, then selects nothing or breaks what uses it."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


# The most rows a database takes as a LIMIT or a rank bound: a signed 64-bit integer on SQLite, PostgreSQL and
# DuckDB, which refuse anything larger (Python's ints have no limit).
MAX_COUNT = 2**63 - 1


class Count(click.IntRange):
    """A number of rows, at least ``minimum``. A count beyond any database's (``MAX_COUNT``) means "all of
    them" just as well, so it is read as ``MAX_COUNT`` rather than handed to SQL, which would fail on it."""

    def __init__(self, minimum: int = 1) -> None:
        super().__init__(min=minimum)

    def convert(self, value, param, ctx) -> int:
        return min(super().convert(value, param, ctx), MAX_COUNT)


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(function)


def no_progress_option(function):
    return click.option(
        "--no-progress",
        is_flag=True,
        help="No progress bars. There are none where stderr is not a terminal (a log): what is printed "
        "line by line stays.",
    )(function)


def bars_wanted(no_progress: bool) -> bool:
    """Progress bars only on a terminal: in a log their redraws pile up into one endless line."""
    return not no_progress and sys.stderr.isatty()


def refuse_existing_output(out: Path, force: bool) -> None:
    """An ``--out`` file is replaced only with ``--force``, and its folder must exist."""
    try:
        out.lstat()
    except FileNotFoundError:
        pass
    except OSError as error:  # a name longer than the file system allows, a file where a folder should be, ...
        raise click.UsageError(f"--out {out}: {error.strerror or error}") from None
    if out.exists() and not force:
        raise click.UsageError(f"--out {out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise click.UsageError(f"--out {out}: the folder {out.parent} does not exist")


def exclude_option(help_text: str):
    """``--exclude PATTERN`` (repeatable) for commands that walk folders; the value is an ``Exclusions``."""
    from eat_curate.io.exclusions import ExclusionError, Exclusions

    def parse(ctx: click.Context, param: click.Parameter, patterns: tuple[str, ...]) -> Exclusions:
        try:
            return Exclusions.parse(patterns)
        except ExclusionError as error:
            raise click.BadParameter(str(error), ctx, param) from None

    return click.option("--exclude", "exclusions", multiple=True, metavar="PATTERN", callback=parse, help=help_text)


def models_dir_option(function):
    return click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Model store folder (default: $EAT_CURATE_HOME/models, else the user data folder).",
    )(function)


def model_store(models_dir: Path | None) -> ModelStore:
    from eat_curate.model.model_store import ModelStore  # reads cards; torch only where weights load

    return ModelStore(models_dir)
