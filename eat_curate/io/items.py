"""SourceItem: one input image, as listed by a source and before it is read.

Import it from :mod:`eat_curate.io.sources`; it lives here only so the
listing modules (folders, manifests) can build items without a cycle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eat_curate.incremental import InputVersion, input_version

IMAGE_ID_LENGTH = 16  # hex digits: 64 bits, collision-free in practice far beyond 1e7 images
# The longest id a manifest may give: the SQL outputs keep ids in a VARCHAR(128) column
# (eat_curate.sinks.sql.schema), which PostgreSQL enforces.
MAX_GIVEN_ID_LENGTH = 128
# Albums are names (a folder's is at most 255 bytes): a longer one is a wrong --album-from column or a
# folder's whole path, and PostgreSQL could not index it (the scores' album index holds about 2.7 KB a row).
MAX_ALBUM_BYTES = 1024


def album_bytes(album: str | None) -> int:
    """The length of ``album`` in UTF-8, the unit of :data:`MAX_ALBUM_BYTES`."""
    return len(album.encode("utf-8", "surrogateescape")) if album else 0


@dataclass(frozen=True)
class SourceItem:
    key: str  # absolute path, URI, or "<manifest uri>#<row>" for embedded bytes; unique per input
    image_id: str  # the manifest's `id` when given, else derived from key
    album: str | None
    data: bytes | None = None  # embedded image bytes (a manifest's `image` column)
    content_hash: str | None = None  # sha256 hex of `data`, known up front for embedded bytes
    size: int | None = None  # bytes on storage, when known without reading
    mtime: float | None = None  # modification time, when known without reading
    extra: dict | None = None  # a manifest's other columns, carried through
    # Why this input cannot be read, when already known while listing (a manifest row
    # without a path, a sub-folder that cannot be listed): read_bytes raises it.
    problem: str | None = None
    # Where the bytes are when that is not ``key``: a manifest row that repeats an earlier row's
    # path, kept under a key of its own ("<path>#<row>", io.manifest_duplicates), still reads that path.
    location: str | None = None

    @property
    def where(self) -> str:
        """The path or URL the bytes are read from."""
        return self.location or self.key

    def version(self) -> InputVersion:
        """What a sink compares to tell whether this input is already scored (``eat_curate.incremental``)."""
        return InputVersion(self.key, self.image_id, input_version(self.size, self.mtime, self.content_hash))


# Why a file whose name is not UTF-8 gets an error row instead of a score: its path could not be stored
# (Parquet, SQLite and PostgreSQL keep text as UTF-8), nor found again by export or xmp from what was.
NOT_UTF8_NAME = "the file name is not valid UTF-8; rename it (for example with convmv) to score it"


def printable_path(path: str) -> str:
    """``path`` as valid UTF-8 text: bytes of a file name that are not UTF-8 (which Python keeps as
    lone surrogates) shown as ``\\xNN``, so such a file can still be named in an error row."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


def image_id_for(key: str) -> str:
    """The stable id of an input without one: the first 16 hex digits of sha1(key, UTF-8)."""
    return hashlib.sha1(key.encode("utf-8", errors="surrogateescape")).hexdigest()[:IMAGE_ID_LENGTH]
