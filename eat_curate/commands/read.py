"""The read side: `albums`, `rank`, `filter`, `export`, `dupes`, `report`.

Each reads the SQL database that `score --db` wrote (SQLite or PostgreSQL),
or the Parquet result of `score --out` (through DuckDB views named like the
SQL tables), with the same results on all three, and never rescans images, except `report`, which reads
the image files for thumbnails. All take --db, --model and --json.
`filter`, `export`, `report` and `xmp` (commands/xmp.py) choose images with
the same options (``selection_options``, ``pick_options``).

The files of one shot (RAW + JPEG, see eat_curate/library/shots.py) are one
row everywhere, by their best-scored file; the others show in an `also`
column and travel with it (export, xmp, manifests). Every command that reads
scores takes --hide-missing.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from eat_curate.commands.output import emit, format_table, to_json
from eat_curate import library, sinks

if TYPE_CHECKING:
    import sqlalchemy as sa

_TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


# --- shared options ---------------------------------------------------------------------------


def db_option(required: bool = True):
    return click.option(
        "--db",
        required=required,
        metavar="URL",
        help="The database `score --db` wrote: an SQLite file path or an SQLAlchemy URL "
        "(sqlite:///x.db, postgresql+psycopg://user@host/db); or the Parquet result of `score --out` "
        "(scores.parquet, or its folder), read in place with DuckDB.",
    )


def model_option(function):
    return click.option(
        "--model",
        "model",
        default=None,
        metavar="NAME|ID",
        help="Whose scores to read: a model name or full id (name@hash). Default: the only model in the database.",
    )(function)


def _json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(function)


def _hide_missing_option(function):
    return click.option(
        "--hide-missing",
        is_flag=True,
        help="Leave out the images whose files no longer exist (checked on disk, as `db prune` does), before "
        "ranking and counting. Only local paths are checked: URLs (s3://, http://, ...) and images embedded "
        "in a manifest are always kept.",
    )(function)


def _album_names(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(name or None for name in names)  # --album "" means the images that have no album


def _album_option(help_text: str):
    return click.option(
        "--album", "albums", multiple=True, metavar="NAME", callback=_album_names,
        help=help_text + ' --album "" picks the images without an album.',
    )


def selection_options(function):
    """Options that choose images, shared by `filter`, `export`, `report` and `xmp`."""
    options = [
        _hide_missing_option,
        _album_option("Only this album (exact name; repeat for several)."),
        click.option("--min-score", type=float, default=None, help="Mean score at least this (1-10)."),
        click.option("--max-score", type=float, default=None, help="Mean score at most this."),
        click.option("--max-std", type=float, default=None, help="Spread at most this (raters agree)."),
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
            type=click.FloatRange(0),
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


def picks_from(kwargs: dict, needs_share_for_overall: bool = True) -> library.Picks:
    """The ``Picks`` of ``pick_options``' values, popped from ``kwargs``."""
    top, bottom = kwargs.pop("top_percent"), kwargs.pop("bottom_percent")
    overall, per_album = kwargs.pop("overall"), kwargs.pop("per_album", None)
    if top is not None and bottom is not None:
        raise click.UsageError("choose --top-percent or --bottom-percent, not both")
    if overall and needs_share_for_overall and top is None and bottom is None:
        raise click.UsageError("--overall counts a share: add --top-percent or --bottom-percent")
    return library.Picks(top_percent=top, bottom_percent=bottom, per_album=per_album, overall=overall)


def keep_from(kwargs: dict) -> library.KeepBest | None:
    """The ``KeepBest`` of --keep-best/--dupe-distance/--dupe-window, popped from ``kwargs``; None without it."""
    keep, distance, window = kwargs.pop("keep_best"), kwargs.pop("dupe_distance"), kwargs.pop("dupe_window")
    return library.KeepBest(distance, window) if keep else None


def selection_from(kwargs: dict, limit: int | None = None) -> library.Selection:
    albums = kwargs.pop("albums")
    return library.Selection(
        albums=tuple(albums),
        min_score=kwargs.pop("min_score"),
        max_score=kwargs.pop("max_score"),
        max_std=kwargs.pop("max_std"),
        since=kwargs.pop("since"),
        until=kwargs.pop("until"),
        time_field=kwargs.pop("time_field"),
        limit=limit,
    )


