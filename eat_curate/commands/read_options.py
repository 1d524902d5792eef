"""What the read commands share: --db, --model, --json, the options that choose images, and the reading.

`albums`, `rank`, `filter` (commands/read.py), `export`, `dupes`, `report`
and `xmp` read the SQL database that `score --db` wrote (SQLite or
PostgreSQL), or the Parquet result of `score --out` (through DuckDB views
named like the SQL tables), with the same results on all three. All take
--db, --model and --json; every command that reads scores takes
--hide-missing. `filter`, `export`, `report` and `xmp` choose images with the
same options (:func:`selection_options`, :func:`pick_options`), turned into
one :class:`Choice` by :func:`choice_from`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import click

from eat_curate import library, sinks
from eat_curate.commands.options import Number

if TYPE_CHECKING:
    import sqlalchemy as sa

_TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


_RESULTS_HELP = (
    "The database `score --db` wrote: an SQLite file path or an SQLAlchemy URL "
    "(sqlite:///x.db, postgresql+psycopg://user@host/db); or the Parquet result of `score --out` "
    "(scores.parquet, or its folder), read in place with DuckDB. May also be given as the first argument."
)


def db_option(required: bool = True):
    """The scores to read, as the first argument or as --db: `rank scores.parquet` is `rank --db scores.parquet`.

    The command receives them as ``db``; giving neither is refused when ``required``.
    """

    def decorate(function):
        @functools.wraps(function)
        def reading_results(*args, results: str | None, db: str | None, **kwargs):
            return function(*args, db=one_results(results, db, required), **kwargs)

        reading_results = click.option("--db", default=None, metavar="URL", help=_RESULTS_HELP)(reading_results)
        # A Path for the shell completion of file names; URLs pass through it unchanged.
        return click.argument("results", required=False, metavar="[RESULTS]", type=click.Path())(reading_results)

    return decorate


def one_results(results: str | None, db: str | None, required: bool = True) -> str | None:
    """The scores named by the argument or by --db; both naming different ones is refused."""
    if results is not None and db is not None and results != db:
        raise click.UsageError(f"two sets of scores to read: {results} (the argument) and --db {db}; give one")
    chosen = results if results is not None else db
    if chosen is None and required:
        raise click.UsageError(
            f"say which scores to read: {_command_path()} scores.parquet (the result of score --out), "
            "or --db photos.db / a database URL (what score --db wrote)"
        )
    return chosen


def _command_path() -> str:
    context = click.get_current_context(silent=True)
    return context.command_path if context is not None else "eat-curate COMMAND"


def model_option(function):
    return click.option(
        "--model",
        "model",
        default=None,
        metavar="NAME|ID",
        help="Whose scores to read: a model name or full id (name@hash). Default: the only model in the database.",
    )(function)


def hide_missing_option(function):
    return click.option(
        "--hide-missing",
        is_flag=True,
        help="Leave out the images whose files no longer exist (checked on disk, as `db prune` does), before "
        "ranking and counting. Only local paths are checked: URLs (s3://, http://, ...) and images embedded "
        "in a manifest are always kept.",
    )(function)


# A mean score lies in 1-10, and the spread of a distribution over 1-10 is at most 4.5.
SCORE = Number(1, 10)
SPREAD = Number(0, 4.5)


def _album_names(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(name or None for name in names)  # --album "" means the images that have no album


def album_option(help_text: str):
    return click.option(
        "--album", "albums", multiple=True, metavar="NAME", callback=_album_names,
        help=help_text + ' --album "" picks the images without an album. A name the database does not hold is '
        "refused (exit 2) with the closest ones.",
    )


def selection_options(function):
    """Options that choose images, shared by `filter`, `export`, `report` and `xmp`."""
    options = [
        hide_missing_option,
        album_option("Only this album (exact name; repeat for several)."),
        click.option("--min-score", type=SCORE, default=None, help="Mean score at least this (1-10)."),
        click.option("--max-score", type=SCORE, default=None, help="Mean score at most this (1-10)."),
        click.option("--max-std", type=SPREAD, default=None, help="Spread at most this (raters agree)."),
        click.option(
            "--since",
            type=click.DateTime(_TIME_FORMATS),
            default=None,
            metavar="TIME",
            help="At or after this time: YYYY-MM-DD[ HH:MM[:SS]]; see --time.",
        ),
        click.option(
            "--until",
            type=click.DateTime(_TIME_FORMATS),
            default=None,
            metavar="TIME",
            help="Before this time (not at it): YYYY-MM-DD[ HH:MM[:SS]]; see --time.",
        ),
        click.option(
            "--time",
            "time_field",
            type=click.Choice(library.TIME_FIELDS),
            default="captured",
            show_default=True,
            help="What --since/--until compare: the capture time (EXIF, camera's local time; images without "
            "one are left out) or the scoring time (UTC).",
        ),
        click.option(
            "--keep-best",
            is_flag=True,
            help="Of each group of near-duplicates (see `dupes`), keep only its best original: among the images "
            "scoring within 0.25 of the group's best, full resolution, then colour, then the larger file. "
            "Applies before --top-percent/--bottom-percent/--per-album, so a burst counts once in a share.",
        ),
        click.option(
            "--dupe-distance",
            type=click.IntRange(0, 64),
            default=library.DEFAULT_DISTANCE,
            show_default=True,
            help="With --keep-best: perceptual-hash bits two near-duplicates may differ in.",
        ),
        click.option(
            "--dupe-window",
            type=Number(0),
            default=None,
            metavar="SECONDS",
            help="With --keep-best: also group shots of one album taken this close together (bursts).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


class Percent(click.ParamType):
    """A percentage above 0 and at most 100, with or without '%', kept as an exact fraction."""

    name = "percent"

    def convert(self, value, param, ctx):
        try:
            return library.parse_percent(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


PERCENT = Percent()

_SHARE_RULE = (
    "Shares count per album, in rank order (score, then image id: ties at the cut are split the same way "
    "every time). A top share of P% of n images is ceil(P/100 x n), at least 1; a bottom share is "
    "floor(P/100 x n), so an album of 7 gives 1 image to --top-percent 10 and none to --bottom-percent 10."
)


def pick_options(per_album: bool = True):
    """--top-percent, --bottom-percent, --overall and (unless the command has its own) --per-album."""

    def decorate(function):
        options = [
            click.option(
                "--top-percent",
                type=PERCENT,
                default=None,
                metavar="P",
                help="Keep the best P% of each album (after the other options). " + _SHARE_RULE,
            ),
            click.option(
                "--bottom-percent",
                type=PERCENT,
                default=None,
                metavar="P",
                help="Keep the lowest P% of each album instead (rounded down; see --top-percent).",
            ),
            click.option(
                "--overall",
                is_flag=True,
                help="Count shares over the whole selection instead of per album.",
            ),
        ]
        if per_album:
            options.append(
                click.option(
                    "--per-album",
                    type=click.IntRange(1),
                    default=None,
                    metavar="N",
                    help="Keep at most the best N of each album (with --bottom-percent: its lowest N).",
                )
            )
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@dataclass(frozen=True)
class Choice:
    """Which images a command works on: what `selection_options` and `pick_options` were given."""

    selection: library.Selection
    picks: library.Picks
    keep: library.KeepBest | None
    hide_missing: bool

    @property
    def narrows(self) -> bool:
        """Whether any option leaves images out."""
        return self.selection != library.Selection() or self.keep is not None or self.picks.active or self.hide_missing

    def images(self, connection: sa.Connection, model_id: str, progress: bool) -> list[library.SelectedImage]:
        """The chosen images (`library.choose_images`)."""
        return library.choose_images(connection, model_id, self.selection, self.picks, self.keep, progress=progress)


def choice_from(kwargs: dict, limit: int | None = None, needs_share_for_overall: bool = True) -> Choice:
    """The ``Choice`` of ``selection_options``' and ``pick_options``' values, popped from ``kwargs``.

    ``needs_share_for_overall=False`` for a command whose own options give --overall a share (`xmp`).
    """
    return Choice(
        selection=_selection_from(kwargs, limit),
        picks=_picks_from(kwargs, needs_share_for_overall),
        keep=_keep_from(kwargs),
        hide_missing=kwargs.pop("hide_missing"),
    )


def _picks_from(kwargs: dict, needs_share_for_overall: bool) -> library.Picks:
    top, bottom = kwargs.pop("top_percent"), kwargs.pop("bottom_percent")
    overall, per_album = kwargs.pop("overall"), kwargs.pop("per_album", None)
    if top is not None and bottom is not None:
        raise click.UsageError("choose --top-percent or --bottom-percent, not both")
    if overall and needs_share_for_overall and top is None and bottom is None:
        raise click.UsageError("--overall counts a share: add --top-percent or --bottom-percent")
    return library.Picks(top_percent=top, bottom_percent=bottom, per_album=per_album, overall=overall)


def _keep_from(kwargs: dict) -> library.KeepBest | None:
    keep, distance, window = kwargs.pop("keep_best"), kwargs.pop("dupe_distance"), kwargs.pop("dupe_window")
    return library.KeepBest(distance, window) if keep else None


def _selection_from(kwargs: dict, limit: int | None) -> library.Selection:
    min_score, max_score = kwargs.pop("min_score"), kwargs.pop("max_score")
    if min_score is not None and max_score is not None and min_score > max_score:
        raise click.UsageError(f"--min-score {min_score:g} is above --max-score {max_score:g}: no score is both")
    since, until = kwargs.pop("since"), kwargs.pop("until")
    _refuse_empty_period(since, until)
    return library.Selection(
        albums=tuple(kwargs.pop("albums")),
        min_score=min_score,
        max_score=max_score,
        max_std=kwargs.pop("max_std"),
        since=since,
        until=until,
        time_field=kwargs.pop("time_field"),
        limit=limit,
    )


def _refuse_empty_period(since: datetime | None, until: datetime | None) -> None:
    """--since (inclusive) at or after --until (exclusive) selects nothing, whatever is stored: a typo, as with
    --min-score above --max-score, not a question with an empty answer (an empty manifest, no export)."""
    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since {since:%Y-%m-%d %H:%M:%S} is not before --until {until:%Y-%m-%d %H:%M:%S}: "
                               "no time is both (--since counts its own time, --until does not)")


@contextmanager
def scores_of(
    db: str, model: str | None, hide_missing: bool = False, albums: tuple[str | None, ...] = ()
) -> Iterator[tuple[sa.Connection, str]]:
    """A connection to ``db`` and the model id to read (``--model``, or the only one scored).

    ``albums`` (``--album``) must name albums the database holds; ``hide_missing``: the rows of
    vanished files (in ``albums``, when given) read as absent on it.
    """
    with library.read_connection(db) as connection:
        model_id = library.resolve_model(connection, model, sinks.describe(sinks.database_url(db)))
        library.check_albums(connection, model_id, albums)
        if hide_missing:
            found = library.hide_missing_files(connection, model_id, albums)
            click.echo(f"hiding {found.missing} of {found.checked} files: no longer on disk", err=True)
        yield connection, model_id


def note_model(model_id: str) -> None:
    """Which model's scores a table shows, on stderr so the table stays clean."""
    click.echo(f"model {model_id}", err=True)


def with_also(rows: list[dict], images: list) -> list[dict]:
    """Table rows with an `also` column (a shot's other files, by name) when any image has one."""
    if not any(image.also for image in images):
        return rows
    return [
        {**row, "also": ", ".join(file.path.rsplit("/", 1)[-1] for file in image.also)}
        for row, image in zip(rows, images)
    ]
