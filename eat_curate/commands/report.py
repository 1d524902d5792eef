"""`report`: one self-contained HTML page of the chosen images, album by album."""

from __future__ import annotations

from pathlib import Path

import click

from eat_curate import library
from eat_curate.commands.options import Number, bars_wanted, refuse_existing_output
from eat_curate.commands.read_options import (
    choice_from,
    db_option,
    model_option,
    pick_options,
    scores_of,
    selection_options,
)


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
@click.option(
    "--per-group",
    type=click.IntRange(0),
    default=12,
    show_default=True,
    metavar="N",
    help="Thumbnails per duplicate group: its best and the next N-1 by score, then a count of the rest (0: all).",
)
@click.option("--distance", type=click.IntRange(0, 64), default=library.DEFAULT_DISTANCE, show_default=True,
              help="Near-duplicate distance for the duplicates section (see `dupes`).")
@click.option("--window", type=Number(0), default=None, metavar="SECONDS",
              help="Burst window for the duplicates section (see `dupes`).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def report(
    db: str,
    model: str | None,
    out: Path,
    top: int,
    per_album: int,
    per_group: int,
    distance: int,
    window: float | None,
    force: bool,
    **choice,
) -> None:
    """Write an HTML report: per album a grid of thumbnails sorted by score.

    Each thumbnail shows its score, std and a bar chart of its 10-bin
    distribution; each album gets a histogram of its scores. Also: the best
    and worst --top images, groups of near-duplicates (at most --per-group
    thumbnails each, and a count of the rest), and the model and runs the
    scores came from. Reads the image files for the thumbnails;
    files that vanished get a placeholder and are listed.

    Images are chosen as with `filter` (album, score, time, --keep-best,
    --top-percent, ...); album statistics stay those of the whole album.

    \b
    Examples:
      eat-curate report scores.parquet --out report.html --album trips
      eat-curate report photos.db --out picks.html --keep-best --top-percent 10
    """
    from eat_curate.report import build_report, write_report

    chosen, bars = choice_from(choice), bars_wanted(no_progress=False)
    refuse_existing_output(out, force)
    with scores_of(db, model, chosen.hide_missing, chosen.selection.albums) as (connection, model_id):
        images = chosen.images(connection, model_id, progress=bars)
        data = build_report(connection, model_id, top=top, per_album=per_album, distance=distance, window=window,
                            progress=bars, selection=chosen.selection, images=images, per_group=per_group)
    write_report(data, out)
    missing = f"; {len(data.missing)} image files missing (placeholders)" if data.missing else ""
    click.echo(f"wrote {out}: {data.image_count} images in {len(data.albums)} albums, "
               f"{len(data.duplicate_groups)} duplicate groups{missing}")