@contextmanager
def scores_of(
    db: str, model: str | None, hide_missing: bool = False, albums: tuple[str | None, ...] = ()
) -> Iterator[tuple[sa.Connection, str]]:
    """A connection to ``db`` and the model id to read (``--model``, or the only one scored).

    ``hide_missing``: the rows of vanished files (in ``albums``, when given) read as absent on it.
    """
    with library.read_connection(db) as connection:
        model_id = library.resolve_model(connection, model, sinks.describe(sinks.database_url(db)))
        if hide_missing:
            found = library.hide_missing_files(connection, model_id, albums)
            click.echo(f"hiding {found.missing} of {found.checked} files: no longer on disk", err=True)
        yield connection, model_id


def _note_model(model_id: str) -> None:
    """Which model's scores a table shows, on stderr so the table stays clean."""
    click.echo(f"model {model_id}", err=True)


def _with_also(rows: list[dict], images: list) -> list[dict]:
    """Table rows with an `also` column (a shot's other files, by name) when any image has one."""
    if not any(image.also for image in images):
        return rows
    return [
        {**row, "also": ", ".join(file.path.rsplit("/", 1)[-1] for file in image.also)}
        for row, image in zip(rows, images)
    ]


# --- albums ------------------------------------------------------------------------------------


@click.command()
@db_option()
@model_option
@click.option(
    "--sort",
    type=click.Choice(library.ALBUM_SORTS),
    default="mean",
    show_default=True,
    help="Statistic to sort by, highest first (album: A to Z).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(1, 10),
    default=library.DEFAULT_THRESHOLD,
    show_default=True,
    help="Score that counts as good, for the share_above column.",
)
@_hide_missing_option
@_json_option
def albums(db: str, model: str | None, sort: str, threshold: float, hide_missing: bool, as_json: bool) -> None:
    """Statistics per album: images, mean, median, top-10 mean, share of good images, best image.

    A RAW and its JPEG (one shot) count as one image, scored by the better of the two.

    \b
    Example:
      eat-curate albums --db photos.db --sort top10_mean
    """
    with scores_of(db, model, hide_missing) as (connection, model_id):
        stats = library.album_stats(connection, model_id, threshold, sort)
    if as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in stats]))
        return
    _note_model(model_id)
    share = f"share>={threshold:g}"
    rows = [
        {
            "album": row.album,
            "images": row.images,
            "mean": row.mean,
            "median": row.median,
            "top10_mean": row.top10_mean,
            share: row.share_above,
            "best_score": row.best_score,
            "best_image": row.best_path,
        }
        for row in stats
    ]
    emit(rows, as_json=False)


# --- rank --------------------------------------------------------------------------------------


@click.command()
@db_option()
@model_option
@_album_option("Only this album (exact name; repeat for several). Default: every album.")
@click.option("--top", type=click.IntRange(1), default=None, help="Keep the first N of each album.")
@click.option(
    "--by",
    type=click.Choice(list(library.RANK_KEYS)),
    default="mean",
    show_default=True,
    help="Ranking key: " + "; ".join(f"{name}: {key.meaning}" for name, key in list(library.RANK_KEYS.items())[:3]) + "; ...",
)
@click.option("--reverse", is_flag=True, help="Rank from the other end (with --by mean: worst first).")
@_hide_missing_option
@_json_option
def rank(
    db: str,
    model: str | None,
    albums: tuple[str | None, ...],
    top: int | None,
    by: str,
    reverse: bool,
    hide_missing: bool,
    as_json: bool,
) -> None:
    """Images ranked inside each album: rank, score, std and path.

    Ranks are per album (1 = best); ties are broken by image id, the same
    way on SQLite and PostgreSQL. The files of one shot (IMG_1.CR2 and
    IMG_1.JPG: same folder, same name but for the extension and the case of
    letters) rank once, as their best-scored file; the others are listed in
    the `also` column.

    \b
    Example:
      eat-curate rank --db photos.db --album trips --top 10
    """
    with scores_of(db, model, hide_missing, albums) as (connection, model_id):
        ranked = library.rank_images(connection, model_id, albums, top, by, reverse)
    if as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in ranked]))
        return
    _note_model(model_id)
    rows = [
        {"album": row.album, "rank": row.rank, "score": row.mean, "std": row.std, "path": row.path} for row in ranked
    ]
    emit(_with_also(rows, ranked), as_json=False)


# --- filter ------------------------------------------------------------------------------------


def _image_row(image: library.SelectedImage) -> dict:
    """What a person reads in the table."""
    return {
        "album": image.album,
        "rank": image.rank,
        "score": image.mean,
        "std": image.std,
        "captured_at": image.captured_at,
        "path": image.path,
    }


