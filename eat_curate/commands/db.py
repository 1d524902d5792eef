"""`eat-curate db` (init, ddl, import) and `eat-curate runs`: the SQL database and the history of scoring runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from eat_curate.commands.options import Count, json_option
from eat_curate.commands.output import emit, to_json
from eat_curate.commands.read_options import db_option

DB_HELP = "SQLite file path, or an SQLAlchemy URL: sqlite:///photos.db, postgresql+psycopg://user@host/dbname."


@click.group()
def db() -> None:
    """The SQL database that `score --db` writes to.

    \b
    Tables: images, scores (p1..p10, mean, std per image and model), errors,
    models, runs, eat_meta (schema version). `score --db` creates them on its
    first run; `db init` does it ahead of time, e.g. for a shared PostgreSQL;
    `db import` loads the Parquet result of a run (`score --out`) into them.
    sql/README.md in the source tree shows example queries.
    """


@db.command("init")
@click.option("--db", "db_url", required=True, metavar="URL", help=DB_HELP)
@json_option
def init(db_url: str, as_json: bool) -> None:
    """Create the tables, or upgrade a database made by an older eat-curate.

    Safe to run again: an up-to-date database is left as it is. A database
    written by a newer eat-curate is refused.

    \b
    Examples:
      eat-curate db init --db photos.db
      eat-curate db init --db postgresql+psycopg://curator@dbhost/photos
    """
    from eat_curate.sinks import init_database

    status = init_database(db_url)
    if as_json:
        click.echo(to_json(status.to_dict()))
        return
    if status.previous_version is None:
        change = "created"
    elif status.previous_version == status.version:
        change = "up to date"
    else:
        change = f"upgraded from version {status.previous_version}"
    click.echo(f"{status.where}: schema version {status.version} ({change})")
    emit([{"table": name, "rows": count} for name, count in status.rows.items()], as_json=False)


@db.command("ddl")
@click.option(
    "--dialect", type=click.Choice(["sqlite", "postgresql"]), default="sqlite", show_default=True, help="SQL flavour."
)
def ddl(dialect: str) -> None:
    """Print the CREATE statements of the schema, for review or to create the tables by hand.

    The same text is kept in sql/schema_<dialect>.sql in the source tree.
    """
    from eat_curate.sinks import generate_ddl

    click.echo(generate_ddl(dialect), nl=False)


@db.command("import")
@click.argument("source", metavar="RESULT.parquet|DIR/", type=click.Path(path_type=Path))
@click.option("--db", "db_url", required=True, metavar="URL", help=DB_HELP)
@json_option
def import_(source: Path, db_url: str, as_json: bool) -> None:
    """Load a Parquet result of `score --out` into the database, without rescoring.

    SOURCE is the .parquet file or the dataset folder `score --out` wrote
    (or any folder of such Parquet files, e.g. a cluster job's output copied
    from a bucket). The rows go in batches through the same upserts as
    `score --db`, so the tables end as if the run had written the database
    itself; the tables are created first if the database is new.

    \b
    - Newest wins: a row is written only where the database holds no record
      of that image and model, or an older one (by scoring time). A second
      import of the same result writes nothing, and an old result never
      overwrites a newer score.
    - Runs: the scoring runs in the result's history (file metadata or
      _eat_curate.json) and their models' cards are added to `runs` and
      `models` where absent, so every row names a recorded run. The import
      itself scores nothing and is not recorded as a run: its summary
      (printed, or --json) says what it wrote.

    A progress bar shows on a terminal. A SOURCE that is missing or not an
    eat-curate Parquet result is refused before the database is touched.

    \b
    Examples:
      eat-curate db import scores.parquet --db photos.db
      eat-curate db import /mnt/bucket/nightly/ --db postgresql+psycopg://curator@dbhost/photos --json
    """
    from eat_curate.sinks import import_parquet

    summary = import_parquet(str(source), db_url, progress=not as_json)
    if as_json:
        click.echo(to_json(summary.to_dict()))
        return
    added = ", ".join(f"{table} +{count}" for table, count in summary.added.items())
    click.echo(
        f"{summary.source} -> {summary.database}: imported {summary.imported} of {summary.rows} rows "
        f"({summary.skipped} already there, as recent or newer) in {summary.seconds:.1f} s; {added}"
    )


@db.command("prune")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, path_type=Path), metavar="[FOLDER]...")
@click.option("--db", "db_url", required=True, metavar="URL", help=DB_HELP)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; change nothing.")
@json_option
def prune(folders: tuple[Path, ...], db_url: str, dry_run: bool, as_json: bool) -> None:
    """Delete the rows of photos whose files are gone (renamed, moved or deleted).

    Every row naming a local file is checked (only those below FOLDER, when
    given); rows of vanished files are deleted with their scores and errors.
    URLs and a manifest's embedded images are never judged. A renamed photo
    is scored again under its new name by the next `score` run.

    A folder that is not there or is empty looks like a disk that is not
    mounted, and its photos are not forgotten: a FOLDER like that is refused,
    and without FOLDER the rows below a folder `score` was given that looks
    like that are kept (and counted), as are another machine's on a shared
    database. To forget them, name a folder above it. Look with --dry-run.

    \b
    Examples:
      eat-curate db prune --db photos.db --dry-run
      eat-curate db prune ~/Pictures/2024 --db photos.db
    """
    from eat_curate.sinks import prune_missing

    report = prune_missing(db_url, [str(folder) for folder in folders], dry_run=dry_run)
    if as_json:
        click.echo(to_json(report.to_dict()))
        return
    for path in report.examples:
        click.echo(f"{'would delete' if dry_run else 'deleted'}: {path}")
    if report.missing > len(report.examples):
        click.echo(f"... and {report.missing - len(report.examples)} more")
    outcome = f"would delete {report.missing}" if dry_run else f"deleted {report.deleted}"
    click.echo(f"{report.database}: {report.checked} files checked, {report.missing} gone; {outcome} rows")
    for folder, kept in report.kept.items():
        click.echo(f"kept {kept.rows} rows below {folder}, which {kept.why} (a disk that is not mounted?); "
                   "to forget them, prune a folder above it")


@db.command("albums")
@click.option("--db", "db_url", required=True, metavar="URL", help=DB_HELP)
@click.option("--dry-run", is_flag=True, help="List what would change; change nothing.")
@json_option
def albums_command(db_url: str, dry_run: bool, as_json: bool) -> None:
    """Move a database scored by an older eat-curate to the stable album rule.

    An image's album is now the name of the folder holding it, whichever
    folder above it `score` was given (before, `score coll` and `score
    coll/p1` named the same photo's album "p1/hiking" and "hiking"). This
    renames the albums the old rule made from folder paths; albums taken
    from a manifest column are kept. Re-running it changes nothing.

    \b
    Example:
      eat-curate db albums --db photos.db --dry-run
    """
    from eat_curate.sinks import move_albums_to_parent

    report = move_albums_to_parent(db_url, dry_run=dry_run)
    if as_json:
        click.echo(to_json(report.to_dict()))
        return
    for path, old, new in report.examples:
        click.echo(f"{path}: {old!r} -> {new!r}")
    verb = "would move" if dry_run else "moved"
    click.echo(f"{report.database}: {verb} {report.changed} images to their parent folder's album")


def _duration(run: dict) -> str:
    if not run.get("ended_at") or not run.get("started_at"):  # running, or a time another tool overwrote
        return ""
    seconds = (datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    minutes, seconds = divmod(round(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _started(run: dict) -> str:
    started = run.get("started_at")
    return datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M:%S") if started else ""


def _table_row(run: dict) -> dict:
    sources = run.get("sources") or []
    sources = sources if isinstance(sources, str) else ", ".join(str(source) for source in sources)  # as stored
    return {
        "run_id": run["run_id"],
        "status": run["status"],
        "model": run["model_id"],
        "started (UTC)": _started(run),
        "duration": _duration(run),
        "ok": run["ok"],
        "failed": run["failed"],
        "skipped": run["skipped"],
        "img/s": run.get("images_per_s"),
        "sources": sources if len(sources) <= 60 else sources[:57] + "...",
    }


@click.command()
@db_option(required=False)
@click.option("--out", default=None, metavar="FILE.parquet|DIR/", help="Parquet output of `score --out`.")
@click.option("--limit", type=Count(), default=20, show_default=True, help="Show the N newest runs.")
@json_option
def runs(db: str | None, out: str | None, limit: int, as_json: bool) -> None:
    """List scoring runs, newest first: status, model, start, duration, counts, speed, sources.

    Every `score` run is recorded where it writes: in the database's `runs`
    table, and in the Parquet output's metadata (named as with every read
    command, or with --out). A run still shown as "running" is either in
    progress or was cut short; the next run on the same output records it as
    "interrupted".

    \b
    Examples:
      eat-curate runs photos.db
      eat-curate runs scores.parquet --limit 5 --json
    """
    from eat_curate.library import runs_from_database, runs_from_parquet

    if (db is None) == (out is None):
        raise click.UsageError("say whose runs to list: the scores (photos.db, scores.parquet or --db URL) or --out FILE.parquet, one of them")
    records = runs_from_database(db, limit) if db else runs_from_parquet(out, limit)
    if as_json:
        click.echo(to_json(records))
    elif not records:
        click.echo("no runs recorded yet")
    else:
        emit([_table_row(run) for run in records], as_json=False)
