"""Ratings written into XMP sidecars beside the images, where photo managers read them.

What each sidecar gets (``SidecarValues``):

- ``xmp:Rating``: -1 (reject) or 0..5 stars (``ratings.star_ratings``); a
  ``MicrosoftPhoto:Rating`` already in the file is kept in step (digiKam writes
  both; its percent scale is 0, 1, 25, 50, 75, 99). A rating someone set by
  hand is kept (unless ``overwrite_hand_rating``): one that is not 0 and not
  the one eat-curate wrote last time (``eatcurate:Rating``). Its sidecar's
  label is then left alone too: the person's curation stays whole;
- ``xmp:Label``: a colour label, when asked for. A label is removed only
  when it is the one eat-curate wrote last time (``eatcurate:Label``), so a
  label someone chose by hand stays;
- in our own namespace ``NAMESPACE`` (prefix ``eatcurate``): ``Score`` (the
  mean, 1..10), ``Std``, ``Model`` (name@hash), ``Rating`` and ``Label`` as
  written. The ``.invalid`` domain can never resolve: the URI only names.

Which files: every file of each chosen shot, so a RAW and its JPEG (one
shot, rated once) both carry the shot's rating.

Where (``sidecar_path``): ``IMG.CR2.xmp`` (``full``: darktable, digiKam) or
``IMG.xmp`` (``stem``: Adobe Lightroom and Bridge). The stored path is
untrusted: the sidecar is always the image's own folder (resolved) joined
with one file name, the image must be a regular file there, and a sidecar
that is a symbolic link or not a regular file is left alone. All file
operations go through a handle on that folder, so a folder swapped for a
link midway cannot redirect them.

How: an existing sidecar is merged (``xmp.XmpPacket``: everything else in
it is kept); one that cannot be parsed is left untouched and reported as
``unreadable``. A new or changed sidecar is written to a temporary file in
the same folder, flushed to disk, then renamed over the old one, so a
reader never sees half a file. Unchanged sidecars are not rewritten, so a
second run changes nothing.
"""

from __future__ import annotations

import errno
import math
import os
import secrets
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from eat_curate.io.whole_files import MAX_NAME_BYTES
from eat_curate.library.queries import SelectedImage
from eat_curate.library.ratings import REJECTED
from eat_curate.library.xmp import MICROSOFT_PHOTO, XMP, XmpError, XmpPacket

NAMESPACE = "https://eat-curate.invalid/ns/1.0/"
PREFIX = "eatcurate"
SIDECAR_NAMES = ("full", "stem")
MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # darktable's biggest histories are a few hundred kB
_MICROSOFT_PERCENT = {0: "0", 1: "1", 2: "25", 3: "50", 4: "75", 5: "99", REJECTED: "0"}
# Outcomes after which the sidecar still does not say what it should: the run exits non-zero.
PROBLEMS = ("unreadable", "failed")


@dataclass(frozen=True)
class SidecarValues:
    """What one image's sidecar should say."""

    rating: int  # -1 (reject) .. 5
    score: float
    std: float
    model_id: str
    label: str | None = None  # a colour name; None: no label from us
    set_label: bool = False  # whether this run manages labels at all (--labels given)
    overwrite_hand_rating: bool = False  # replace a rating set by hand (--overwrite-ratings)


@dataclass(frozen=True)
class SidecarOutcome:
    image: str  # the stored path
    sidecar: str | None
    action: str  # created, updated, unchanged (or "would create", "would update"), skipped, unreadable, failed
    reason: str | None = None  # why skipped, unreadable or failed
    rating: int | None = None  # the xmp:Rating the sidecar holds after
    previous_rating: str | None = None  # xmp:Rating before (None: no sidecar or no rating)
    kept_by_hand: bool = False  # the rating was set by hand and stays: ``rating`` is not the model's
    label: str | None = None
    previous_label: str | None = None


@dataclass
class SidecarReport:
    naming: str
    dry_run: bool
    outcomes: list[SidecarOutcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(outcome.action for outcome in self.outcomes))

    @property
    def problems(self) -> list[SidecarOutcome]:
        return [outcome for outcome in self.outcomes if outcome.action in PROBLEMS]

    @property
    def kept_by_hand(self) -> int:
        """Sidecars whose rating someone set by hand, kept."""
        return sum(outcome.kept_by_hand for outcome in self.outcomes)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter((o.reason or "").split(":", 1)[0] for o in self.outcomes if o.action == "skipped"))

    def to_dict(self) -> dict:
        return {
            "naming": self.naming,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "skipped_by_reason": self.skipped_by_reason,
            "kept_by_hand": self.kept_by_hand,
            "problems": len(self.problems),
            "outcomes": [asdict(outcome) for outcome in self.outcomes],
        }


class UnsafePath(ValueError):
    """The stored path names no file a sidecar could sit beside."""


