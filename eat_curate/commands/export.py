"""`export`: the chosen images into a folder, as copies, hard links or symlinks."""

from __future__ import annotations

from pathlib import Path

import click

from eat_curate import library
from eat_curate.commands.options import bars_wanted, json_option
from eat_curate.commands.output import format_table, to_json
from eat_curate.commands.read_options import (
    choice_from,
    db_option,
    model_option,
    pick_options,
    scores_of,
    selection_options,
)


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
    help="Export the images of a manifest (e.g. from `filter --manifest`) instead of a selection of scores.",
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
@json_option
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

    Choose images from the scores as with `filter` (its options, shares
    included) or with --from-manifest. Album and file names are made safe, every
    destination must lie inside --to whatever the stored paths and album
    names contain, and nothing is overwritten: each image is reported as done
    or skipped, with the reason (exists, missing, cross-device, ...).
    Re-running the same export skips what is already there. A failed image
    leaves no empty album folder behind, and when not one chosen image could
    be exported the command exits with code 5 (a scheduler's "nothing done").
    A RAW and its JPEG (one shot) are chosen once and exported together.

    \b
    Examples:
      eat-curate export scores.parquet --min-score 6 --keep-best --to ~/best --layout album/rank
      eat-curate export photos.db --keep-best --top-percent 15 --to ~/best    best 15% of each album
    """
    chosen, bars = choice_from(choice), bars_wanted(no_progress=as_json)
    if from_manifest is not None:
        if db is not None or chosen.narrows:
            raise click.UsageError(
                "--from-manifest exports the manifest as it is: drop the scores to read (--db) and the filter options"
            )
        items = _manifest_items(from_manifest, layout)
    else:
        if db is None:
            raise click.UsageError(
                "say what to export: scores to choose from (scores.parquet, photos.db or --db URL, with filter "
                "options) or --from-manifest FILE"
            )
        with scores_of(db, model, chosen.hide_missing, chosen.selection.albums) as (connection, model_id):
            images = chosen.images(connection, model_id, progress=bars)
        items = library.items_from_images(images)
    report = library.export_images(items, target, mode, layout, dry_run, progress=bars)
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
