"""What a folder walk leaves out: ``score --exclude PATTERN``.

Photo folders hold more than the photos worth scoring: a NAS's thumbnail
folders (``@eaDir``), an editor's previews and exports, screenshots. A
pattern is a shell glob (``*``, ``?``, ``[abc]``), matched without regard to
case, so ``*.png`` also leaves out ``IMG_1.PNG``:

- without a "/", it matches a file or folder **name** at any depth:
  ``@eaDir``, ``*_thumb.jpg``, ``Lightroom Previews*``;
- with a "/", it matches the **path under the folder given**, "/" between
  folders (a leading "/" is dropped): ``2023/exports``, ``*/rejects/*``;
- a trailing "/" matches folders only: ``exports/`` leaves out folders of
  that name, not a photo called "exports".

A folder that matches is not entered at all, so nothing under it is listed,
read or reported, not even a sub-folder that cannot be opened. Hidden
entries (a leading ".") are left out whatever the patterns say.
Patterns apply inside folders, local or URL; an image file or a manifest
named as a source is scored as given.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from eat_curate.errors import EatCurateError


class ExclusionError(EatCurateError):
    """A pattern that cannot match anything as written."""


@dataclass(frozen=True)
class Pattern:
    glob: str  # case-folded
    on_path: bool  # matched against the path under the walked folder, else against the name
    folders_only: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        folders_only = text.endswith("/")
        glob = text.strip("/")
        if not glob:
            raise ExclusionError(f"pattern {text!r} names nothing: give a name or a path (@eaDir, 2023/exports)")
        return cls(glob=glob.casefold(), on_path="/" in glob, folders_only=folders_only)

    def matches(self, relative: str, is_folder: bool) -> bool:
        if self.folders_only and not is_folder:
            return False
        subject = relative if self.on_path else relative.rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(subject.casefold(), self.glob)


@dataclass(frozen=True)
class Exclusions:
    """The ``--exclude`` patterns of one run; empty leaves everything in."""

    patterns: tuple[Pattern, ...] = ()
    given: tuple[str, ...] = ()  # as the user wrote them, for the run record

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Exclusions:
        given = tuple(texts)
        return cls(patterns=tuple(Pattern.parse(text) for text in given), given=given)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excludes(self, relative: str, is_folder: bool) -> bool:
        """Whether the entry at ``relative`` (its path under the walked folder, "/" between names) is left out."""
        return any(pattern.matches(relative, is_folder) for pattern in self.patterns)


NOTHING_EXCLUDED = Exclusions()