def _csv_row(row: library.SelectedImage | library.ErrorRow, model_id: str) -> dict:
    data = {"model_id": model_id, **row.to_dict()}
    probabilities = data.pop("probabilities", None)
    if probabilities is not None:
        data.update({f"p{i}": value for i, value in enumerate(probabilities, start=1)})
    if "also" in data:  # a cell of its own: the other files' paths as a JSON list
        data["also"] = json.dumps([file["path"] for file in data["also"]], ensure_ascii=False)
    return data


def _write_csv(rows: list[dict]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@click.command(name="filter")
@db_option()
@model_option
@selection_options
@pick_options()
@click.option(
    "--errors",
    "show_errors",
    is_flag=True,
    help="List the images that could not be scored, and why, instead (score and std bounds do not apply).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N rows.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with the 10 probabilities p1..p10).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="OUT.parquet",
    help="Write the selection as a Parquet manifest (path, album, id, rank, mean, std, ...) that "
    "`score` and `export --from-manifest` accept.",
)
@_json_option
def filter_(
    db: str,
    model: str | None,
    show_errors: bool,
    limit: int | None,
    as_csv: bool,
    manifest: Path | None,
    as_json: bool,
    **choice,
) -> None:
    """Select scored images by score, spread, album and time, or by share of each album.

    Prints a table (album, rank, score, std, capture time, path), or --json,
    --csv, or writes --manifest OUT.parquet. Ranks are album ranks among all
    the album's images.

    The options apply in this order: album, score, spread and time bounds;
    then --keep-best (one image per near-duplicate group); then
    --top-percent/--bottom-percent (per album, or --overall) and --per-album;
    then --limit.

    \b
    Examples:
      eat-curate filter --db photos.db --min-score 6.5 --max-std 1.6
      eat-curate filter --db photos.db --top-percent 15            the best 15% of every album
      eat-curate filter --db photos.db --keep-best --per-album 3    each album's best 3, one per burst
      eat-curate filter --db photos.db --album trips --since 2024-06-01 --keep-best --manifest best.parquet
      eat-curate filter --db photos.db --errors --manifest retry.parquet    (then: eat-curate score retry.parquet)
    """
    if sum(map(bool, (as_json, as_csv, manifest))) > 1:
        raise click.UsageError("choose one of --json, --csv and --manifest")
    keep, picks = keep_from(choice), picks_from(choice)
    if show_errors and (keep is not None or picks.active):
        raise click.UsageError("--keep-best and shares apply to scored images, not to --errors")
    hide_missing = choice.pop("hide_missing")
    selection = selection_from(choice, limit)
    with scores_of(db, model, hide_missing, selection.albums) as (connection, model_id):
        if show_errors:
            found = library.select_errors(connection, model_id, selection)
        else:
            found = library.choose_images(connection, model_id, selection, picks, keep, progress=not as_json)
    if manifest is not None:
        count = library.write_manifest(found, manifest, model_id, errors=show_errors)
        click.echo(f"wrote {count} {'errors' if show_errors else 'images'} to {manifest} (model {model_id})")
    elif as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in found]))
    elif as_csv:
        _write_csv([_csv_row(row, model_id) for row in found])
    elif show_errors:
        _note_model(model_id)
        emit([{"album": e.album, "kind": e.kind, "message": e.message, "path": e.path} for e in found], as_json=False)
    else:
        _note_model(model_id)
        emit(_with_also([_image_row(image) for image in found], found), as_json=False)


# --- export ------------------------------------------------------------------------------------


def _manifest_items(manifest: Path, layout: str) -> list[library.ExportItem]:
    from eat_curate.io.manifests import manifest_items, open_manifest

    opened = open_manifest(str(manifest))
    if opened.embedded:
        raise click.UsageError(f"{manifest} holds image bytes, not paths: there are no files to export")
    items = []
    for item in manifest_items(opened):
        rank_value = (item.extra or {}).get("rank")
        rank = int(rank_value) if rank_value is not None else None
        items.append(library.ExportItem(source=item.key, album=item.album, rank=rank))
    if layout == "album/rank" and any(item.rank is None for item in items):
        raise click.UsageError(f"--layout album/rank needs a rank column in {manifest}; use --layout album")
    return items


