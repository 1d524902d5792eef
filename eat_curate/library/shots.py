"""RAW + JPEG of one photograph read as one shot: one row in ranks, counts and picks, both files in exports.

The sinks store each image's shot key (``images.shot``, see
``eat_curate.sinks.shots``): files of one folder whose names differ only in
the extension and the case of ASCII letters. The read side then shows each
shot once, by its lead:

- **The lead** is the shot's best-scored file for the model read: the
  highest mean, ties by image id byte by byte (the album-rank order, whatever
  ``rank --by`` says). Files of the shot that the model could not score (a
  RAW without the ``raw`` extra) never lead.
- The other files are left out before anything is ranked or counted, so
  ranks, album statistics, shares and duplicate groups count shots, and a RAW
  is never reported as a duplicate of its own JPEG.
- Each lead row names the shot's other files (``also``: every other file of
  the shot the database knows, scored or not); ``export`` carries them along,
  ``xmp`` writes them the same rating, and selection manifests list them.

This module builds the SQL; :class:`ShownRows` says which rows a query
shows. The commands read through one materialised per connection
(``hidden.shown_rows``: small temporary tables, filled once, which the
Parquet result needs most: there the shot is computed from each path on
every read); the SQL views inline the same rule (:meth:`ShownRows.inline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import sqlalchemy as sa

from eat_curate.library.rank_key import rank_key
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.bytewise import bytewise

scores = schema.scores
images = schema.images

LOOKUP_BATCH = 2000  # shots per partner lookup: far below every database's bound-parameter limit


@dataclass(frozen=True)
class ShotFile:
    """Another file of a shot: what ``export`` copies beside the lead and ``xmp`` rates the same."""

    image_id: str
    path: str

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "path": self.path}


def paired_shots() -> sa.Select:
    """The shots holding more than one file (an index-only pass over ``ix_images_shot``)."""
    return (
        sa.select(images.c.shot)
        .where(images.c.shot.is_not(None))
        .group_by(images.c.shot)
        .having(sa.func.count() > 1)
    )


def paired_files(paired: sa.FromClause) -> sa.Select:
    """(shot, image_id, path) of every file of the shots in ``paired`` (a ``shot`` column)."""
    return sa.select(images.c.shot, images.c.image_id, images.c.path).where(
        images.c.shot.in_(sa.select(paired.c.shot))
    )


def outranked(files: sa.FromClause, model_id: str | None = None, absent: sa.Select | None = None) -> sa.Select:
    """(model_id, image_id) of the scores whose shot has a better-scored file: not their shot's lead.

    ``files``: the files of the shots of several files (``paired_files``). ``absent``: image ids
    that cannot lead (vanished files, with --hide-missing), so the next best file does.
    """
    place = sa.func.row_number().over(
        partition_by=(scores.c.model_id, files.c.shot), order_by=rank_key(scores.c.mean, True, scores.c.image_id)
    )
    members = sa.select(scores.c.model_id, scores.c.image_id, place.label("place")).join_from(
        files, scores, scores.c.image_id == files.c.image_id
    )
    if model_id is not None:
        members = members.where(scores.c.model_id == model_id)
    if absent is not None:
        members = members.where(scores.c.image_id.not_in(absent))
    ranked = members.subquery("shot_members")
    return sa.select(ranked.c.model_id, ranked.c.image_id).where(ranked.c.place > 1)


@dataclass(frozen=True)
class ShownRows:
    """Which score rows a query shows, and which shots hold several files.

    ``left_out``: rows to leave out, by ``image_id`` (for the one model read) or by
    ``(model_id, image_id)``; None leaves nothing out. ``files``: the files of the
    shots holding several (``paired_files``); None: there are none. ``vanished``:
    the ``image_id`` of files hidden as missing, never named as a shot's other file.
    """

    left_out: sa.FromClause | None = None
    files: sa.FromClause | None = None
    vanished: sa.FromClause | None = None

    @classmethod
    def inline(cls) -> ShownRows:
        """The rule as plain SQL over every model, for the SQL views (slower than the commands' tables)."""
        files = paired_files(paired_shots().subquery("paired_shots")).subquery("paired_files")
        return cls(left_out=outranked(files).subquery("outranked"), files=files)

    def shown(self, table: sa.FromClause) -> sa.ColumnElement[bool] | None:
        """The condition keeping a row of ``table`` (``scores`` or an alias); None: every row is shown."""
        if self.left_out is None:
            return None
        if "model_id" in self.left_out.c:
            return sa.tuple_(table.c.model_id, table.c.image_id).not_in(
                sa.select(self.left_out.c.model_id, self.left_out.c.image_id)
            )
        return table.c.image_id.not_in(sa.select(self.left_out.c.image_id))

    def is_paired(self, image_id: sa.ColumnElement) -> sa.ColumnElement[bool]:
        """Whether an image's shot holds several files: the rows :func:`partners` looks up.

        Asked by image id, not by shot: a Parquet result computes the shot of every row it is asked of.
        """
        if self.files is None:
            return sa.false()
        return image_id.in_(sa.select(self.files.c.image_id))


def where_shown(query: sa.Select, table: sa.FromClause, rows: ShownRows) -> sa.Select:
    condition = rows.shown(table)
    return query if condition is None else query.where(condition)


def partners(
    connection: sa.Connection, leads: Sequence[tuple[str, str]], rows: ShownRows
) -> dict[str, tuple[ShotFile, ...]]:
    """Lead image id -> the other files of its shot (by path, byte order), for (image id, shot) pairs.

    Files hidden as missing (``rows.vanished``) are not named.
    """
    by_shot: dict[str, list[ShotFile]] = {}
    files = rows.files
    shots = iter(sorted({shot for _, shot in leads}))
    while files is not None and (batch := list(islice(shots, LOOKUP_BATCH))):
        query = sa.select(files.c.shot, files.c.image_id, files.c.path).where(files.c.shot.in_(batch))
        if rows.vanished is not None:
            query = query.where(files.c.image_id.not_in(sa.select(rows.vanished.c.image_id)))
        query = query.order_by(bytewise(files.c.path), bytewise(files.c.image_id))
        for shot, image_id, path in connection.execute(query):
            by_shot.setdefault(shot, []).append(ShotFile(image_id, path))
    return {lead: tuple(file for file in by_shot.get(shot, ()) if file.image_id != lead) for lead, shot in leads}