def sidecar_path(image_path: str, naming: str = "full") -> tuple[Path, str, str]:
    """(resolved folder, image file name, sidecar file name) for ``image_path``; raises UnsafePath."""
    if naming not in SIDECAR_NAMES:
        raise ValueError(f"naming must be one of {SIDECAR_NAMES}, not {naming!r}")
    if "://" in image_path or image_path.startswith("<") or "\x00" in image_path:
        raise UnsafePath("not a local file")
    path = Path(image_path)
    name = path.name
    if name in ("", ".", "..") or name != os.path.basename(image_path):
        raise UnsafePath("no file name")
    try:
        folder = path.parent.resolve(strict=True)
    except (OSError, RuntimeError):
        raise UnsafePath("missing: the image's folder does not exist") from None
    sidecar = f"{name}.xmp" if naming == "full" else f"{Path(name).stem}.xmp"
    if sidecar == name:
        raise UnsafePath("the image is itself named like its sidecar")
    return folder, name, sidecar


class _Folder:
    """File operations relative to one opened folder (``dir_fd``) where the platform allows it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        if os.open in os.supports_dir_fd and os.replace in os.supports_dir_fd:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def _where(self, name: str) -> tuple[str, dict]:
        return (name, {"dir_fd": self.fd}) if self.fd is not None else (str(self.path / name), {})

    def lstat(self, name: str) -> os.stat_result | None:
        where, options = self._where(name)
        try:
            return os.stat(where, follow_symlinks=False, **options)
        except FileNotFoundError:
            return None

    def stat(self, name: str) -> os.stat_result | None:
        where, options = self._where(name)
        try:
            return os.stat(where, **options)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read(self, name: str) -> bytes:
        where, options = self._where(name)
        descriptor = os.open(where, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), **options)
        with os.fdopen(descriptor, "rb") as file:
            return file.read(MAX_SIDECAR_BYTES + 1)

    def replace_atomically(self, name: str, data: bytes, mode: int | None) -> None:
        """Write ``data`` to a temporary sibling, flush it to disk, rename it over ``name``."""
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        if len(os.fsencode(temporary)) > MAX_NAME_BYTES:  # a sidecar name near the limit: a short one will do
            temporary = f".eat-curate-{secrets.token_hex(4)}.tmp"
        where, options = self._where(temporary)
        descriptor = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600, **options)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                if mode is not None and hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), mode)  # the old sidecar's permissions; new ones follow the umask
                os.fsync(file.fileno())
            target, _ = self._where(name)
            if self.fd is not None:
                os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            else:
                os.replace(where, target)
        except BaseException:
            try:
                os.unlink(where, **options)
            except OSError:
                pass
            raise


def sidecar_values(
    images: Sequence[SelectedImage],
    ratings: dict[str, int],
    model_id: str,
    labels: dict[int, str] | None = None,
    overwrite_hand_ratings: bool = False,
) -> dict[str, SidecarValues]:
    """Image id -> what its sidecar should say, from its rating and (``labels``: rating -> colour) its label."""
    return {
        image.image_id: SidecarValues(
            rating=ratings[image.image_id],
            score=image.mean,
            std=image.std,
            model_id=model_id,
            label=(labels or {}).get(ratings[image.image_id]),
            set_label=labels is not None,
            overwrite_hand_rating=overwrite_hand_ratings,
        )
        for image in images
    }


@dataclass(frozen=True)
class UpdatedSidecar:
    data: bytes
    previous_rating: str | None  # xmp:Rating before
    previous_label: str | None  # xmp:Label before
    hand_stars: int | None  # the stars a person set, which stay; None when the model's were written


def stars_in(rating: str | None) -> int | None:
    """The stars an xmp:Rating holds: a whole number from -1 (reject) to 5; None when absent or anything else."""
    try:
        value = float(rating) if rating is not None else math.nan
    except ValueError:
        return None
    if not value.is_integer() or not -1 <= value <= 5:  # NaN and infinities are not whole numbers
        return None
    return int(value)


def set_by_hand(rating: str | None, ours: str | None) -> bool:
    """Whether ``rating`` (an xmp:Rating) is a person's: stars (not 0), and not what eat-curate last wrote (``ours``).

    Anything that is not a rating from -1 to 5 ("nan", "7", "2.5") is no one's choice: it is replaced.
    """
    if not stars_in(rating):
        return False
    return ours is None or rating.strip() != ours.strip()


def updated_sidecar(existing: bytes | None, values: SidecarValues) -> UpdatedSidecar:
    """The sidecar with ``values`` merged in (module doc); raises XmpError if ``existing`` is unreadable."""
    packet = XmpPacket(existing) if existing is not None else XmpPacket()
    previous_rating = packet.get(XMP, "Rating")
    previous_label = packet.get(XMP, "Label")
    kept = set_by_hand(previous_rating, packet.get(NAMESPACE, "Rating")) and not values.overwrite_hand_rating
    hand_stars = stars_in(previous_rating) if kept else None
    if hand_stars is None:
        _set_rating_and_label(packet, values, previous_label)
    packet.set(NAMESPACE, "Score", f"{values.score:.4f}")
    packet.set(NAMESPACE, "Std", f"{values.std:.4f}")
    packet.set(NAMESPACE, "Model", values.model_id)
    packet.set(NAMESPACE, "Rating", str(values.rating))  # the model's stars, even beside a person's
    return UpdatedSidecar(packet.to_bytes({NAMESPACE: PREFIX}), previous_rating, previous_label, hand_stars)


def _set_rating_and_label(packet: XmpPacket, values: SidecarValues, previous_label: str | None) -> None:
    packet.set(XMP, "Rating", str(values.rating))
    if packet.get(MICROSOFT_PHOTO, "Rating") is not None:
        packet.set(MICROSOFT_PHOTO, "Rating", _MICROSOFT_PERCENT[values.rating])
    if values.set_label:
        ours = packet.get(NAMESPACE, "Label")
        if values.label is not None:
            packet.set(XMP, "Label", values.label)
            packet.set(NAMESPACE, "Label", values.label)
        elif ours is not None:
            if previous_label == ours:  # only the label we wrote; one set by hand since then stays
                packet.remove(XMP, "Label")
            packet.remove(NAMESPACE, "Label")


def _write_one(path: str, values: SidecarValues, naming: str, dry_run: bool, claimed: dict) -> SidecarOutcome:
    try:
        folder_path, image_name, sidecar_name = sidecar_path(path, naming)
    except UnsafePath as error:
        return SidecarOutcome(path, None, "skipped", str(error))
    sidecar = str(folder_path / sidecar_name)
    facts = {"rating": values.rating, "label": values.label if values.set_label else None}
    try:
        folder = _Folder(folder_path)
    except OSError as error:
        return SidecarOutcome(path, sidecar, "skipped", f"missing: {error.strerror}", **facts)
    try:
        image = folder.stat(image_name)
        if image is None or not stat.S_ISREG(image.st_mode):
            return SidecarOutcome(path, sidecar, "skipped", "missing: no image file there", **facts)
        if sidecar in claimed:
            return SidecarOutcome(path, sidecar, "skipped", f"shared: the sidecar is {claimed[sidecar]}'s", **facts)
        claimed[sidecar] = path
        existing_stat = folder.lstat(sidecar_name)
        existing = None
        if existing_stat is not None:
            if not stat.S_ISREG(existing_stat.st_mode):
                kind = "a symbolic link" if stat.S_ISLNK(existing_stat.st_mode) else "not a regular file"
                return SidecarOutcome(path, sidecar, "unreadable", f"the sidecar is {kind}; left untouched", **facts)
            existing = folder.read(sidecar_name)
            if len(existing) > MAX_SIDECAR_BYTES:
                return SidecarOutcome(path, sidecar, "unreadable", "larger than 16 MiB; left untouched", **facts)
        try:
            updated = updated_sidecar(existing, values)
        except XmpError as error:
            return SidecarOutcome(path, sidecar, "unreadable", f"{error}; left untouched", **facts)
        data = updated.data
        before = {"previous_rating": updated.previous_rating, "previous_label": updated.previous_label}
        if updated.hand_stars is not None:
            facts = {"rating": updated.hand_stars, "label": updated.previous_label, "kept_by_hand": True}
        if data == existing:
            return SidecarOutcome(path, sidecar, "unchanged", **facts, **before)
        action = "created" if existing is None else "updated"
        if dry_run:
            return SidecarOutcome(path, sidecar, f"would {action.removesuffix('d')}", **facts, **before)
        mode = stat.S_IMODE(existing_stat.st_mode) if existing_stat is not None else None
        folder.replace_atomically(sidecar_name, data, mode)
        return SidecarOutcome(path, sidecar, action, **facts, **before)
    except OSError as error:
        return SidecarOutcome(path, sidecar, "failed", _failure(error, naming), **facts)
    finally:
        folder.close()


def _failure(error: OSError, naming: str) -> str:
    if error.errno == errno.ENAMETOOLONG and naming == "full":  # IMG.jpg.xmp passes 255 bytes; IMG.xmp does not
        return f"{error.strerror}: the sidecar's name passes 255 bytes; --sidecar-name stem names it without the extension"
    return f"{error.strerror or error}"


def write_sidecars(
    images: Sequence[SelectedImage],
    values: dict[str, SidecarValues],
    naming: str = "full",
    dry_run: bool = False,
    progress: bool = False,
) -> SidecarReport:
    """Merge ``values`` (by image id) into the sidecar of every file of each shot (module doc); one outcome per file.

    Files sharing a sidecar (``stem`` naming: ``IMG.CR2`` and ``IMG.JPG``)
    give it to the first (a shot's lead comes before its other files); the
    others are skipped and say so.
    """
    if naming not in SIDECAR_NAMES:
        raise ValueError(f"naming must be one of {SIDECAR_NAMES}, not {naming!r}")
    report = SidecarReport(naming=naming, dry_run=dry_run)
    claimed: dict[str, str] = {}
    bar: Iterable[SelectedImage] = tqdm(images, desc="sidecars", unit="file", disable=not progress)
    for image in bar:
        for path in image.files:
            report.outcomes.append(_write_one(path, values[image.image_id], naming, dry_run, claimed))
    return report
