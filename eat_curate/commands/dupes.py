"""`dupes`: groups of near-duplicates and bursts, each with its best original first."""

from __future__ import annotations

import click

from eat_curate import library
from eat_curate.commands.options import Number, bars_wanted, json_option
from eat_curate.commands.output import format_table, to_json
from eat_curate.commands.read_options import (
    album_option,
    db_option,
    hide_missing_option,
    model_option,
    note_model,
    scores_of,
)

DEFAULT_SHOWN = 20  # table rows per group


@click.command()
@db_option()
@model_option
@album_option("Only this album (exact name; repeat for several). Default: every album, and across albums.")
@click.option(
    "--distance",
    type=click.IntRange(0, 64),
    default=library.DEFAULT_DISTANCE,
    show_default=True,
    help="Perceptual-hash bits (of 64) two near-duplicates may differ in; unrelated photos differ in ~32.",
)
@click.option(
    "--window",
    type=Number(0),
    default=None,
    metavar="SECONDS",
    help="Also group shots of one album captured at most this many seconds apart (bursts).",
)
@click.option(
    "--show",
    type=click.IntRange(0),
    default=DEFAULT_SHOWN,
    show_default=True,
    metavar="N",
    help="Table rows per group: its best and the next N-1 by score, then a line counting the rest "
    "(0: every member). --json always lists every member.",
)
@hide_missing_option
@json_option
def dupes(
    db: str,
    model: str | None,
    albums: tuple[str | None, ...],
    distance: int,
    window: float | None,
    show: int,
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

    The table lists at most --show members of each group, then a line
    counting the others: a burst of 5,000 identical frames is one group of
    21 lines, not 5,000 (--show 0 and --json list every member).

    \b
    Examples:
      eat-curate dupes scores.parquet
      eat-curate dupes photos.db --distance 6 --window 2
    """
    with scores_of(db, model, hide_missing, albums) as (connection, model_id):
        images = library.select_images(connection, model_id, library.Selection(albums=tuple(albums)))
    groups = library.find_duplicate_groups(images, distance, window, progress=bars_wanted(no_progress=as_json))
    if as_json:
        click.echo(to_json([{"model_id": model_id, **group.to_dict()} for group in groups]))
        return
    note_model(model_id)
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
            for index, member in enumerate(group.members[: show or None])
        ]
        click.echo(format_table(_with_rest_counted(rows, groups, show)))


def _with_rest_counted(rows: list[dict], groups: list[library.DuplicateGroup], show: int) -> list[dict]:
    """``rows`` with, after each group's shown members, a line saying how many more it holds."""
    if not show or all(len(group.members) <= show for group in groups):
        return rows
    counted: list[dict] = []
    at = 0
    for group in groups:
        shown = min(show, len(group.members))
        counted += rows[at : at + shown]
        at += shown
        if len(group.members) > shown:
            rest = len(group.members) - shown
            counted.append({"group": group.number, "kind": group.kind,
                            "path": f"... {rest} more of {len(group.members)} (--show 0 or --json lists them)"})
    return counted
