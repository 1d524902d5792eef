"""What `score --dry-run` prints: the inputs a run would score on stdout, the counts on stderr (or JSON).

Also the warning of a run, dry or not, whose sources list no image at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from eat_curate.commands.output import printable_text, to_json
from eat_curate.io.exclusions import Exclusions
from eat_curate.io.items import SourceItem, printable_path


def print_dry_run(
    items: Iterable[SourceItem],
    out: str | None,
    db: str | None,
    model_id: str,
    rescore: bool,
    exclusions: Exclusions,
    limit: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """List (or, with ``as_json``, count) what a run would score; reads the outputs, writes nothing."""
    from eat_curate.scoring.dry_run import dry_run
    from eat_curate.sinks import open_lookups

    walks_finished = limit is None  # a walk cut short by --limit proves nothing about patterns that matched nothing

    def list_item(item: SourceItem) -> None:
        click.echo(printable_text(printable_path(item.key)))  # one line per image, whatever its name

    lookups = open_lookups(out, db)
    try:
        result = dry_run(items, lookups, model_id, rescore, on_item=(lambda item: None) if as_json else list_item)
    finally:
        for lookup in lookups:
            lookup.close()
    if as_json:
        excluded = {"excluded": exclusions.summary(walks_finished)} if exclusions else {}
        click.echo(to_json({**result.to_dict(), **excluded}))
        return
    if quiet:
        return
    for line in exclusions.report(walks_finished):
        click.echo(line, err=True)
    warn_if_no_images(result.to_score + result.already_scored, limit)
    images = "image" if result.to_score == 1 else "images"
    skipped = " (--rescore: none skipped)" if rescore else f" and skip {result.already_scored} already scored"
    click.echo(f"would score {result.to_score} {images} with {model_id}{skipped}; "
               "nothing was decoded, scored or written (--dry-run)", err=True)


def warn_if_no_images(listed: int, limit: int | None) -> None:
    """Warn when the sources listed no input at all (``--limit 0`` aside): a wrong folder, most likely."""
    if listed == 0 and limit != 0:
        click.secho("warning: the sources hold no image files (JPEG, PNG, WebP, HEIF, TIFF, camera RAW, ... "
                    "by extension or content): nothing to score", fg="yellow", err=True)
