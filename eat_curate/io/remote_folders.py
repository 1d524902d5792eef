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

An HTTP folder is listed from its index page (:mod:`eat_curate.io.remote_index`:
bounded in size and time, only links below the folder). Its sub-folders can
loop where an object store's cannot: a symlink to a folder above, on the
server, or a server that answers every path with the same page. A sub-folder
whose page lists exactly what a folder above it lists is such a loop: it
becomes one error row instead of being walked, for ever.

A server can also make up a tree without end, each folder's page a new one
(a loop whose pages differ: a page that shows its own path, a generated
site), or nest pages of a hundred thousand entries each: every folder on the
way down keeps its listing until its own walk ends. So an HTTP walk is
bounded: a sub-folder more than :data:`MAX_FOLDER_DEPTH` folders below the
walked URL, or one whose listing would bring the entries held by it and the
folders above it over :data:`MAX_PENDING_ENTRIES`, becomes one error row
instead of being walked; the walk goes on with the rest.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit
from collections.abc import Iterator

from fsspec.spec import AbstractFileSystem

from eat_curate.io import remote_retry
from eat_curate.io.exclusions import NOTHING_EXCLUDED, Exclusions
from eat_curate.io.folders import PARENT, depth_first, fitting_album, folder_album
from eat_curate.io.formats import has_image_extension
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.remote import RemoteError, as_sent, filesystem, hide_url_password, info_mtime
from eat_curate.io.remote_index import list_index
from eat_curate.io.remote_read import deadline, describe_failure, host_of, is_fsspec_http, is_unreachable
from eat_curate.io.remote_retry import GaveUp, with_retries

# How many folders below the walked URL an HTTP folder is walked. A photo tree is a few folders deep
# (2023/07/iceland), rarely a dozen; deeper than 64 is a loop the server hides (each page a new one, so the
# loop check cannot see it). Each level costs a request and a listing held until its walk ends.
MAX_FOLDER_DEPTH = 64
# How many entries the listings of an HTTP walk's folders on the way down (the sub-folder being entered, and
# each folder above it) may hold at once: each keeps its listing until its walk ends. An entry takes some
# 300 bytes (a dict and its URL), so 1,000,000 is some 300 MiB: eight times the largest real folder (some
# 130,000 photos, see remote_index.MAX_INDEX_PAGE_BYTES) with room for the folders above it. While a page is
# read and listed, before it is counted, it holds its own (at most MAX_INDEX_PAGE_BYTES) on top of that.
MAX_PENDING_ENTRIES = 1_000_000


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
    # None where folders cannot loop (an object store's prefixes), so that a folder that happens to list what
    # one above it lists is walked there, and an object store's tree, which no server makes up, is walked whole.
    above = _Above(hide_url_password(_url(fs, root)), {_listed_names(root, entries): root}, 0,
                   len(entries)) if is_fsspec_http(fs) else None
    return depth_first(_walk(fs, root, "", entries, album_rule, exclusions, above))


@dataclass(frozen=True)
class _Above:
    """An HTTP folder being walked, and the folders above it, for its sub-folders' checks."""

    root: str  # the walked folder's URL, as shown (without a password)
    listings: dict[str, str]  # what each of them lists (:func:`_listed_names`) -> that folder
    depth: int  # of the folder, below the walked one (0 for that one)
    pending: int  # entries their listings hold, each until its folder's walk ends


def _listing(fs: AbstractFileSystem, folder: str) -> list[dict]:
    policy = remote_retry.DEFAULT_RETRY
    if is_fsspec_http(fs):  # fsspec's ls would read the index page whole, however large it is
        entries = with_retries(lambda: list_index(fs, folder, policy.timeout_s), policy)
    else:
        # bounded: fsspec would wait for ever on a server that stalls it (a 1xx answer and nothing after)
        sent = as_sent(folder)  # a server's link may hold a raw space; the file system sends URLs as they are
        entries = with_retries(lambda: fs.ls(sent, detail=True, **deadline(fs, policy.timeout_s)), policy)
    return sorted(entries, key=lambda info: info["name"])


def _listed_names(folder: str, entries: list[dict]) -> str:
    """A digest of what ``folder`` lists, as names relative to it: a folder that loops back to one above it
    lists the same names there."""
    names = sorted(info["name"].rstrip("/")[len(folder) + 1:] + "/" * (info.get("type") == "directory")
                   for info in entries)
    return hashlib.blake2b("\n".join(names).encode(), digest_size=16).hexdigest()


def _walk(
    fs: AbstractFileSystem,
    folder: str,
    relative: str,
    entries: list[dict],
    album_rule: str,
    exclusions: Exclusions,
    above: _Above | None,
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
                # walked in place by depth_first
                yield _walk_sub_folder(fs, path, below, album_rule, exclusions, above)
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
    fs: AbstractFileSystem,
    folder: str,
    relative: str,
    album_rule: str,
    exclusions: Exclusions,
    above: _Above | None,
) -> Iterator[SourceItem | Iterator]:
    """``above``: the folder holding this one, where folders can loop (None elsewhere)."""
    if above is not None and above.depth >= MAX_FOLDER_DEPTH:  # not even listed: a request saved
        reason = (f"folder not walked: it is nested more than {MAX_FOLDER_DEPTH} folders deep below {above.root}/ "
                  "(a loop the server hides?); give a manifest of its images' URLs instead")
        yield _folder_problem(fs, folder, relative, album_rule, reason)
        return
    try:
        entries = _listing(fs, folder)
    except Exception as error:  # network stacks raise many types
        cause = error.error if isinstance(error, GaveUp) else error
        reason = describe_failure(cause, remote_retry.DEFAULT_RETRY.timeout_s)
        yield _folder_problem(fs, folder, relative, album_rule, f"folder could not be listed: {reason}")
        return
    if above is not None:
        names = _listed_names(folder, entries)
        if names in above.listings:  # walking it would find itself below itself, again and again
            looped = hide_url_password(_url(fs, above.listings[names]))
            reason = f"folder not walked: it lists what {looped}/ lists (a loop)"
            yield _folder_problem(fs, folder, relative, album_rule, reason)
            return
        pending = above.pending + len(entries)
        if pending > MAX_PENDING_ENTRIES:
            reason = (f"folder not walked: its {len(entries):,} entries, with the {above.pending:,} of the folders "
                      f"above it still being walked, are over the limit of {MAX_PENDING_ENTRIES:,} entries held at "
                      "once; give a manifest of its images' URLs instead")
            yield _folder_problem(fs, folder, relative, album_rule, reason)
            return
        above = _Above(above.root, {**above.listings, names: folder}, above.depth + 1, pending)
    yield from _walk(fs, folder, relative, entries, album_rule, exclusions, above)


def _folder_problem(fs: AbstractFileSystem, folder: str, relative: str, album_rule: str, reason: str) -> SourceItem:
    """One error row for a sub-folder that is not walked: its images would otherwise vanish unseen."""
    key = _url(fs, folder) + "/"
    album, _ = fitting_album(folder_album(_path_part(folder), relative, album_rule))
    return SourceItem(key=key, image_id=image_id_for(key), album=album, problem=reason)


def _url(fs: AbstractFileSystem, path: str) -> str:
    return path if "://" in path else fs.unstrip_protocol(path)


def _path_part(folder: str) -> str:
    """The folder's path without scheme and host: an HTTP server's top folder has no name, like a URL's."""
    return urlsplit(folder).path if "://" in folder else folder
