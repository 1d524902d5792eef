"""`eat-curate ratings`: the stars a photographer gave, from XMP, as a label table for `train`."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import click

from eat_curate import exit_codes
from eat_curate.commands.options import (
    bars_wanted,
    exclude_option,
    json_option,
    no_progress_option,
    refuse_existing_output,
)
from eat_curate.commands.output import to_json
from eat_curate.io.exclusions import Exclusions

REJECTS = ("skip", "one-star")
LISTED_PROBLEMS = 10  # unreadable places named on stderr; the count covers them all


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="FILE.csv|FILE.parquet",
              help="The label table to write: path, rating (1-5), source. CSV, or Parquet by its extension.")
@click.option("--rejects", type=click.Choice(REJECTS), default="skip", show_default=True,
              help="Rejected photos (rating -1): leave them out, or keep them as one star.")
@exclude_option("Leave out what matches inside the folders, as `score --exclude` does.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@no_progress_option
@json_option
def ratings(
    sources: tuple[Path, ...],
    out: Path,
    rejects: str,
    exclusions: Exclusions,
    force: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Collect the star ratings of the images in SOURCES into a label table.

    Reads the stars your photo manager wrote: XMP sidecars (IMG_1.CR2.xmp
    from darktable and digiKam, IMG_1.xmp from Lightroom and Bridge) or XMP
    inside JPEG, WebP, PNG and TIFF files. 1-5 stars become a row, one per
    shot (a RAW and its JPEG give one row, the JPEG's); unrated photos are
    left out, and so are ratings written by `eat-curate xmp` that nobody
    changed (training on them would teach the model its own scores). A
    sidecar that cannot be read is listed, never guessed at.

    The table is what `train --data` and `evaluate --data` read as your own
    ratings: see how well a model agrees with you, then fine-tune it on your
    taste.

    \b
    Examples:
      eat-curate ratings ~/Pictures/2024 --out my_picks.csv --exclude @eaDir
      eat-curate evaluate --model culling-nano --data my_picks.csv
      eat-curate train --data my_picks.csv --init eat-ava --lr 1e-6 --epochs 5 --name mine
    """
    from tqdm import tqdm

    from eat_curate import library
    from eat_curate.io.manifests import is_manifest_name
    from eat_curate.io.sources import iter_items

    refuse_existing_output(out, force)
    for source in sources:
        if source.is_file() and is_manifest_name(str(source)):
            raise click.UsageError(f"{source} is a manifest; ratings reads the sidecars beside image files: "
                                   "give their folders")
    items = iter_items([str(source.absolute()) for source in sources], exclusions=exclusions)
    found = list(tqdm(library.read_ratings(items), desc="reading ratings", unit="image",
                      disable=not bars_wanted(no_progress)))

    keep = {"rated", "reject"} if rejects == "one-star" else {"rated"}
    kept, same_shot = library.one_per_shot(rating for rating in found if rating.status in keep)
    rows = [{"path": rating.path, "rating": max(rating.stars, 1), "source": rating.source} for rating in kept]
    counts = Counter(rating.status for rating in found)
    counts["same_shot"] = same_shot
    stars = Counter(row["rating"] for row in rows)
    problems = [rating for rating in found if rating.status == "unreadable"]
    if rows:
        _write_table(rows, out)
    outcome = exit_codes.DONE if rows else exit_codes.NOTHING_EXPORTED
    if as_json:
        click.echo(to_json({"outcome": outcome.name, "out": str(out) if rows else None, "images": len(found),
                            "ratings": len(rows), "stars": {str(k): stars[k] for k in sorted(stars)},
                            "counts": {status: counts[status] for status in (*library.RATING_STATUSES, "same_shot")},
                            "unreadable": [{"path": p.path, "source": p.source, "reason": p.reason}
                                           for p in problems]}))
    else:
        _print_summary(out, rows, found, counts, stars, rejects)
        for line in exclusions.report(walks_finished=True):
            click.echo(line, err=True)
    for problem in problems[:LISTED_PROBLEMS]:
        click.echo(f"unreadable: {problem.source}: {problem.reason}", err=True)
    if len(problems) > LISTED_PROBLEMS:
        click.echo(f"... and {len(problems) - LISTED_PROBLEMS} more unreadable (--json lists them all)", err=True)
    if outcome is not exit_codes.DONE:
        raise click.exceptions.Exit(outcome.code)


def _write_table(rows: list[dict], out: Path) -> None:
    """Write the table whole or not at all; one that cannot be written (a full or read-only disk, no
    permission) is one line, not a traceback."""
    from eat_curate.io.whole_files import written_whole
    from eat_curate.sinks import cannot_write

    try:
        with written_whole(out) as partial:
            if out.suffix.lower() in (".parquet", ".pq"):
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.Table.from_pylist(rows), partial)
            else:
                with open(partial, "w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=["path", "rating", "source"])
                    writer.writeheader()
                    writer.writerows(rows)
    except OSError as error:
        raise cannot_write(error, f"--out {out}: cannot write the table") from None


def _print_summary(out: Path, rows: list[dict], found: list, counts: Counter, stars: Counter, rejects: str) -> None:
    by_stars = ", ".join(f"{n} {'star' if n == 1 else 'stars'} {stars[n]}" for n in sorted(stars, reverse=True))
    if rows:
        click.echo(f"wrote {len(rows)} {'rating' if len(rows) == 1 else 'ratings'} of {len(found)} images "
                   f"to {out}: {by_stars}")
    else:
        click.echo(f"no rated images among {len(found)}: nothing written", err=True)
    left_out = [f"{counts['unrated']} unrated"]
    if counts["reject"] and rejects == "skip":
        left_out.append(f"{counts['reject']} rejects (--rejects one-star keeps them)")
    if counts["same_shot"]:
        left_out.append(f"{counts['same_shot']} more files of a shot already listed (a RAW beside its JPEG)")
    if counts["ours"]:
        left_out.append(f"{counts['ours']} rated by eat-curate xmp")
    if counts["unreadable"]:
        left_out.append(f"{counts['unreadable']} unreadable")
    click.echo(f"left out: {', '.join(left_out)}", err=True)
    if len(stars) == 1 and rows:
        click.echo("every rating is the same: a model trained on them learns nothing that tells photos apart",
                   err=True)
