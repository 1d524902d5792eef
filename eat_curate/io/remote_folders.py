"""Remote folders as sources: an object-store prefix (s3://bucket/photos/) or an HTTP index page.

A URL ending in "/" names a folder. It is walked like a local folder: depth
first, names sorted, hidden entries skipped, album = the sub-folder path
relative to the URL. Only names with an image extension are listed (sniffing
the content of every remote object would cost a request each). Size and
modification time come from the listing, so re-runs skip unchanged objects
without reading them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from eat_curate.io.formats import has_image_extension
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.remote import _mtime, filesystem


def is_folder_url(url: str) -> bool:
    return url.endswith("/")


def walk_remote_folder(url: str) -> Iterator[SourceItem]:
    """One item per image object under ``url``, streamed folder by folder."""
    fs, root = filesystem(url)
    yield from _walk(fs, root.rstrip("/"), "")


def _walk(fs, folder: str, relative: str) -> Iterator[SourceItem]:
    entries = sorted(fs.ls(folder, detail=True), key=lambda info: info["name"])
    for info in entries:
        path = info["name"].rstrip("/")
        name = posixpath.basename(path)
        if not name or name.startswith(".") or path == folder:
            continue
        if info.get("type") == "directory":
            yield from _walk(fs, path, f"{relative}/{name}" if relative else name)
        elif has_image_extension(name):
            key = path if "://" in path else fs.unstrip_protocol(path)
            size = info.get("size")
            yield SourceItem(
                key=key,
                image_id=image_id_for(key),
                album=relative or None,
                size=int(size) if isinstance(size, (int, float)) else None,
                mtime=_mtime(info),
            )
