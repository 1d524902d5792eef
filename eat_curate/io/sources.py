"""Image sources: what to score, one :class:`SourceItem` per input image.

A source is one of:

- a local folder, walked recursively (:mod:`eat_curate.io.folders`: stable
  order, hidden entries and ``--exclude`` patterns skipped, symlink loops
  safe, images found by extension and by content);
- a single image file, local or an fsspec URL (``https://...``, ``s3://...``);
- a remote folder: a URL ending in "/" (an object-store prefix such as
  ``s3://bucket/photos/``, or an HTTP index page), walked like a local folder
  (:mod:`eat_curate.io.remote_folders`);
- a Parquet manifest, local or an fsspec URL, named ``*.parquet``/``*.pq``
  (local files are also recognised by Parquet's magic bytes) — see
  :mod:`eat_curate.io.manifests` for its columns. A local folder named so
  (a Parquet dataset of part files) is refused rather than walked for images.

Keys: a local file's absolute path (symlinks not resolved, ``file://``
turned into a path), a URL as given, or ``"<manifest uri>#<row>"`` for bytes
embedded in a manifest. ``image_id`` is a manifest's ``id`` when it has one,
else the first 16 hex digits of sha1(key) (:func:`image_id_for`), so the same
input gets the same id in every run.

Albums (``album_from="parent"``, the default): every file's album is the
name of the folder holding it, whichever folder above it was given, so the
same photo lands in the same album from ``score coll`` and ``score
coll/p1/hiking``; the same for a file given on its own and a manifest row
with a path; a manifest with an ``album`` column uses that column.
``album_from="relative"`` names a folder walk's albums by their path under
the folder given ("trips", "2023/iceland"; None for files directly in it).
``album_from=<column>`` takes albums from that manifest column instead
(folders have no columns, so it is refused for them).

Listing streams: nothing holds the whole input. Every source is checked
before the first item is produced, so a typo, an unreachable host or a
manifest that lists an image twice fails the run before it starts, in one line.
A source given twice, or a source inside a folder also given, is refused:
its images would be scored twice and written once.

Reading (:func:`read_bytes`) is bounded: at most ``max_bytes`` per image
(:data:`DEFAULT_MAX_BYTES`), regular files only — a FIFO, a device or a
socket is an error row, never opened — and remote reads time out and are
tried again on passing faults (:mod:`eat_curate.io.remote_retry`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence

from eat_curate.errors import EatCurateError
from eat_curate.io import bounded_read
from eat_curate.io.bounded_read import DEFAULT_MAX_BYTES, ReadRefused
from eat_curate.io.exclusions import NOTHING_EXCLUDED, Exclusions
from eat_curate.io.folders import ALBUM_RULES, PARENT, file_item, folder_album, walk_folder
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.manifest_duplicates import DUPLICATE_POLICIES, REFUSE
from eat_curate.io.manifests import ManifestError, is_manifest_name, manifest_items, open_manifest
from eat_curate.io.remote import RemoteError, check_protocol, hide_url_password, is_remote, local_path, parent_name
from eat_curate.io.remote_folders import is_folder_url, open_remote_folder
from eat_curate.io.remote_read import read_url, url_facts
from eat_curate.io.remote_retry import RetryPolicy

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DUPLICATE_POLICIES",
    "ManifestError",
    "SourceError",
    "SourceItem",
    "SourceReadError",
    "image_id_for",
    "iter_items",
    "read_bytes",
    "read_file",
]

PARQUET_MAGIC = b"PAR1"


class SourceError(EatCurateError):
    """A source that cannot be listed: missing, unreadable, or of an unknown kind."""


class SourceReadError(EatCurateError):
    """One item's bytes could not be read; the engine records it as an error row of kind ``kind``:
    ``unreadable`` (missing, no permission, not a regular file, network) or ``too-large`` (over the cap)."""

    def __init__(self, key: str, reason: str, kind: str = "unreadable") -> None:
        super().__init__(f"cannot read {key}: {reason}")
        self.key = key
        self.reason = reason  # short: "permission denied", "not a regular file (FIFO)", "HTTP 503 (3 tries)", ...
        self.kind = kind


def iter_items(
    sources: Sequence[str],
    album_from: str = PARENT,
    limit: int | None = None,
    duplicates: str = REFUSE,
    exclusions: Exclusions = NOTHING_EXCLUDED,
) -> Iterator[SourceItem]:
    """Stream the items of ``sources`` in order, at most ``limit`` in all.

    Every source is checked first (raises :class:`SourceError` or
    :class:`ManifestError`); the listing itself runs as the iterator is consumed.
    ``duplicates``: what to do with a manifest that lists an image or an id more than once:
    ``"refuse"`` it, or ``"keep"`` every row (see :mod:`eat_curate.io.manifest_duplicates`).
    ``exclusions``: what folder walks leave out (:mod:`eat_curate.io.exclusions`); refused when no
    source is a folder, since nothing would apply them.
    """
    if isinstance(sources, str):  # a lone string would be iterated letter by letter
        sources = [sources]
    if limit is not None and limit < 0:
        raise SourceError(f"limit must be 0 or more, not {limit}")
    if duplicates not in DUPLICATE_POLICIES:
        raise SourceError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, not {duplicates!r}")
    if not sources:
        raise SourceError("no sources given: name a folder, an image file, a Parquet manifest or a URL")
    _refuse_sources_given_twice([str(source) for source in sources])
    if exclusions and not any(_names_folder(str(source)) for source in sources):
        raise SourceError("--exclude applies inside folders, and no source is one: "
                          "image files and manifests are scored as given")
    listings = [_plan(str(source), album_from, duplicates, exclusions) for source in sources]
    items = itertools.chain.from_iterable(listing() for listing in listings)
    return itertools.islice(items, limit)


def read_bytes(item: SourceItem, max_bytes: int | None = None, retry: RetryPolicy | None = None) -> bytes:
    """The encoded image: embedded data, or the file's or URL's content; raises :class:`SourceReadError`.

    ``max_bytes``: the most read for one image (default :data:`DEFAULT_MAX_BYTES`); a larger
    input is refused as ``too-large`` (a local file from its size alone, unread). ``retry``:
    timeouts and tries for URLs (default ``remote_retry.DEFAULT_RETRY``).
    """
    if item.problem:
        raise SourceReadError(item.key, item.problem)
    limit = bounded_read.DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if item.data is not None:
        if len(item.data) > limit:
            raise SourceReadError(item.key, bounded_read.over_limit(len(item.data), limit).reason, "too-large")
        return item.data
    where = item.where
    try:
        if is_remote(where):
            return read_url(where, limit, retry)
        return bounded_read.read_file(where, limit)
    except ReadRefused as refused:
        raise SourceReadError(item.key, refused.reason, refused.kind) from None
    except RemoteError as error:
        raise SourceReadError(item.key, str(error)) from None


def read_file(path: str, max_bytes: int | None = None) -> bytes:
    """One local file's bytes, read as :func:`read_bytes` reads an item (regular files only, capped)."""
    return read_bytes(SourceItem(key=local_path(path), image_id="", album=None), max_bytes)


