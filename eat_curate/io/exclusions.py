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
named as a source is scored as given. A run says how many folders and image
files its patterns left out, and names a pattern that matched nothing.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    """The ``--exclude`` patterns of one run; empty leaves everything in.

    ``left_out`` counts, as the walks go, the image files and the folders each
    pattern left out (keyed by the pattern as given, and "file" or
    "folder"), so a run can say what its patterns did and name one that
    matched nothing: most likely a typo.
    """

    patterns: tuple[Pattern, ...] = ()
    given: tuple[str, ...] = ()  # as the user wrote them, for the run record
    left_out: Counter = field(default_factory=Counter, compare=False, repr=False)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Exclusions:
        given = tuple(texts)
        return cls(patterns=tuple(Pattern.parse(text) for text in given), given=given)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excludes(self, relative: str, is_folder: bool) -> bool:
        """Whether the entry at ``relative`` (its path under the walked folder, "/" between names) is left out."""
        for pattern, text in zip(self.patterns, self.given):
            if pattern.matches(relative, is_folder):
                self.left_out[text, "folder" if is_folder else "file"] += 1
                return True
        return False

    def summary(self, walks_finished: bool) -> dict:
        """What the patterns left out and, once every walk has finished, those that matched nothing
        (``None`` before: a walk cut short by ``--limit`` or Ctrl-C proves nothing about the rest)."""
        folders = sum(count for (_, kind), count in self.left_out.items() if kind == "folder")
        files = sum(count for (_, kind), count in self.left_out.items() if kind == "file")
        unmatched = [text for text in self.given if not (self.left_out[text, "folder"] or self.left_out[text, "file"])]
        return {"patterns": list(self.given), "folders": folders, "image_files": files,
                "matched_nothing": unmatched if walks_finished else None}

    def report(self, walks_finished: bool) -> list[str]:
        """:meth:`summary` as lines for the user; none without patterns."""
        if not self.patterns:
            return []
        summary = self.summary(walks_finished)
        lines = [f"--exclude left out {_count(summary['folders'], 'folder')} (not entered) and "
                 f"{_count(summary['image_files'], 'image file')}"]
        lines += [f"--exclude {text!r} matched nothing in the folders walked: a typo?"
                  for text in summary["matched_nothing"] or []]
        return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


NOTHING_EXCLUDED = Exclusions()
