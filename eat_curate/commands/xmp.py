"""`eat-curate xmp`: star ratings and scores into XMP sidecars, where photo managers read them."""

from __future__ import annotations

import click

from eat_curate import exit_codes, library
from eat_curate.commands.options import bars_wanted
from eat_curate.commands.output import format_table, to_json
from eat_curate.commands.read_options import (
    PERCENT,
    choice_from,
    db_option,
    model_option,
    pick_options,
    scores_of,
    selection_options,
)


class _Spec(click.ParamType):
    """A comma-separated KEY:VALUE option, checked by the library's parser."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _parse_stars(text: str):
    return library.StarRule.parse(text)


def _parse_labels(text: str):
    return library.parse_labels(text)


@click.command()
@db_option()
@model_option
@selection_options
@pick_options()
@click.option(
    "--stars",
    "star_rule",
    type=_Spec("stars", _parse_stars),
    default=library.DEFAULT_STARS,
    show_default=True,
    metavar="SPEC",
    help="How scores become 0-5 stars. Shares per album, best first: '5:5%,4:15%,3:30%,2:30%,1:20%' gives "
    "the best 5% of each album five stars, the next 15% four, ... (bands end at ceil(cumulative share x "
    "album size): an album of one image gets five stars; past the last band, 0 stars). Or score thresholds: "
    "'5:8,4:7,3:6,2:5,1:4' gives five stars from a mean score of 8, four from 7, ..., 0 below 4.",
)
@click.option(
    "--reject-bottom",
    type=PERCENT,
    default=None,
    metavar="P",
    help="Mark the lowest P% of each album rejected (xmp:Rating -1), rounded down: an album of 7 with "
    "--reject-bottom 10 has no reject.",
)
@click.option(
    "--labels",
    "labels",
    type=_Spec("labels", _parse_labels),
    default=None,
    metavar="SPEC",
    help="Colour labels (xmp:Label) by rating, e.g. '5:Green,4:Yellow,-1:Red'; colours: "
    + ", ".join(library.LABEL_COLOURS)
    + ". Without it labels are left alone; with it, a label eat-curate wrote before and no longer applies "
    "is removed (one set by hand is kept).",
)
@click.option(
    "--sidecar-name",
    "naming",
    type=click.Choice(library.SIDECAR_NAMES),
    default="full",
    show_default=True,
    help="full: IMG_1.CR2.xmp, as darktable and digiKam name sidecars; stem: IMG_1.xmp, as Adobe Lightroom "
    "and Bridge do (for raw files; they keep a JPEG's metadata inside the JPEG). Immich reads both.",
)
@click.option(
    "--overwrite-ratings",
    is_flag=True,
    help="Replace ratings set by hand too. Without it, a sidecar's xmp:Rating that is not 0 and not the one "
    "eat-curate wrote last stays, and so does its label; the model's stars still go into eatcurate:Rating.",
)
@click.option("--dry-run", is_flag=True, help="List what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and every file's outcome as JSON.")
def xmp(
    db: str,
    model: str | None,
    star_rule: library.StarRule,
    reject_bottom,
    labels: dict[int, str] | None,
    naming: str,
    overwrite_ratings: bool,
    dry_run: bool,
    as_json: bool,
    **choice,
) -> None:
    """Write star ratings and scores into XMP sidecars beside the images.

    Lightroom, darktable, digiKam and Immich read xmp:Rating from a sidecar;
    -1 means rejected (the XMP specification's value, which darktable shows
    as a reject).
    Images are chosen as with `filter` (album, score, time, --keep-best,
    --top-percent, --per-album, ...); stars, shares and rejects then count
    over the chosen images of each album, or of all of them with --overall.

    \b
    Each sidecar gets:
      xmp:Rating            -1 (reject) or 0-5 stars, see --stars; a rating set
                            by hand stays (--overwrite-ratings replaces it)
      xmp:Label             with --labels only
      eatcurate:Score, Std, Model, Rating, Label
                            in namespace https://eat-curate.invalid/ns/1.0/ (prefix eatcurate)

    An existing sidecar is merged, never replaced: every other field (edit
    history, keywords, other programs' namespaces) is kept, and so is a
    rating someone set by hand (not 0, and not the one eat-curate wrote
    last), with its label; an unchanged
    sidecar is not rewritten. A sidecar that cannot be parsed (not XML, not
    UTF-8, a DOCTYPE, no rdf:RDF) or is a symbolic link is left untouched and
    listed as unreadable; the command then exits with status 6 after doing
    all the others. Sidecars go only into the image's own folder, written to
    a temporary file and renamed. Images whose files are gone are skipped.
    A RAW and its JPEG (one shot) count once in shares, and both files get
    the shot's rating.

    \b
    Examples:
      eat-curate xmp scores.parquet --dry-run
      eat-curate xmp photos.db --keep-best --reject-bottom 10 --labels 5:Green
      eat-curate xmp photos.db --stars 5:8,4:7,3:6,2:5,1:4 --sidecar-name stem
    """
    chosen, bars = choice_from(choice, needs_share_for_overall=False), bars_wanted(no_progress=as_json)
    with scores_of(db, model, chosen.hide_missing, chosen.selection.albums) as (connection, model_id):
        images = chosen.images(connection, model_id, progress=bars)
    ratings = library.star_ratings(images, star_rule, reject_bottom, overall=chosen.picks.overall)
    values = library.sidecar_values(images, ratings, model_id, labels, overwrite_hand_ratings=overwrite_ratings)
    report = library.write_sidecars(images, values, naming, dry_run, progress=bars)
    outcome = exit_codes.SIDECARS_LEFT if report.problems else exit_codes.DONE
    if as_json:
        click.echo(to_json({"outcome": outcome.name, "model_id": model_id, "stars": star_rule.describe(),
                            **report.to_dict()}))
    else:
        _print_report(report, model_id, star_rule, labels_managed=labels is not None)
    if outcome is not exit_codes.DONE:
        raise click.exceptions.Exit(outcome.code)


def _print_report(
    report: library.SidecarReport, model_id: str, star_rule: library.StarRule, labels_managed: bool
) -> None:
    counts = report.counts
    order = ("created", "updated", "unchanged", "would create", "would update", "skipped", "unreadable", "failed")
    summary = ", ".join(f"{action} {counts[action]}" for action in order if counts.get(action))
    prefix = "dry run, nothing written: " if report.dry_run else ""
    click.echo(f"{prefix}{summary or 'no images chosen'} ({report.naming} sidecar names; model {model_id})")
    click.echo(f"stars: {star_rule.describe()}", err=True)
    if report.kept_by_hand:
        kept = report.kept_by_hand
        click.echo(f"kept {kept} {'rating' if kept == 1 else 'ratings'} set by hand (--overwrite-ratings replaces "
                   "them)", err=True)
    changes = [o for o in report.outcomes if o.action.startswith("would")]
    if changes:
        click.echo(format_table([_change_row(o, labels_managed) for o in changes]))
    if report.skipped_by_reason:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(report.skipped_by_reason.items()))
        click.echo(f"skipped: {reasons}")
    for problem in report.problems:
        click.echo(f"{problem.action}: {problem.sidecar or problem.image}: {problem.reason}", err=True)


def _change_row(outcome, labels_managed: bool) -> dict:
    """One line of a dry run: what the sidecar holds now and what it would hold."""
    rating = "kept (by hand)" if outcome.kept_by_hand else outcome.rating
    row = {"action": outcome.action, "rating": f"{outcome.previous_rating or '-'} -> {rating}"}
    if labels_managed:
        row["label"] = f"{outcome.previous_label or '-'} -> {outcome.label or '-'}"
    return {**row, "sidecar": outcome.sidecar}
