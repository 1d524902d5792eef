"""Export a selection of images into a folder: copies, hard links or symbolic links.

Stored paths and album names are untrusted (a manifest can say anything), so:

- album names and file names become one safe path component each: no
  separators, no '.'/'..', no control or reserved characters, no Windows
  device names, at most 255 bytes, rank prefix and ``-2`` numbering included;
- names that differ only in case get numbers too, as on a case-insensitive
  file system (FAT and exFAT cards, macOS, Windows) they are one file;
- every destination is resolved (symlinks included) and must lie inside the
  export folder, or the image is skipped (so is one behind a symlink loop);
- nothing is ever overwritten: a destination that exists is skipped with the
  reason "exists", and files are created with O_EXCL, so even a file that
  appears meanwhile is not replaced;
- every image gets an outcome (done, or skipped and why); one image's failure
  (missing source, hard link across devices, no permission) skips that image.

A re-run of the same export skips what is already there, so it is safe to
repeat after an interruption.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from eat_curate.errors import EatCurateError
from eat_curate.io.whole_files import MAX_NAME_BYTES

MODES = ("copy", "hardlink", "symlink")
LAYOUTS = ("flat", "album", "album/rank")
NO_ALBUM = "no-album"  # folder of images without an album
_DONE = {"copy": "copied", "hardlink": "hardlinked", "symlink": "symlinked"}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_SUFFIX_BYTES = 16  # an extension this short is kept whole when a name is cut


class ExportError(EatCurateError):
    """The export as a whole cannot run (e.g. the target is a file)."""


@dataclass(frozen=True)
class ExportItem:
    """One image to export: where it is, its album, and its rank in the album (for album/rank)."""

    source: str
    album: str | None = None
    rank: int | None = None


@dataclass(frozen=True)
class ExportOutcome:
    source: str
    destination: str | None
    action: str  # copied, hardlinked, symlinked (or "would ..." in a dry run), or skipped
    reason: str | None = None  # why it was skipped

    @property
    def skipped(self) -> bool:
        return self.action == "skipped"


@dataclass
class ExportReport:
    target: str
    mode: str
    layout: str
    dry_run: bool
    outcomes: list[ExportOutcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(outcome.action for outcome in self.outcomes))

    @property
    def nothing_exported(self) -> bool:
        """Images were chosen and not one is in the export folder: each skipped, and not because it is already there.

        A re-run that finds everything exported already is a success; a dry
        run counts what it would do.
        """
        return bool(self.outcomes) and all(
            outcome.skipped and _reason_kind(outcome.reason) != "exists" for outcome in self.outcomes
        )

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(_reason_kind(o.reason) for o in self.outcomes if o.skipped))

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "mode": self.mode,
            "layout": self.layout,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "skipped_by_reason": self.skipped_by_reason,
            "outcomes": [asdict(outcome) for outcome in self.outcomes],
        }


def _reason_kind(reason: str | None) -> str:
    """The stable head of a reason ("missing: /a/b.jpg" -> "missing")."""
    return (reason or "").split(":", 1)[0]


# --- names ------------------------------------------------------------------------------------


def _fit_bytes(name: str, limit: int) -> str:
    encoded = name.encode("utf-8")
    if len(encoded) <= limit:
        return name
    return encoded[:limit].decode("utf-8", errors="ignore")


def safe_component(name: str | None, fallback: str) -> str:
    """``name`` as one harmless path component (see module doc); ``fallback`` if nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = _UNSAFE.sub("_", text).strip(" .")
    if not text:
        return fallback
    if text.partition(".")[0].upper() in _WINDOWS_DEVICES:
        text = "_" + text
    return _fit_name(text) or fallback


