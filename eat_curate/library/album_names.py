"""``--album`` names checked against the albums a database holds.

A mistyped album would otherwise select nothing, and ``filter``, ``export``
or ``xmp`` would quietly write an empty manifest or no files at all. An
album counts as known when the model scored an image in it, or when any
image row names it (its images failed, or another model scored them): an
album that exists but holds nothing chosen is an empty answer, not an error.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa

from eat_curate.errors import StoreError
from eat_curate.library.queries import albums_in
from eat_curate.sinks.sql.schema import images, scores

LISTED_AT_MOST = 8  # known albums named in the error when none is close to the typo


class AlbumChoiceError(StoreError):
    """An ``--album`` names no album of the database."""


def check_albums(connection: sa.Connection, model_id: str, albums: Sequence[str | None]) -> None:
    """Raise :class:`AlbumChoiceError` naming every album in ``albums`` the database does not hold.

    The common case, every album scored, reads only the scores' album index;
    the whole album list is read only to explain a miss.
    """
    wanted = list(dict.fromkeys(albums))
    if not wanted:
        return
    scored = set(
        connection.execute(
            sa.select(scores.c.album).where(scores.c.model_id == model_id, albums_in(scores.c.album, wanted)).distinct()
        ).scalars()
    )
    missing = [album for album in wanted if album not in scored]
    if not missing:
        return
    known = set(connection.execute(sa.select(images.c.album).distinct()).scalars())
    unknown = [album for album in missing if album not in known]
    if unknown:
        raise AlbumChoiceError("; ".join(_explain(album, known) for album in unknown))


def _explain(album: str | None, known: set[str | None]) -> str:
    if album is None:
        return 'no image is without an album (--album "" picks those)'
    names = sorted(name for name in known if name is not None)
    close = _close_names(album, names)
    if close:
        return f"no album named {album!r} (did you mean {' or '.join(_shown(name, album) for name in close)}?)"
    if not names:
        return f"no album named {album!r} (no image has an album)"
    shown = ", ".join(repr(name) for name in names[:LISTED_AT_MOST])
    more = f" and {len(names) - LISTED_AT_MOST} more: eat-curate albums lists them" if len(names) > LISTED_AT_MOST else ""
    return f"no album named {album!r} (the albums: {shown}{more})"


def _close_names(album: str, names: list[str]) -> list[str]:
    """Names that look the same (Unicode form, case) first, then the closest spellings (difflib), at most three."""
    same_but_form = [name for name in names if _looks(name) == _looks(album)]
    return same_but_form or difflib.get_close_matches(album, names, n=3, cutoff=0.6)


def _looks(name: str) -> str:
    """What a reader sees: 'ü' typed as one character (NFC, as Linux keyboards write it) or as 'u' and a
    combining accent (NFD, as macOS names folders) is the same word to a person, though not to ``=``."""
    return unicodedata.normalize("NFC", name).casefold()


def _shown(name: str, typed: str) -> str:
    """``name`` quoted; spelled out in escapes where it differs from ``typed`` only in Unicode form, or the
    suggestion would print exactly as what was refused."""
    if name != typed and unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", typed):
        return f"{name!r}, written {ascii(name)}"
    return repr(name)