def _refuse_sources_given_twice(sources: list[str]) -> None:
    seen: set[str] = set()
    for source in sources:
        where = source if is_remote(source) else local_path(source)
        if where in seen:
            raise SourceError(f"{source} is given twice: its images would be scored twice and written once")
        seen.add(where)
    folders = {os.path.join(os.path.realpath(where), ""): where for where in seen
               if not is_remote(where) and os.path.isdir(where)}
    for where in seen:
        if is_remote(where) or not os.path.exists(where):
            continue
        inside = next((name for folder, name in folders.items()
                       if name != where and os.path.realpath(where).startswith(folder)), None)
        if inside is not None:
            raise SourceError(f"{where} is inside {inside}, which is given too: its images would be listed twice")


def _names_folder(source: str) -> bool:
    if is_remote(source):
        return is_folder_url(source) and not is_manifest_name(source)
    return os.path.isdir(local_path(source))


def _plan(
    source: str, album_from: str, duplicates: str, exclusions: Exclusions
) -> Callable[[], Iterator[SourceItem]]:
    """Check ``source`` now; return what lists its items later."""
    if is_remote(source):
        shown = hide_url_password(source)
        try:
            check_protocol(source)
        except RemoteError as error:
            raise SourceError(f"{shown}: {error}") from None
        if is_manifest_name(source):
            manifest = open_manifest(source, album_from, duplicates)
            return lambda: manifest_items(manifest)
        _refuse_column_albums(source, album_from)
        try:
            listing = (open_remote_folder(source, album_from, exclusions) if is_folder_url(source)
                       else iter([_url_item(source)]))
        except RemoteError as error:
            raise SourceError(f"{shown}: {error}") from None
        return lambda: listing

    path = local_path(source)
    if os.path.isdir(path):
        if is_manifest_name(path):  # Spark, Dask and pyarrow write a "manifest" as a folder of part files
            raise SourceError(
                f"{source} is a folder (a Parquet dataset?): eat-curate reads a manifest as one Parquet file; "
                f"give its part files ({os.path.join(source, '*.parquet')}) or write it as one file"
            )
        _refuse_column_albums(source, album_from)
        _check_listable(path)
        return lambda: walk_folder(path, album_from, exclusions)
    if os.path.isfile(path):
        if is_manifest_name(path) or _starts_with(path, PARQUET_MAGIC):
            manifest = open_manifest(path, album_from, duplicates)
            return lambda: manifest_items(manifest)
        _refuse_column_albums(source, album_from)
        return lambda: iter([file_item(path, album=folder_album(os.path.dirname(path), "", PARENT))])
    if os.path.lexists(path) and not os.path.exists(path):
        raise SourceError(f"{source} is a broken symlink (its target is gone)")
    if os.path.exists(path):
        reason = bounded_read.not_regular_reason(os.stat(path).st_mode) or "neither a file nor a folder"
        raise SourceError(f"{source}: {reason}")
    raise SourceError(f"no such file or folder: {source}")


def _url_item(url: str) -> SourceItem:
    size, mtime = url_facts(url)
    return SourceItem(key=url, image_id=image_id_for(url), album=parent_name(url), size=size, mtime=mtime)


def _refuse_column_albums(source: str, album_from: str) -> None:
    if album_from not in ALBUM_RULES:
        raise SourceError(
            f"album column {album_from!r} applies to Parquet manifests; {source} has no columns "
            f"(folders and files take {' or '.join(repr(rule) for rule in ALBUM_RULES)})"
        )


def _check_listable(path: str) -> None:
    try:
        with os.scandir(path):
            pass
    except OSError as error:
        raise SourceError(f"cannot read folder {path}: {error.strerror or error}") from None


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:
        return False