def _fit_name(text: str) -> str:
    """``text`` cut to the longest name a file system takes, keeping a short extension whole."""
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, dot, suffix = text.rpartition(".")
    if dot and 0 < len(suffix.encode("utf-8")) <= _MAX_SUFFIX_BYTES:
        return _fit_bytes(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8")) - 1).rstrip(" .") + "." + suffix
    return _fit_bytes(text, MAX_NAME_BYTES).rstrip(" .")


def _file_name(source: str) -> str:
    return safe_component(source.replace("\\", "/").rsplit("/", 1)[-1], "image")


def _numbered(name: str, number: int) -> str:
    """``name`` with ``-number`` before its extension, the stem cut so that the whole still fits one name."""
    stem, dot, suffix = name.rpartition(".")
    stem, tail = (stem, f"-{number}.{suffix}") if dot and stem else (name, f"-{number}")
    if len(tail.encode("utf-8")) >= MAX_NAME_BYTES:  # an extension too long to keep: the number goes last
        stem, tail = name, f"-{number}"
    # Cutting the number off would give the name it must differ from: the stem gives way, never the tail.
    return _fit_bytes(stem, MAX_NAME_BYTES - len(tail.encode("utf-8"))) + tail


def relative_destination(item: ExportItem, layout: str) -> Path:
    """Where ``item`` goes inside the export folder, before de-duplication of names."""
    name = _file_name(item.source)
    if layout == "flat":
        return Path(name)
    album = safe_component(item.album, NO_ALBUM)
    if layout == "album":
        return Path(album, name)
    if item.rank is None:
        raise ExportError(f"layout album/rank needs each image's rank; {item.source} has none (use --layout album)")
    return Path(album, _fit_name(f"{item.rank:04d}_{name}"))  # the prefix can push a long name past the limit


# --- sources ----------------------------------------------------------------------------------


def _local_source(source: str) -> tuple[Path | None, str | None]:
    """The source as an existing regular file, or None and why not."""
    if "://" in source:
        return None, f"not a local file: {source}"
    path = Path(source)
    if not path.is_absolute():
        return None, f"not an absolute path: {source}"
    if not path.exists():
        if "#" in path.name and path.name.split("#", 1)[0].endswith((".parquet", ".pq")):
            return None, f"embedded in a manifest, no file to export: {source}"
        return None, f"missing: {source}"
    if not path.is_file():
        return None, f"not a file: {source}"
    return path, None


# --- placing ----------------------------------------------------------------------------------


def _copy_new(source: Path, destination: Path) -> None:
    """Copy into a file that must not exist yet (O_EXCL; never follows a symlink there)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(destination, flags, 0o644)
    try:
        with open(source, "rb") as reader, os.fdopen(descriptor, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    try:
        shutil.copystat(source, destination)
    except OSError:
        pass  # the bytes are all there; FAT and exFAT (camera cards) refuse some modes with EPERM: keep the copy


def _place(source: Path, destination: Path, mode: str) -> None:
    if mode == "copy":
        _copy_new(source, destination)
    elif mode == "hardlink":
        os.link(source, destination, follow_symlinks=True)
    else:
        os.symlink(source.resolve(), destination)


def _os_reason(error: OSError, mode: str) -> str:
    if isinstance(error, FileExistsError):
        return "exists"
    if mode == "hardlink" and error.errno == errno.EXDEV:
        return "cross-device: a hard link cannot span file systems; use --mode copy or symlink"
    if mode == "hardlink" and error.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
        return f"hard link refused: {error.strerror}; use --mode copy"
    return f"cannot write: {error.strerror or error}"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolved(path: Path) -> Path | None:
    """``path`` with every symlink resolved; None behind a symlink loop (where pathlib raises RuntimeError)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _prepare_target(target: Path, dry_run: bool) -> Path:
    if target.exists() and not target.is_dir():
        raise ExportError(f"--to {target} exists and is not a folder")
    if not dry_run:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"--to {target}: cannot create the folder: {error.strerror}") from None
    return target.resolve()


