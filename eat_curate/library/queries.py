"""The read side's SQL: ranks inside albums, album statistics, selections and errors.

One SQLAlchemy Core definition serves SQLite and PostgreSQL, and gives the
same rows on both:

- every order is total: ties in the ranking key are broken by image id,
  compared byte by byte (:mod:`eat_curate.sinks.sql.bytewise`); albums are listed
  byte by byte too, the image-less "no album" (NULL) first;
- every user value (album names, thresholds, times) is a bound parameter, and
  albums match with ``=`` (never LIKE), so quotes, ``%``, ``_`` and unicode
  in names match exactly.

A rank is a position inside one album for one model: 1 is the best image,
with ``ROW_NUMBER()`` semantics (no shared ranks). The files of one shot
(RAW + JPEG) are one row, their best-scored file's (``shots``), and on a
connection where ``hidden.hide_missing_files`` ran, the rows of vanished
files are not there: both apply before anything is ranked or counted.

The statements are written for the index ``ix_scores_model_album_rank``
(model, album, mean DESC, image id): ranking streams from it, and album
statistics read one small range of it per album, instead of sorting a
million rows. ``sql_views.py`` renders the same definitions as SQL views for
ad-hoc queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TypeVar

import numpy as np
import sqlalchemy as sa

from eat_curate.sinks.shots import shot_key
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.bytewise import bytewise
from eat_curate.library.hidden import shown_rows
from eat_curate.library.rank_key import rank_key
from eat_curate.library.shots import ShotFile, ShownRows, partners, where_shown
from eat_curate.library.timestamps import comparable_time

scores = schema.scores
images = schema.images
errors = schema.errors

PROBABILITY_COLUMNS = tuple(f"p{i}" for i in range(1, schema.NUM_BINS + 1))
DEFAULT_THRESHOLD = 5.0  # the AVA convention: a photo scoring 5 or more is "good"
TOP_OF_ALBUM = 10  # the images behind an album's "top-10 mean"


@dataclass(frozen=True)
class RankKey:
    column: str
    descending: bool
    meaning: str


# What ``rank --by`` accepts; each has the direction in which "first" makes sense.
RANK_KEYS: dict[str, RankKey] = {
    "mean": RankKey("mean", True, "highest mean score first"),
    "std": RankKey("std", False, "lowest std first (raters agree most)"),
    **{name: RankKey(name, True, f"highest probability of a {name[1:]} first") for name in PROBABILITY_COLUMNS},
}

ALBUM_SORTS = ("mean", "median", "top10_mean", "share_above", "images", "best_score", "album")
TIME_FIELDS = ("captured", "scored")


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedImage:
    album: str | None
    rank: int  # 1 = the album's best by the ranking key
    image_id: str
    path: str
    mean: float
    std: float
    captured_at: datetime | None
    shot: str | None = None  # the shot's key (``sinks.shots.shot_key`` of the path); None: an embedded image
    also: tuple[ShotFile, ...] = ()  # the shot's other files (RAW + JPEG: the other one), see shots.py

    def to_dict(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["also"] = [file.to_dict() for file in self.also]
        return data

    @property
    def files(self) -> tuple[str, ...]:
        """Every file of the shot: this image's, then the others'."""
        return (self.path, *(file.path for file in self.also))


@dataclass(frozen=True)
class SelectedImage(RankedImage):
    """An image a selection kept, with everything the read side shows or exports."""

    probabilities: tuple[float, ...] = ()
    phash: int | None = None
    scored_at: datetime | None = None
    run_id: str = ""
    # The file as stored (before EXIF orientation), for telling an original from its smaller copies.
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    format: str | None = None
    mtime: float | None = None  # seconds since the epoch, as last scanned

    @property
    def pixels(self) -> int:
        """Width x height; 0 when unknown."""
        return (self.width or 0) * (self.height or 0)


Image = TypeVar("Image", bound=RankedImage)


@dataclass(frozen=True)
class AlbumStats:
    album: str | None
    images: int
    mean: float
    median: float
    top10_mean: float  # mean score of the album's best TOP_OF_ALBUM images (all of them when fewer)
    share_above: float  # share of images scoring >= threshold
    threshold: float
    best_score: float
    best_image_id: str
    best_path: str

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ErrorRow:
    album: str | None
    image_id: str
    path: str
    kind: str
    message: str
    at: datetime

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Selection:
    """Which scored images to read; every field left empty selects everything.

    ``since`` is inclusive and ``until`` exclusive, on the capture time (EXIF,
    as the camera recorded it; images without one are left out) or the
    scoring time (naive values taken as UTC).
    """

    albums: tuple[str | None, ...] = ()
    min_score: float | None = None
    max_score: float | None = None
    max_std: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    time_field: str = "captured"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.time_field not in TIME_FIELDS:
            raise ValueError(f"time_field must be one of {TIME_FIELDS}, not {self.time_field!r}")


# --- building blocks ----------------------------------------------------------------------------


def _album_is(column: sa.ColumnElement, album: str | None) -> sa.ColumnElement[bool]:
    """``column = album`` that also matches the NULL album (and uses the index either way)."""
    return column.is_(None) if album is None else column == album


def albums_in(column: sa.ColumnElement, albums: Sequence[str | None]) -> sa.ColumnElement[bool]:
    """``column IN albums``, where None in ``albums`` is the NULL album (images without one)."""
    named = [album for album in albums if album is not None]
    conditions = [column.in_(named)] if named else []
    if len(named) < len(albums):
        conditions.append(column.is_(None))
    return sa.or_(*conditions)


def rank_order(table: sa.FromClause, key: RankKey = RANK_KEYS["mean"]) -> list[sa.ColumnElement]:
    """ORDER BY of a ranking: the key in its direction, then image id byte by byte (one item: see rank_key)."""
    return [rank_key(table.c[key.column], key.descending, table.c.image_id)]


def best_first(image: RankedImage) -> tuple[float, str]:
    """Python's twin of ``rank_order`` by mean: higher mean first, ties by image id.

    Python compares str by code point, which is the order of their UTF-8
    bytes: the order ``bytewise`` gives in SQL.
    """
    return (-image.mean, image.image_id)


def album_order(column: sa.ColumnElement) -> sa.ColumnElement:
    """Albums listed byte by byte, NULL ("no album") first on both databases."""
    return bytewise(column).asc().nulls_first()


def ranked_scores(
    model_id: str | None = None,
    albums: Sequence[str | None] = (),
    key: RankKey = RANK_KEYS["mean"],
    shown: ShownRows | None = None,
) -> sa.Subquery:
    """(model_id, album, image_id, mean, rank) of every shown score (one per shot), ranked inside its model and album.

    Reads only columns of ``ix_scores_model_album_rank``, so ranking by mean
    never touches the table rows. ``model_id``/``albums`` restrict it
    (bound parameters); None ranks every model, as the view does.
    ``shown``: which rows to show (``hidden.shown_rows``); None: the rule inlined, as the views read.
    """
    shown = shown or ShownRows.inline()
    rank = sa.func.row_number().over(partition_by=(scores.c.model_id, scores.c.album), order_by=rank_order(scores, key))
    query = sa.select(scores.c.model_id, scores.c.album, scores.c.image_id, scores.c.mean, rank.label("rank"))
    query = where_shown(query, scores, shown)
    if key.column != "mean":
        query = query.add_columns(scores.c[key.column])
    if model_id is not None:
        query = query.where(scores.c.model_id == model_id)
    if albums:
        query = query.where(albums_in(scores.c.album, albums))
    return query.subquery("ranked")


def _scalar_from_album(
    stats: sa.Subquery,
    build: Callable[[sa.Alias, sa.ColumnElement[bool]], sa.ScalarSelect],
    shown: ShownRows,
) -> sa.ColumnElement:
    """A per-album scalar subquery that can use the index for the NULL album too.

    ``album = NULL`` matches nothing and ``IS NOT DISTINCT FROM`` cannot use a
    b-tree on PostgreSQL, so the NULL album gets its own ``IS NULL`` branch.
    """
    row = schema.scores.alias("album_row")

    def same_album(condition: sa.ColumnElement[bool]) -> sa.ScalarSelect:
        kept = shown.shown(row)
        extra = [] if kept is None else [kept]
        return build(row, sa.and_(row.c.model_id == stats.c.model_id, condition, *extra))

    return sa.case(
        (stats.c.album.is_(None), same_album(row.c.album.is_(None))),
        else_=same_album(row.c.album == stats.c.album),
    )


def album_stats_select(
    model_id: str | None = None, threshold: float = DEFAULT_THRESHOLD, shown: ShownRows | None = None
) -> sa.Select:
    """Per (model, album): images (shots), mean, median, top-10 mean, share >= threshold, best image.

    Counts and sums come from one pass over the index; median, top-10 and the
    best image read one short, ordered range of the index per album. Each
    shot counts once (its lead); ``shown`` as for :func:`ranked_scores`.
    """
    shown = shown or ShownRows.inline()
    base = sa.select(
        scores.c.model_id,
        scores.c.album,
        sa.func.count().label("images"),
        sa.func.avg(scores.c.mean).label("mean"),
        sa.func.max(scores.c.mean).label("best_score"),
        sa.func.sum(sa.case((scores.c.mean >= threshold, 1), else_=0)).label("above"),
    ).group_by(scores.c.model_id, scores.c.album)
    base = where_shown(base, scores, shown)
    if model_id is not None:
        base = base.where(scores.c.model_id == model_id)
    stats = base.subquery("album_counts")

    def median(row: sa.Alias, same_album: sa.ColumnElement[bool]) -> sa.ScalarSelect:
        # The middle values do not depend on how equal means are ordered, and one key sorts faster on DuckDB.
        position = sa.func.row_number().over(order_by=row.c.mean.desc()).label("position")
        ordered = sa.select(row.c.mean, position).where(same_album).correlate(stats).subquery("ordered")
        middle = ((stats.c.images + 1) // 2, (stats.c.images + 2) // 2)
        return sa.select(sa.func.avg(ordered.c.mean)).where(ordered.c.position.in_(middle)).scalar_subquery()

    def top_mean(row: sa.Alias, same_album: sa.ColumnElement[bool]) -> sa.ScalarSelect:
        best = (
            sa.select(row.c.mean)
            .where(same_album)
            .order_by(*rank_order(row))
            .limit(TOP_OF_ALBUM)
            .correlate(stats)
            .subquery("best")
        )
        return sa.select(sa.func.avg(best.c.mean)).scalar_subquery()

    def best_image(row: sa.Alias, same_album: sa.ColumnElement[bool]) -> sa.ScalarSelect:
        return sa.select(row.c.image_id).where(same_album).order_by(*rank_order(row)).limit(1).scalar_subquery()

    per_album = sa.select(
        stats.c.model_id,
        stats.c.album,
        stats.c.images,
        stats.c.mean,
        _scalar_from_album(stats, median, shown).label("median"),
        _scalar_from_album(stats, top_mean, shown).label("top10_mean"),
        (sa.cast(stats.c.above, sa.Float(53)) / sa.cast(stats.c.images, sa.Float(53))).label("share_above"),
        stats.c.best_score,
        _scalar_from_album(stats, best_image, shown).label("best_image_id"),
        sa.cast(threshold, sa.Float(53)).label("threshold"),
    ).subquery("album_stats")
    return sa.select(
        per_album.c.model_id,
        per_album.c.album,
        per_album.c.images,
        per_album.c.mean,
        per_album.c.median,
        per_album.c.top10_mean,
        per_album.c.share_above,
        per_album.c.threshold,
        per_album.c.best_score,
        per_album.c.best_image_id,
        images.c.path.label("best_path"),
    ).join_from(per_album, images, images.c.image_id == per_album.c.best_image_id)


# --- queries -----------------------------------------------------------------------------------


def album_stats(
    connection: sa.Connection, model_id: str, threshold: float = DEFAULT_THRESHOLD, sort: str = "mean"
) -> list[AlbumStats]:
    """Statistics of every album scored by ``model_id``, best first by ``sort`` (``album``: A to Z)."""
    if sort not in ALBUM_SORTS:
        raise ValueError(f"sort must be one of {ALBUM_SORTS}, not {sort!r}")
    query = album_stats_select(model_id, threshold, shown_rows(connection, model_id))
    columns = query.selected_columns
    order = [album_order(columns.album)] if sort == "album" else [columns[sort].desc(), album_order(columns.album)]
    rows = connection.execute(query.order_by(*order))
    return [
        AlbumStats(
            album=row.album,
            images=row.images,
            mean=row.mean,
            median=row.median,
            top10_mean=row.top10_mean,
            share_above=row.share_above,
            threshold=row.threshold,
            best_score=row.best_score,
            best_image_id=row.best_image_id,
            best_path=row.best_path,
        )
        for row in rows
    ]


def rank_images(
    connection: sa.Connection,
    model_id: str,
    albums: Sequence[str | None] = (),
    top: int | None = None,
    by: str = "mean",
    reverse: bool = False,
) -> list[RankedImage]:
    """Shots ranked inside each album by ``by`` (see RANK_KEYS); ``top`` keeps ranks 1..top.

    ``reverse`` ranks from the other end (with ``by=mean``: worst first).
    """
    key = RANK_KEYS[by]
    if reverse:
        key = RankKey(key.column, not key.descending, f"reverse of: {key.meaning}")
    shown = shown_rows(connection, model_id)
    ranked = ranked_scores(model_id, albums, key, shown)
    query = _ranked_top_rows(ranked, top, shown) if top is not None else _ranked_all_rows(ranked, shown)
    rows = [(RankedImage(*row[:-1], shot=shot_key(row.path)), row.paired) for row in connection.execute(query)]
    return _with_partners(connection, rows, shown)


def _with_partners(connection: sa.Connection, rows: Sequence[tuple[Image, bool]], shown: ShownRows) -> list[Image]:
    """The images of ``rows`` (image, whether its shot holds several files), naming their shots' other files.

    Looked up once the rows are all read: DuckDB drops a result still being
    read when the same connection runs another query. (A row's shot is its
    path's key, computed here as the sinks stored it, so a Parquet result
    need not compute it for every row in SQL.)
    """
    leads = [(image.image_id, image.shot) for image, paired in rows if paired]
    found = partners(connection, leads, shown) if leads else {}
    return [replace(image, also=found[image.image_id]) if found.get(image.image_id) else image for image, _ in rows]


def _ranked_top_rows(ranked: sa.Subquery, top: int, shown: ShownRows) -> sa.Select:
    """The first ``top`` of each album, their other columns looked up by primary key.

    Per-row lookups because only the kept rows pay for them: a join would
    make PostgreSQL (which cannot foresee how few ranks pass) hash all of
    both tables.
    """
    image = images.alias("image")
    std = sa.select(scores.c.std).where(scores.c.image_id == ranked.c.image_id, scores.c.model_id == ranked.c.model_id)

    def of_image(column: sa.Column) -> sa.Label:
        return sa.select(column).where(image.c.image_id == ranked.c.image_id).scalar_subquery().label(column.name)

    return (
        sa.select(
            ranked.c.album,
            ranked.c.rank,
            ranked.c.image_id,
            of_image(image.c.path),
            ranked.c.mean,
            std.scalar_subquery(),
            of_image(image.c.captured_at),
            shown.is_paired(ranked.c.image_id).label("paired"),
        )
        .where(ranked.c.rank <= top)
        .order_by(album_order(ranked.c.album), ranked.c.rank)
    )


def _ranked_all_rows(ranked: sa.Subquery, shown: ShownRows) -> sa.Select:
    """Every ranked row joined with its score and image: for many rows a join beats lookups."""
    joined = ranked.join(
        scores, sa.and_(scores.c.image_id == ranked.c.image_id, scores.c.model_id == ranked.c.model_id)
    ).join(images, images.c.image_id == ranked.c.image_id)
    return (
        sa.select(
            ranked.c.album,
            ranked.c.rank,
            ranked.c.image_id,
            images.c.path,
            ranked.c.mean,
            scores.c.std,
            images.c.captured_at,
            shown.is_paired(ranked.c.image_id).label("paired"),
        )
        .select_from(joined)
        .order_by(album_order(ranked.c.album), ranked.c.rank)
    )


def _time_bounds(selection: Selection, captured: sa.ColumnElement, scored: sa.ColumnElement) -> list:
    column = captured if selection.time_field == "captured" else scored

    def bound(value: datetime) -> datetime:
        if selection.time_field == "captured":
            return value.replace(tzinfo=None)  # EXIF times are naive, as the camera recorded them
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    def parameter(value: datetime) -> sa.BindParameter:
        return sa.bindparam(None, bound(value), type_=column.type)

    conditions = []
    if selection.since is not None:
        conditions.append(comparable_time(column) >= comparable_time(parameter(selection.since)))
    if selection.until is not None:
        conditions.append(comparable_time(column) < comparable_time(parameter(selection.until)))
    return conditions


def selected_images_select(
    model_id: str | None, selection: Selection = Selection(), shown: ShownRows | None = None
) -> sa.Select:
    """Scored shots of ``selection`` with their album rank, ordered by album then rank.

    ``paired``: whether the row's shot holds other files (``shots.partners`` names them);
    ``shown`` as for :func:`ranked_scores`.
    """
    shown = shown or ShownRows.inline()
    ranked = ranked_scores(model_id, selection.albums, shown=shown)
    joined = ranked.join(
        scores, sa.and_(scores.c.image_id == ranked.c.image_id, scores.c.model_id == ranked.c.model_id)
    ).join(images, images.c.image_id == ranked.c.image_id)
    conditions = _time_bounds(selection, images.c.captured_at, scores.c.scored_at)
    # Bounds on the ranked (index) columns apply before the row lookups of the join.
    if selection.min_score is not None:
        conditions.append(ranked.c.mean >= selection.min_score)
    if selection.max_score is not None:
        conditions.append(ranked.c.mean <= selection.max_score)
    if selection.max_std is not None:
        conditions.append(scores.c.std <= selection.max_std)
    query = (
        sa.select(
            ranked.c.model_id,
            ranked.c.album,
            ranked.c.rank,
            ranked.c.image_id,
            images.c.path,
            scores.c.mean,
            scores.c.std,
            images.c.captured_at,
            *(scores.c[name] for name in PROBABILITY_COLUMNS),
            images.c.phash,
            scores.c.scored_at,
            scores.c.run_id,
            images.c.width,
            images.c.height,
            images.c.bytes,
            images.c.format,
            images.c.mtime,
            shown.is_paired(ranked.c.image_id).label("paired"),
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(album_order(ranked.c.album), ranked.c.rank)
    )
    return query.limit(selection.limit) if selection.limit is not None else query


def _selected(row: sa.Row) -> SelectedImage:
    return SelectedImage(
        album=row.album,
        rank=row.rank,
        image_id=row.image_id,
        path=row.path,
        mean=row.mean,
        std=row.std,
        captured_at=row.captured_at,
        # Stored as float32 (REAL): PostgreSQL hands back its shortest decimal, SQLite the exact value;
        # through float32 both become the same Python float.
        probabilities=tuple(np.array([getattr(row, name) for name in PROBABILITY_COLUMNS], dtype=np.float32).tolist()),
        phash=row.phash,
        scored_at=_as_utc(row.scored_at),
        run_id=row.run_id,
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        format=row.format,
        mtime=row.mtime,
        shot=shot_key(row.path),
    )


def _as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back scoring times without their zone; they were written in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def select_images(
    connection: sa.Connection, model_id: str, selection: Selection = Selection(), batch: int = 2000
) -> list[SelectedImage]:
    """The shots of ``selection`` (album by album, best first), read ``batch`` rows at a time."""
    shown = shown_rows(connection, model_id)
    query = selected_images_select(model_id, selection, shown)
    streamed = connection.execute(query, execution_options={"yield_per": batch})  # this statement only
    rows = [(_selected(row), row.paired) for row in streamed]
    return _with_partners(connection, rows, shown)


def select_errors(connection: sa.Connection, model_id: str, selection: Selection = Selection()) -> list[ErrorRow]:
    """Images ``model_id`` could not score (latest reason each), by album then path.

    Score and std bounds do not apply; album and time bounds do (``scored``:
    when the error was recorded).
    """
    conditions = [errors.c.model_id == model_id, *_time_bounds(selection, images.c.captured_at, errors.c.at)]
    vanished = shown_rows(connection, model_id).vanished
    if vanished is not None:
        conditions.append(errors.c.image_id.not_in(sa.select(vanished.c.image_id)))
    if selection.albums:
        conditions.append(albums_in(images.c.album, selection.albums))
    query = (
        sa.select(images.c.album, errors.c.image_id, images.c.path, errors.c.kind, errors.c.message, errors.c.at)
        .join_from(errors, images, images.c.image_id == errors.c.image_id)
        .where(*conditions)
        .order_by(album_order(images.c.album), bytewise(images.c.path), bytewise(errors.c.image_id))
    )
    if selection.limit is not None:
        query = query.limit(selection.limit)
    return [ErrorRow(**{**row._asdict(), "at": _as_utc(row.at)}) for row in connection.execute(query)]
