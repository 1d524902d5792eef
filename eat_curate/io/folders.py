"""Walking a folder of photos: which files are images, in a stable order, without loops.

- Order: depth first, each folder's entries sorted by name (files and
  sub-folders interleaved), so two walks of the same tree list the same items
  in the same order.
- Hidden files and folders (name starting with ".") are skipped; the root
  itself is walked even if hidden, since it was asked for. So is what
  ``--exclude`` names (:mod:`eat_curate.io.exclusions`); an excluded folder
  is not entered.
- Symlinks are followed. A folder whose real path was already walked (a
  symlink loop, or a second link to the same folder) is skipped.
- Images are found by extension (:data:`~eat_curate.io.formats.IMAGE_EXTENSIONS`,
  camera RAW files included) and, for files with any other extension that is
  not a known non-image (sidecars, videos), by their first bytes (an image
  format's, or a RAW maker's signature). A file named like an image is
  listed whatever it holds: a text file called ``x.jpg`` becomes an error row,
  not a silent skip. So is a broken symlink named like an image, a FIFO,
  socket or device named like one (reading refuses them without opening),
  and a file or sub-folder that cannot be read. Content is sniffed only in
  regular files, so a FIFO never blocks the walk.
- Album (``album_rule``): ``"parent"`` (the default) is the name of the
  folder holding the file, the root's own name for files directly in it, so
  an image gets the same album whichever folder above it was given;
  ``"relative"`` is the parent folder's path relative to the root, with "/"
  between folders ("trips", "2023/iceland"), None for files directly in it.
  An album over ``MAX_ALBUM_BYTES`` (a path many long folders deep) cannot
  be stored as a name: its files are error rows that say so
  (:func:`fitting_album`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from eat_curate.io.formats import (
    SNIFF_BYTES,
    has_image_extension,
    has_non_image_extension,
    sniff_format,
    sniff_raw_signature,
)
from eat_curate.io.bounded_read import ReadRefused, read_head
from eat_curate.io.exclusions import NOTHING_EXCLUDED, Exclusions
from eat_curate.io.items import (
    MAX_ALBUM_BYTES,
    NOT_UTF8_NAME,
    SourceItem,
    album_bytes,
    image_id_for,
    printable_path,
)


PARENT = "parent"
RELATIVE = "relative"
ALBUM_RULES = (PARENT, RELATIVE)


def walk_folder(
    root: str, album_rule: str = PARENT, exclusions: Exclusions = NOTHING_EXCLUDED
) -> Iterator[SourceItem]:
    """One item per image under ``root`` (an absolute path) that ``exclusions`` keep, streamed as the walk goes."""
    if album_rule not in ALBUM_RULES:
        raise ValueError(f"album_rule must be one of {ALBUM_RULES}, not {album_rule!r}")
    real_root = os.path.realpath(root)
    visited = {real_root}
    yield from depth_first(_walk(root, "", real_root, visited, album_rule, exclusions))


def depth_first(walk: Iterator) -> Iterator[SourceItem]:
    """The items of a walk whose generators yield items and, for each sub-folder, its own walk: walked in
    place, depth first, on a stack of our own. (``yield from`` would recurse: a tree 1,000 folders deep, a
    legal one, would end in RecursionError.)"""
    stack = [walk]
    while stack:
        for found in stack[-1]:
            if isinstance(found, Iterator):
                stack.append(found)
                break
            yield found
        else:
            stack.pop()


def folder_album(folder: str, relative: str, album_rule: str) -> str | None:
    """The album of the files in ``folder``, which lies at ``relative`` under the walked root."""
    if album_rule == RELATIVE:
        return printable_path(relative) or None
    return printable_path(os.path.basename(folder.rstrip("/" + os.sep))) or None


def fitting_album(album: str | None) -> tuple[str | None, str | None]:
    """``album`` and None when it is short enough to store; else no album and why its files are error rows."""
    size = album_bytes(album)
    if size <= MAX_ALBUM_BYTES:
        return album, None
    return None, (f"its album ({size:,} bytes of folder path) is longer than the {MAX_ALBUM_BYTES:,} bytes an album "
                  "may be; score it with --album-from parent, or give a folder nearer to it")


def file_item(path: str, album: str | None, album_problem: str | None = None) -> SourceItem:
    """The item for one local file (``path`` absolute); size and mtime from stat when it can be read.
    A file whose name is not UTF-8, or whose folder's album is too long (``album_problem``, from
    :func:`fitting_album`), is an error row; an odd name is shown with its odd bytes as ``\\xNN``."""
    shown = printable_path(path)
    if shown != path or album_problem:
        problem = NOT_UTF8_NAME if shown != path else album_problem
        return SourceItem(key=shown, image_id=image_id_for(shown), album=album, problem=problem)
    try:
        stat = os.stat(path)
        size, mtime = stat.st_size, stat.st_mtime
    except OSError:  # broken symlink, vanished file: reading it will say why, on its own row
        size = mtime = None
    return SourceItem(key=path, image_id=image_id_for(path), album=album, size=size, mtime=mtime)


def _walk(
    folder: str, relative: str, real_folder: str, visited: set[str], album_rule: str, exclusions: Exclusions
) -> Iterator[SourceItem | Iterator]:
    """``real_folder``: ``folder``'s real path (os.path.realpath)."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        # An error row for the folder itself: its images would otherwise vanish without a trace.
        reason = f"folder could not be listed: {error.strerror or error}"
        album, _ = fitting_album(folder_album(folder, relative, album_rule))
        shown = printable_path(folder)
        yield SourceItem(key=shown, image_id=image_id_for(shown), album=album, problem=reason)
        return
    album, album_problem = fitting_album(folder_album(folder, relative, album_rule))  # once a folder
    for entry in entries:
        if entry.name.startswith("."):
            continue
        below = f"{relative}/{entry.name}" if relative else entry.name
        if _is_dir(entry):
            real = _real_subfolder(entry, real_folder)
            if real in visited or exclusions.excludes(below, is_folder=True):
                continue
            visited.add(real)
            yield _walk(entry.path, below, real, visited, album_rule, exclusions)  # walked in place by depth_first
        elif _is_image_candidate(entry) and not exclusions.excludes(below, is_folder=False):
            yield file_item(entry.path, album, album_problem)


def _real_subfolder(entry: os.DirEntry, real_folder: str) -> str:
    """The real path of the sub-folder ``entry`` of the folder whose real path is ``real_folder``: that and its
    name, unless it is a symlink (resolved in full). os.path.realpath of every sub-folder's whole path made a
    tree N folders deep cost N^2 lstat calls (12 s for 1,200 folders)."""
    try:
        linked = entry.is_symlink()
    except OSError:
        linked = True
    return os.path.realpath(entry.path) if linked else os.path.join(real_folder, entry.name)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks
    except OSError:
        return False


def _is_image_candidate(entry: os.DirEntry) -> bool:
    if has_image_extension(entry.name):
        return True  # whatever it is (a broken link, a FIFO, a device): reading it says why, on its own row
    try:
        is_file = entry.is_file()  # follows symlinks; False for a broken link and for FIFOs, sockets, devices
    except OSError:
        return False
    if not is_file or has_non_image_extension(entry.name):
        return False
    try:
        head = read_head(entry.path, SNIFF_BYTES)  # non-blocking, regular files only: a swapped-in FIFO cannot block
    except ReadRefused:
        return False  # no longer a regular file: not an image by its content
    except OSError:
        return True  # cannot even look: list it, and reading it will report why
    return sniff_format(head) is not None or sniff_raw_signature(head) is not None