def export_images(
    items: Iterable[ExportItem],
    target: Path,
    mode: str = "copy",
    layout: str = "album",
    dry_run: bool = False,
    progress: bool = False,
) -> ExportReport:
    """Export ``items`` into ``target`` (created); see the module doc for what is guaranteed."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    items = list(items)
    if layout == "album/rank":
        unranked = [item.source for item in items if item.rank is None]
        if unranked:
            raise ExportError(
                f"layout album/rank needs each image's rank; {len(unranked)} have none "
                f"(e.g. {unranked[0]}): use --layout album"
            )
    root = _prepare_target(Path(target), dry_run)
    report = ExportReport(target=str(root), mode=mode, layout=layout, dry_run=dry_run)
    names = PlannedNames()
    for item in tqdm(items, desc="exporting", unit="img", disable=not progress):
        report.outcomes.append(_export_one(item, root, mode, layout, dry_run, names))
    return report


class PlannedNames:
    """The destinations planned so far in one export, each the first of name, name-2, name-3, ... still free.

    ``IMG_1.jpg`` and ``img_1.JPG`` are one file on FAT, exFAT, macOS and Windows: the second would be
    refused there as existing, so it is numbered everywhere (an export names its files alike on every disk).
    """

    def __init__(self) -> None:
        self.taken: set[str] = set()  # casefolded
        # Per wanted name, the number it last got: every smaller one was taken then, and stays taken, so
        # the search resumes there. 5,000 files named IMG_0001.JPG cost 5,000 steps, not 12.5 million.
        self._last: dict[Path, int] = {}
        self.tried = 0  # candidates looked at, for tests

    def unique(self, relative: Path) -> Path:
        """The first of ``relative``, its name -2, -3, ... not yet planned, whatever the case of its letters."""
        number = self._last.get(relative, 1)
        candidate = relative if number == 1 else relative.with_name(_numbered(relative.name, number))
        self.tried += 1
        while str(candidate).casefold() in self.taken:
            number += 1
            candidate = relative.with_name(_numbered(relative.name, number))
            self.tried += 1
        self.taken.add(str(candidate).casefold())
        self._last[relative] = number
        return candidate


def _export_one(
    item: ExportItem, root: Path, mode: str, layout: str, dry_run: bool, names: PlannedNames
) -> ExportOutcome:
    relative = names.unique(relative_destination(item, layout))
    destination = root / relative
    shown = str(destination)

    def skipped(reason: str) -> ExportOutcome:
        return ExportOutcome(item.source, shown, "skipped", reason)

    source, problem = _local_source(item.source)
    if source is None:
        return skipped(problem)
    if os.path.lexists(destination):  # a file, folder or link, wherever a link points: never replaced
        return skipped("exists")
    resolved = _resolved(destination)
    if resolved is None:
        return skipped(f"symlink loop: {destination} cannot be resolved")
    if not _inside(resolved, root):  # e.g. an album folder that is a symlink out of the target
        return skipped(f"outside the export folder: {destination} resolves to {resolved}")
    action = _DONE[mode]
    if dry_run:
        return ExportOutcome(item.source, shown, f"would be {action}")
    created = [folder for folder in (destination.parent, *destination.parent.parents) if not folder.exists()]
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        parent = _resolved(destination.parent)
        if parent is None or not _inside(parent, root):
            return skipped(f"outside the export folder: {destination.parent} resolves elsewhere")
        _place(source, destination, mode)
    except OSError as error:
        _remove_empty(created)  # a failed export leaves no empty album folders behind
        return skipped(_os_reason(error, mode))
    return ExportOutcome(item.source, shown, action)


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another image landed there) or already gone: leave it and its parents


def items_from_images(images: Sequence) -> list[ExportItem]:
    """ExportItems from read-side rows (``RankedImage`` and kin): every file of each shot (RAW + JPEG), together.

    A shot's other files go beside its lead, with its album and rank, so ``album/rank`` names them alike.
    """
    return [ExportItem(source=path, album=image.album, rank=image.rank) for image in images for path in image.files]