@click.command()
@db_option(required=False)
@model_option
@selection_options
@pick_options()
@click.option(
    "--from-manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.parquet",
    help="Export the images of a manifest (e.g. from `filter --manifest`) instead of a selection from --db.",
)
@click.option(
    "--to",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to export into (created); nothing in it is ever overwritten.",
)
@click.option(
    "--mode",
    type=click.Choice(library.MODES),
    default="copy",
    show_default=True,
    help="copy the files, hard-link them (same file system only) or symlink them.",
)
@click.option(
    "--layout",
    type=click.Choice(library.LAYOUTS),
    default="album",
    show_default=True,
    help="flat: DIR/name; album: DIR/album/name; album/rank: DIR/album/0001_name.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be done; write nothing.")
@_json_option
def export(
    db: str | None,
    model: str | None,
    from_manifest: Path | None,
    target: Path,
    mode: str,
    layout: str,
    dry_run: bool,
    as_json: bool,
    **choice,
) -> None:
    """Export selected images into a folder: copies, hard links or symlinks.

    Choose images as with `filter` (--db and its options, shares included)
    or with --from-manifest. Album and file names are made safe, every
    destination must lie inside --to whatever the stored paths and album
    names contain, and nothing is overwritten: each image is reported as done
    or skipped, with the reason (exists, missing, cross-device, ...).
    Re-running the same export skips what is already there. A failed image
    leaves no empty album folder behind, and when not one chosen image could
    be exported the command exits with code 5 (a scheduler's "nothing done").
    A RAW and its JPEG (one shot) are chosen once and exported together.

    \b
    Examples:
      eat-curate export --db photos.db --min-score 6 --keep-best --to ~/best --layout album/rank
      eat-curate export --db photos.db --keep-best --top-percent 15 --to ~/best    best 15% of each album
    """
    hide_missing = choice.pop("hide_missing")
    keep, picks, selection = keep_from(choice), picks_from(choice), selection_from(choice)
    if from_manifest is not None:
        if db is not None or selection != library.Selection() or keep is not None or picks.active or hide_missing:
            raise click.UsageError("--from-manifest exports the manifest as it is: drop --db and the filter options")
        items = _manifest_items(from_manifest, layout)
    else:
        if db is None:
            raise click.UsageError("say what to export: --db URL (with filter options) or --from-manifest FILE")
        with scores_of(db, model, hide_missing, selection.albums) as (connection, model_id):
            images = library.choose_images(connection, model_id, selection, picks, keep, progress=not as_json)
        items = library.items_from_images(images)
    report = library.export_images(items, target, mode, layout, dry_run, progress=not as_json)
    if as_json:
        click.echo(to_json(report.to_dict()))
    else:
        _print_export_report(report)
    if report.nothing_exported:
        from eat_curate.exit_codes import NOTHING_EXPORTED

        raise SystemExit(NOTHING_EXPORTED.code)  # a scheduler can tell "nothing done" from success


def _print_export_report(report: library.ExportReport) -> None:
    counts = report.counts
    skipped = [outcome for outcome in report.outcomes if outcome.skipped]
    done = ", ".join(f"{action} {count}" for action, count in sorted(counts.items()) if action != "skipped")
    prefix = "dry run, nothing written: " if report.dry_run else ""
    click.echo(f"{prefix}{done or 'nothing exported'} -> {report.target} ({report.mode}, layout {report.layout})")
    if skipped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(report.skipped_by_reason.items()))
        click.echo(f"skipped {len(skipped)} ({reasons}):")
        click.echo(format_table([{"source": o.source, "reason": o.reason} for o in skipped]))


# --- dupes -------------------------------------------------------------------------------------


