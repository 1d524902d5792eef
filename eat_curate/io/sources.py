"""Image sources: what to score, one :class:`SourceItem` per input image.

A source is one of:

- a local folder, walked recursively (:mod:`eat_curate.io.folders`: stable
  order, hidden entries skipped, symlink loops safe, images found by
  extension and by content);
- a single image file, local or an fsspec URL (``https://...``, ``s3://...``);
- a remote folder: a URL ending in "/" (an object-store prefix such as
  ``s3://bucket/photos/``, or an HTTP index page), walked like a local folder
  (:mod:`eat_curate.io.remote_folders`);
- a Parquet manifest, local or an fsspec URL, named ``*.parquet``/``*.pq``
  (local files are also recognised by Parquet's magic bytes) — see
  :mod:`eat_curate.io.manifests` for its columns.

Keys: a local file's absolute path (symlinks not resolved, ``file://``
turned into a path), a URL as given, or ``"<manifest uri>#<row>"`` for bytes
embedded in a manifest. ``image_id`` is a manifest's ``id`` when it has one,
else the first 16 hex digits of sha1(key) (:func:`image_id_for`), so the same
input gets the same id in every run.

Albums (``album_from="parent"``, the default): a folder's files get their
parent folder's path relative to the folder given ("trips",
"2023/iceland"), None for files directly in it; a file given on its own, or
a manifest row with a path, gets the name of the folder holding it; a
manifest with an ``album`` column uses that column. ``album_from=<column>``
takes albums from that manifest column instead (folders have no columns, so
it is refused for them).

Listing streams: nothing holds the whole input. Every source is checked
before the first item is produced, so a typo fails the run before it starts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence

from eat_curate.errors import EatCurateError
from eat_curate.io.folders import file_item, walk_folder
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.manifests import PARENT, ManifestError, is_manifest_name, manifest_items, open_manifest
from eat_curate.io.remote import RemoteError, check_protocol, is_remote, local_path, parent_name, read_url, url_facts
from eat_curate.io.remote_folders import is_folder_url, walk_remote_folder

__all__ = [
    "ManifestError",
    "SourceError",
    "SourceItem",
    "SourceReadError",
    "image_id_for",
    "iter_items",
    "read_bytes",
]

PARQUET_MAGIC = b"PAR1"


class SourceError(EatCurateError):
    """A source that cannot be listed: missing, unreadable, or of an unknown kind."""


class SourceReadError(EatCurateError):
    """One item's bytes could not be read; the engine records it as an ``unreadable`` error row."""

    kind = "unreadable"

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"cannot read {key}: {reason}")
        self.key = key
        self.reason = reason  # short: "permission denied", "not found", "HTTP 404 not found", ...


def iter_items(
    sources: Sequence[str], album_from: str = PARENT, limit: int | None = None
) -> Iterator[SourceItem]:
    """Stream the items of ``sources`` in order, at most ``limit`` in all.

    Every source is checked first (raises :class:`SourceError` or
    :class:`ManifestError`); the listing itself runs as the iterator is consumed.
    """
    if isinstance(sources, str):  # a lone string would be iterated letter by letter
        sources = [sources]
    if limit is not None and limit < 0:
        raise SourceError(f"limit must be 0 or more, not {limit}")
    if not sources:
        raise SourceError("no sources given: name a folder, an image file, a Parquet manifest or a URL")
    listings = [_plan(str(source), album_from) for source in sources]
    items = itertools.chain.from_iterable(listing() for listing in listings)
    return itertools.islice(items, limit)


def read_bytes(item: SourceItem) -> bytes:
    """The encoded image: embedded data, or the file's or URL's content; raises :class:`SourceReadError`."""
    if item.problem:
        raise SourceReadError(item.key, item.problem)
    if item.data is not None:
        return item.data
    if is_remote(item.key):
        try:
            return read_url(item.key)
        except RemoteError as error:
            raise SourceReadError(item.key, str(error)) from None
    return _read_local(item.key)


def _plan(source: str, album_from: str) -> Callable[[], Iterator[SourceItem]]:
    """Check ``source`` now; return what lists its items later."""
    if is_remote(source):
        try:
            check_protocol(source)
        except RemoteError as error:
            raise SourceError(f"{source}: {error}") from None
        if is_manifest_name(source):
            manifest = open_manifest(source, album_from)
            return lambda: manifest_items(manifest)
        _refuse_column_albums(source, album_from)
        if is_folder_url(source):
            return lambda: walk_remote_folder(source)
        return lambda: iter([_url_item(source)])

    path = local_path(source)
    if os.path.isdir(path):
        _refuse_column_albums(source, album_from)
        _check_listable(path)
        return lambda: walk_folder(path)
    if os.path.isfile(path):
        if is_manifest_name(path) or _starts_with(path, PARQUET_MAGIC):
            manifest = open_manifest(path, album_from)
            return lambda: manifest_items(manifest)
        _refuse_column_albums(source, album_from)
        return lambda: iter([file_item(path, album=parent_name(path))])
    if os.path.lexists(path) and not os.path.exists(path):
        raise SourceError(f"{source} is a broken symlink (its target is gone)")
    if os.path.exists(path):
        raise SourceError(f"{source} is neither a file nor a folder")
    raise SourceError(f"no such file or folder: {source}")


def _url_item(url: str) -> SourceItem:
    size, mtime = url_facts(url)
    return SourceItem(key=url, image_id=image_id_for(url), album=parent_name(url), size=size, mtime=mtime)


def _refuse_column_albums(source: str, album_from: str) -> None:
    if album_from != PARENT:
        raise SourceError(
            f"album column {album_from!r} applies to Parquet manifests; {source} has no columns "
            f"(use album_from={PARENT!r} for folders and files)"
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


def _read_local(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        reason = "broken symlink (its target is gone)" if os.path.islink(path) else "not found"
        raise SourceReadError(path, reason) from None
    except PermissionError:
        raise SourceReadError(path, "permission denied") from None
    except IsADirectoryError:
        raise SourceReadError(path, "is a folder, not a file") from None
    except OSError as error:
        raise SourceReadError(path, error.strerror or str(error)) from None
