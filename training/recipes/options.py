"""Command-line options the recipe's commands share."""

from __future__ import annotations

from pathlib import Path

import click

cache_option = click.option(
    "--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/wallpapers"),
    show_default=True, help="Where the wallpaper packages are downloaded and unpacked (reused).",
)
device_option = click.option("--device", default="auto", show_default=True,
                             help="auto (CUDA when present), cpu, cuda, ...")
threads_option = click.option("--threads", type=click.IntRange(1), default=None,
                              help="torch CPU threads (default: torch's choice).")