@click.command()
@db_option()
@model_option
@_album_option("Only this album (exact name; repeat for several). Default: every album, and across albums.")
@click.option(
    "--distance",
    type=click.IntRange(0, 64),
    default=library.DEFAULT_DISTANCE,
    show_default=True,
    help="Perceptual-hash bits (of 64) two near-duplicates may differ in; unrelated photos differ in ~32.",
)
@click.option(
    "--window",
    type=click.FloatRange(0),
    default=None,
    metavar="SECONDS",
    help="Also group shots of one album captured at most this many seconds apart (bursts).",
)
@_hide_missing_option
@_json_option
def dupes(
    db: str,
    model: str | None,
    albums: tuple[str | None, ...],
    distance: int,
    window: float | None,
    hide_missing: bool,
    as_json: bool,
) -> None:
    """Groups of near-duplicates and bursts, each with its best original first.

    Near-duplicates: perceptual hashes within --distance bits (copies,
    re-encodes, resizes, near-identical shots). With --window, shots of the
    same album taken within that many seconds also group (bursts).

    In each group the best image comes first and is marked '*'; `filter`,
    `export`, `report` and `xmp` with --keep-best keep only those. The best
    is the best original, not merely the top score, since a thumbnail or a
    greyscale copy can score a little above its original. Scores within
    0.25 of the group's highest count as equal, and among those the best is
    the image with the most pixels, then colour over greyscale (read from
    the files, only where it decides: even a grey copy stored larger loses),
    then the larger file, then the higher score, then the older file (of
    exact copies, the first made). An image scoring more than 0.25 below
    the highest is never the best: between different shots, the score
    decides. A RAW and its JPEG are one shot, never duplicates of each other.

    \b
    Example:
      eat-curate dupes --db photos.db --distance 6 --window 2
    """
    with scores_of(db, model, hide_missing, albums) as (connection, model_id):
        images = library.select_images(connection, model_id, library.Selection(albums=tuple(albums)))
    groups = library.find_duplicate_groups(images, distance, window, progress=not as_json)
    if as_json:
        click.echo(to_json([{"model_id": model_id, **group.to_dict()} for group in groups]))
        return
    _note_model(model_id)
    grouped = sum(len(group.members) for group in groups)
    click.echo(f"{len(groups)} groups, {grouped} of {len(images)} images (distance <= {distance}"
               + (f", bursts within {window:g} s)" if window is not None else ")"))
    if groups:
        rows = [
            {
                "group": group.number,
                "kind": group.kind,
                "best": "*" if index == 0 else "",
                "score": member.image.mean,
                "std": member.image.std,
                "size": f"{member.image.width}x{member.image.height}" if member.image.pixels else None,
                "bytes": member.image.bytes,
                "distance": member.distance,
                "seconds": member.seconds_from_best,
                "album": member.image.album,
                "path": member.image.path,
            }
            for group in groups
            for index, member in enumerate(group.members)
        ]
        click.echo(format_table(rows))


# --- report ------------------------------------------------------------------------------------


@click.command()
@db_option()
@model_option
@selection_options
@pick_options(per_album=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="REPORT.html",
    help="The HTML file to write (one self-contained file: thumbnails embedded, no network).",
)
@click.option(
    "--top", type=click.IntRange(1), default=10, show_default=True, help="How many best and worst images to show."
)
@click.option(
    "--per-album",
    type=click.IntRange(0),
    default=300,
    show_default=True,
    metavar="N",
    help="Thumbnails per album: the best N of the images chosen (0: all). Keeps the file small for big albums.",
)
@click.option("--distance", type=click.IntRange(0, 64), default=library.DEFAULT_DISTANCE, show_default=True,
              help="Near-duplicate distance for the duplicates section (see `dupes`).")
@click.option("--window", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Burst window for the duplicates section (see `dupes`).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def report(
    db: str,
    model: str | None,
    out: Path,
    top: int,
    per_album: int,
    distance: int,
    window: float | None,
    force: bool,
    **choice,
) -> None:
    """Write an HTML report: per album a grid of thumbnails sorted by score.

    Each thumbnail shows its score, std and a bar chart of its 10-bin
    distribution; each album gets a histogram of its scores. Also: the best
    and worst --top images, groups of near-duplicates, and the model and
    runs the scores came from. Reads the image files for the thumbnails;
    files that vanished get a placeholder and are listed.

    Images are chosen as with `filter` (album, score, time, --keep-best,
    --top-percent, ...); album statistics stay those of the whole album.

    \b
    Examples:
      eat-curate report --db photos.db --out report.html --album trips
      eat-curate report --db photos.db --out picks.html --keep-best --top-percent 10
    """
    from eat_curate.report import build_report, write_report

    hide_missing = choice.pop("hide_missing")
    keep, picks, selection = keep_from(choice), picks_from(choice), selection_from(choice)
    if out.exists() and not force:
        raise click.UsageError(f"--out {out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise click.UsageError(f"--out {out}: the folder {out.parent} does not exist")
    with scores_of(db, model, hide_missing, selection.albums) as (connection, model_id):
        chosen = library.choose_images(connection, model_id, selection, picks, keep, progress=True)
        data = build_report(connection, model_id, top=top, per_album=per_album, distance=distance, window=window,
                            progress=True, selection=selection, images=chosen)
    write_report(data, out)
    missing = f"; {len(data.missing)} image files missing (placeholders)" if data.missing else ""
    click.echo(f"wrote {out}: {data.image_count} images in {len(data.albums)} albums, "
               f"{len(data.duplicate_groups)} duplicate groups{missing}")
