"""What the report shows, read from the database (and thumbnails from the image files)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from tqdm import tqdm

from eat_curate.report.thumbnails import Thumbnail, make_thumbnail
from eat_curate.sinks.sql import schema
from eat_curate.library.dupes import DEFAULT_DISTANCE, DuplicateGroup, DuplicateMember, find_duplicate_groups
from eat_curate.library.queries import AlbumStats, SelectedImage, Selection, album_stats, select_errors, select_images


@dataclass(frozen=True)
class AlbumSection:
    stats: AlbumStats  # of the whole album
    images: list[SelectedImage]  # shown, best first (at most per_album)
    means: list[float]  # of every chosen image of the album, for its histogram
    chosen: int | None = None  # how many of the album's images the selection kept; None: all of them

    @property
    def name(self) -> str | None:
        return self.stats.album


@dataclass
class ReportData:
    model_id: str
    model: dict  # the models row (card parsed), empty if the database lacks it
    runs: list[dict]
    albums: list[AlbumSection]
    best: list[SelectedImage]
    worst: list[SelectedImage]
    duplicate_groups: list[DuplicateGroup]
    errors_by_kind: dict[str, int]
    thumbnails: dict[str, Thumbnail] = field(default_factory=dict)  # by image id
    per_group: int = 0  # members shown of each duplicate group (its best first); 0: all
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def image_count(self) -> int:
        return sum(section.stats.images for section in self.albums)

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(path, why) of every shown image whose file could not be thumbnailed."""
        paths = {image.image_id: image.path for image in self.shown_images()}
        return sorted((paths[key], thumb.problem) for key, thumb in self.thumbnails.items() if thumb.problem)

    def shown_images(self) -> list[SelectedImage]:
        shown = [image for section in self.albums for image in section.images] + self.best + self.worst
        shown += [member.image for group in self.duplicate_groups for member in self.shown_members(group)]
        return list({image.image_id: image for image in shown}.values())

    def shown_members(self, group: DuplicateGroup) -> tuple[DuplicateMember, ...]:
        """The members of ``group`` the page shows (a burst of 5,000 frames: its best few, then a count)."""
        return group.members[: self.per_group or None]


def _model_row(connection: sa.Connection, model_id: str) -> dict:
    row = connection.execute(sa.select(schema.models).where(schema.models.c.model_id == model_id)).mappings().first()
    if row is None:
        return {}
    model = dict(row)
    try:
        model["card"] = json.loads(model["card"])
    except (TypeError, ValueError):
        pass
    return model


def _runs(connection: sa.Connection, model_id: str) -> list[dict]:
    runs = schema.runs
    query = sa.select(
        runs.c.run_id, runs.c.status, runs.c.engine, runs.c.host, runs.c.sources, runs.c.started_at,
        runs.c.ended_at, runs.c.ok, runs.c.failed, runs.c.skipped,
    ).where(runs.c.model_id == model_id).order_by(runs.c.started_at)
    return [dict(row) for row in connection.execute(query).mappings()]


def build_report(
    connection: sa.Connection,
    model_id: str,
    albums: tuple[str | None, ...] = (),
    top: int = 10,
    per_album: int = 300,
    distance: int = DEFAULT_DISTANCE,
    window: float | None = None,
    progress: bool = False,
    selection: Selection | None = None,
    images: Sequence[SelectedImage] | None = None,
    per_group: int = 0,
) -> ReportData:
    """Everything the page shows; thumbnails of the shown images are made here (``progress``: a bar).

    ``per_group``: members shown of each duplicate group (0: all), as ``per_album`` bounds each album.

    The report shows ``images`` (already chosen, e.g. by ``picks.choose_images``), or else those of
    ``selection`` (default: every image of ``albums``); errors follow ``selection``'s album and time bounds.
    """
    selection = selection if selection is not None else Selection(albums=albums)
    images = list(images) if images is not None else select_images(connection, model_id, selection)
    by_album: dict[str | None, list[SelectedImage]] = {}
    for image in sorted(images, key=lambda image: image.rank):  # best first inside each album
        by_album.setdefault(image.album, []).append(image)
    stats = [row for row in album_stats(connection, model_id, sort="album") if row.album in by_album]
    sections = [
        AlbumSection(
            stats=row,
            images=by_album[row.album][: per_album or None],
            means=[image.mean for image in by_album[row.album]],
            chosen=None if len(by_album[row.album]) == row.images else len(by_album[row.album]),
        )
        for row in stats
    ]
    ranked = sorted(images, key=lambda image: (-image.mean, image.image_id))
    worst = sorted(images, key=lambda image: (image.mean, image.image_id))[:top]
    errors = select_errors(connection, model_id, selection)
    data = ReportData(
        model_id=model_id,
        model=_model_row(connection, model_id),
        runs=_runs(connection, model_id),
        albums=sections,
        best=ranked[:top],
        worst=worst,
        duplicate_groups=find_duplicate_groups(images, distance, window, progress=progress),
        errors_by_kind=dict(Counter(error.kind for error in errors)),
        per_group=per_group,
    )
    for image in tqdm(data.shown_images(), desc="thumbnails", unit="img", disable=not progress):
        data.thumbnails[image.image_id] = make_thumbnail(image.path)
    return data
