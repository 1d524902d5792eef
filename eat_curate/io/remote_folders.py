"""Remote folders as sources: an object-store prefix (s3://bucket/photos/) or an HTTP index page.

A URL ending in "/" names a folder. It is walked like a local folder: depth
first, names sorted, hidden entries skipped, albums by the same rule
(``io.folders.folder_album``: the holding folder's name, or with
``"relative"`` its path under the URL). Only names with an image extension are listed (sniffing
the content of every remote object would cost a request each). Size and
modification time come from the listing, so re-runs skip unchanged objects
without reading them.

``--exclude`` patterns leave out names and paths as in a local walk
(:mod:`eat_curate.io.exclusions`).

The top of the folder is listed when the walk is set up, so a host that
cannot be reached fails the run before it starts, in one line; a sub-folder
that cannot be listed later becomes one error row, as a local one does.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit
from collections.abc import Iterator

from fsspec.spec import AbstractFileSystem

from eat_curate.io import remote_retry
from eat_curate.io.exclusions import NOTHING_EXCLUDED, Exclusions
from eat_curate.io.folders import PARENT, depth_first, fitting_album, folder_album
from eat_curate.io.formats import has_image_extension
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.remote import RemoteError, as_sent, filesystem, info_mtime
from eat_curate.io.remote_read import deadline, describe_failure, host_of, is_unreachable
from eat_curate.io.remote_retry import GaveUp, with_retries


def is_folder_url(url: str) -> bool:
    return url.endswith("/")


def open_remote_folder(
    url: str, album_rule: str = PARENT, exclusions: Exclusions = NOTHING_EXCLUDED
) -> Iterator[SourceItem]:
    """List the top of ``url`` now (RemoteError when it cannot be listed); stream the rest as consumed."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    try:
        entries = _listing(fs, root)
    except Exception as error:  # network stacks raise many types
        cause = error.error if isinstance(error, GaveUp) else error
        reason = describe_failure(cause, remote_retry.DEFAULT_RETRY.timeout_s)
        if is_unreachable(cause):
            raise RemoteError(f"cannot reach {host_of(url)}: {reason}") from None
        raise RemoteError(f"cannot list the folder: {reason}") from None
    return depth_first(_walk(fs, root, "", entries, album_rule, exclusions))


def _listing(fs: AbstractFileSystem, folder: str) -> list[dict]:
    policy = remote_retry.DEFAULT_RETRY
    # bounded: fsspec would wait for ever on a server that stalls it (a 1xx answer and nothing after)
    sent = as_sent(folder)  # a server's link may hold a raw space; the file system sends URLs as they are
    entries = with_retries(lambda: fs.ls(sent, detail=True, **deadline(fs, policy.timeout_s)), policy)
    return sorted(entries, key=lambda info: info["name"])


def _walk(
    fs: AbstractFileSystem, folder: str, relative: str, entries: list[dict], album_rule: str, exclusions: Exclusions
) -> Iterator[SourceItem | Iterator]:
    album, album_problem = fitting_album(folder_album(_path_part(folder), relative, album_rule))
    for info in entries:
        path = info["name"].rstrip("/")
        name = posixpath.basename(path)
        if not name or name.startswith(".") or path == folder:
            continue
        below = f"{relative}/{name}" if relative else name
        if info.get("type") == "directory":
            if not exclusions.excludes(below, is_folder=True):
                yield _walk_sub_folder(fs, path, below, album_rule, exclusions)  # walked in place by depth_first
        elif has_image_extension(name) and not exclusions.excludes(below, is_folder=False):
            key = _url(fs, path)
            size = info.get("size")
            yield SourceItem(
                key=key,
                image_id=image_id_for(key),
                album=album,
                size=int(size) if isinstance(size, (int, float)) else None,
                mtime=info_mtime(info),
                problem=album_problem,
            )


def _walk_sub_folder(
    fs: AbstractFileSystem, folder: str, relative: str, album_rule: str, exclusions: Exclusions
) -> Iterator[SourceItem | Iterator]:
    try:
        entries = _listing(fs, folder)
    except Exception as error:  # one error row for the sub-folder: its images would otherwise vanish unseen
        cause = error.error if isinstance(error, GaveUp) else error
        key = _url(fs, folder) + "/"
        reason = f"folder could not be listed: {describe_failure(cause, remote_retry.DEFAULT_RETRY.timeout_s)}"
        album, _ = fitting_album(folder_album(_path_part(folder), relative, album_rule))
        yield SourceItem(key=key, image_id=image_id_for(key), album=album, problem=reason)
        return
    yield from _walk(fs, folder, relative, entries, album_rule, exclusions)


def _url(fs: AbstractFileSystem, path: str) -> str:
    return path if "://" in path else fs.unstrip_protocol(path)


def _path_part(folder: str) -> str:
    """The folder's path without scheme and host: an HTTP server's top folder has no name, like a URL's."""
    return urlsplit(folder).path if "://" in folder else folder
