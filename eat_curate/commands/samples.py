"""`eat-curate samples`: a folder of generated photos to try the tool on."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scenes", type=click.IntRange(1, 50), default=3, show_default=True, help="Scenes per album.")
def samples(folder: Path, scenes: int) -> None:
    """Write generated sample photos into FOLDER (two albums).

    Each drawn landscape is saved sharp and with one defect (blurred, dark,
    noisy, tilted), so a ranking has something to show. Nothing is downloaded.
    A file already at a sample's path is never overwritten: it is kept and
    counted, so running it again, or into a folder of your own, loses nothing.
    """
    from eat_curate.samples import sample_paths, write_sample_photos

    written = write_sample_photos(folder, scenes)
    kept = len(sample_paths(folder, scenes)) - len(written)
    note = f"; kept {kept} files already there (never overwritten)" if kept else ""
    click.echo(f"wrote {len(written)} photos into {folder}{note}")
