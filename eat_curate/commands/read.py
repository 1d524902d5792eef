"""The read side's tables: `albums`, `rank`, `filter`.

They read scores, never images (see commands/read_options.py for what all
the read commands share). The files of one shot (RAW + JPEG, see
eat_curate/library/shots.py) are one row everywhere, by their best-scored
file; the others show in an `also` column and travel with it (export, xmp,
manifests).
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from eat_curate import library
from eat_curate.commands.options import Count, Number, bars_wanted, json_option
from eat_curate.commands.output import emit, to_json
from eat_curate.commands.read_options import (
    album_option,
    choice_from,
    db_option,
    hide_missing_option,
    model_option,
    note_model,
    pick_options,
    scores_of,
    selection_options,
    with_also,
)


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
    type=Number(1, 10),
    default=library.DEFAULT_THRESHOLD,
    show_default=True,
    help="Score that counts as good, for the share_above column.",
)
@hide_missing_option
@json_option
def albums(db: str, model: str | None, sort: str, threshold: float, hide_missing: bool, as_json: bool) -> None:
    """Statistics per album: images, mean, median, top-10 mean, share of good images, best image.

    A RAW and its JPEG (one shot) count as one image, scored by the better of the two.

    \b
    Examples:
      eat-curate albums scores.parquet             what score --out wrote
      eat-curate albums photos.db --sort top10_mean    what score --db wrote
    """
    with scores_of(db, model, hide_missing) as (connection, model_id):
        stats = library.album_stats(connection, model_id, threshold, sort)
    if as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in stats]))
        return
    note_model(model_id)
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
@album_option("Only this album (exact name; repeat for several). Default: every album.")
@click.option("--top", type=Count(), default=None, help="Keep the first N of each album.")
@click.option(
    "--by",
    type=click.Choice(list(library.RANK_KEYS)),
    default="mean",
    show_default=True,
    help="Ranking key: " + "; ".join(f"{name}: {key.meaning}" for name, key in list(library.RANK_KEYS.items())[:3]) + "; ...",
)
@click.option("--reverse", is_flag=True, help="Rank from the other end (with --by mean: worst first).")
@hide_missing_option
@json_option
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
    Examples:
      eat-curate rank scores.parquet --top 3
      eat-curate rank photos.db --album trips --top 10
    """
    with scores_of(db, model, hide_missing, albums) as (connection, model_id):
        ranked = library.rank_images(connection, model_id, albums, top, by, reverse)
    if as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in ranked]))
        return
    note_model(model_id)
    rows = [
        {"album": row.album, "rank": row.rank, "score": row.mean, "std": row.std, "path": row.path} for row in ranked
    ]
    emit(with_also(rows, ranked), as_json=False)


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
@click.option("--limit", type=Count(), default=None, help="At most N rows.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with the 10 probabilities p1..p10).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="OUT.parquet",
    help="Write the selection as a Parquet manifest (path, album, id, rank, mean, std, ...) that "
    "`score` and `export --from-manifest` accept.",
)
@json_option
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
      eat-curate filter scores.parquet --min-score 6.5 --max-std 1.6
      eat-curate filter photos.db --top-percent 15            the best 15% of every album
      eat-curate filter photos.db --keep-best --per-album 3    each album's best 3, one per burst
      eat-curate filter photos.db --album trips --since 2024-06-01 --keep-best --manifest best.parquet
      eat-curate filter photos.db --errors --manifest retry.parquet    (then: eat-curate score retry.parquet)
    """
    if sum(map(bool, (as_json, as_csv, manifest))) > 1:
        raise click.UsageError("choose one of --json, --csv and --manifest")
    chosen = choice_from(choice, limit)
    if show_errors and (chosen.keep is not None or chosen.picks.active):
        raise click.UsageError("--keep-best and shares apply to scored images, not to --errors")
    with scores_of(db, model, chosen.hide_missing, chosen.selection.albums) as (connection, model_id):
        if show_errors:
            found = library.select_errors(connection, model_id, chosen.selection)
        else:
            found = chosen.images(connection, model_id, progress=bars_wanted(no_progress=as_json))
    if manifest is not None:
        count = library.write_manifest(found, manifest, model_id, errors=show_errors)
        click.echo(f"wrote {count} {'errors' if show_errors else 'images'} to {manifest} (model {model_id})")
    elif as_json:
        click.echo(to_json([{"model_id": model_id, **row.to_dict()} for row in found]))
    elif as_csv:
        _write_csv([_csv_row(row, model_id) for row in found])
    elif show_errors:
        note_model(model_id)
        emit([{"album": e.album, "kind": e.kind, "message": e.message, "path": e.path} for e in found], as_json=False)
    else:
        note_model(model_id)
        emit(with_also([_image_row(image) for image in found], found), as_json=False)
