"""Star ratings people gave their photos, read back from XMP: the labels of `eat-curate ratings`.

A photographer's stars live where their photo manager wrote them. For each
image the first of these places that holds an ``xmp:Rating`` decides:

1. the full-name sidecar ``IMG_1.CR2.xmp`` (darktable, digiKam);
2. the stem sidecar ``IMG_1.xmp`` (Lightroom, Bridge; it serves every file
   of that stem, so a RAW and its JPEG read the same rating);
3. XMP inside the image (JPEG and WebP APP segments, PNG's iTXt, TIFF's
   tag 700, HEIF with the ``heif`` extra), where Lightroom writes it for
   JPEGs.

Sidecar names match whatever their case (``IMG_1.XMP``). Each folder is
listed once, however many images it holds.

What a rating says (:class:`FoundRating`): 1-5 stars is ``rated``; -1 is a
``reject``; 0 or no rating anywhere is ``unrated``. A rating that
eat-curate's own ``xmp`` command wrote and nobody has changed since
(``eatcurate:Rating`` equal to ``xmp:Rating``) is ``ours``: it is the
model's opinion, and training on it would teach the model itself. A place
that cannot be read as XMP (not XML, a DOCTYPE, a rating such as "7" or an
``rdf:Seq`` where a number belongs) is ``unreadable``, with the reason; the
next place is not consulted, since the broken one may hold the real rating.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from PIL import Image

from eat_curate.io import bounded_read
from eat_curate.io.decode import heif_opener_registered
from eat_curate.io.formats import raw_format_of_name
from eat_curate.io.items import SourceItem
from eat_curate.library.sidecars import MAX_SIDECAR_BYTES, NAMESPACE, set_by_hand, stars_in
from eat_curate.library.xmp import XMP, XmpError, XmpPacket
from eat_curate.sinks.shots import shot_key

RATING_STATUSES = ("rated", "reject", "unrated", "ours", "unreadable")
EMBEDDED = "embedded"  # FoundRating.source of a rating read from inside the image
_FOLDERS_REMEMBERED = 256  # folder listings kept while a walk goes on


@dataclass(frozen=True)
class FoundRating:
    path: str
    status: str  # one of RATING_STATUSES
    stars: int | None = None  # 1..5 when rated, -1 for a reject
    source: str = ""  # the sidecar's path, EMBEDDED, or "" when no rating was found
    reason: str = ""  # why a place is unreadable


class _Unreadable(Exception):
    pass


class _FolderNames:
    """File names of recently seen folders, by lower case: a sidecar is found without a stat per guess."""

    def __init__(self) -> None:
        self._names: dict[str, dict[str, str]] = {}

    def find(self, folder: str, name: str) -> str | None:
        if folder not in self._names:
            if len(self._names) >= _FOLDERS_REMEMBERED:
                self._names.clear()
            try:
                self._names[folder] = {entry.lower(): entry for entry in os.listdir(folder)}
            except OSError:
                self._names[folder] = {}
        found = self._names[folder].get(name.lower())
        return os.path.join(folder, found) if found else None


def read_ratings(items: Iterable[SourceItem]) -> Iterator[FoundRating]:
    """The rating of each local image in ``items``, in their order.

    An item the listing could not give a usable path (a folder that cannot be
    listed, a name that is not UTF-8) is ``unreadable`` with the listing's reason.
    """
    folders = _FolderNames()
    for item in items:
        if item.problem is not None:
            yield FoundRating(item.key, "unreadable", source=item.key, reason=item.problem)
        elif item.data is not None:
            yield FoundRating(item.key, "unreadable", source=item.key, reason="an image in a manifest has no sidecar")
        else:
            yield rating_of(item.key, folders)


def one_per_shot(found: Iterable[FoundRating]) -> tuple[list[FoundRating], int]:
    """The ratings with one file per shot (a RAW and its JPEG are one photo), and how many files were dropped.

    A shot listed twice in a label table could land in training and in
    validation at once, which flatters the validation figures. The kept file
    is the first that is not a RAW (it decodes without the ``raw`` extra),
    else the shot's first file; its place in the order is the shot's first.
    """
    shots: dict[str, list[FoundRating]] = {}  # in the order their first file came
    for rating in found:
        shots.setdefault(shot_key(rating.path) or rating.path, []).append(rating)
    kept = [next((rating for rating in files if raw_format_of_name(rating.path) is None), files[0])
            for files in shots.values()]
    return kept, sum(len(files) for files in shots.values()) - len(kept)


def rating_of(path: str, folders: _FolderNames | None = None) -> FoundRating:
    """Where ``path``'s rating is and what it says (see the module doc for the order of places)."""
    folders = folders or _FolderNames()
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    sidecars = [folders.find(folder, f"{name}.xmp")]
    if stem != name:
        sidecars.append(folders.find(folder, f"{stem}.xmp"))
    for sidecar in filter(None, dict.fromkeys(sidecars)):
        try:
            found = _rating_in(_read_sidecar(sidecar), path, sidecar)
        except _Unreadable as problem:
            return FoundRating(path, "unreadable", source=sidecar, reason=str(problem))
        if found is not None:
            return found
    try:
        embedded = _embedded_xmp(path)
        found = _rating_in(embedded, path, EMBEDDED) if embedded is not None else None
    except _Unreadable as problem:
        return FoundRating(path, "unreadable", source=EMBEDDED, reason=str(problem))
    return found or FoundRating(path, "unrated")


def _read_sidecar(sidecar: str) -> bytes:
    try:
        return bounded_read.read_file(sidecar, MAX_SIDECAR_BYTES)  # a FIFO or a device is refused, never opened
    except bounded_read.ReadRefused as refused:
        raise _Unreadable(refused.reason) from None


def _rating_in(data: bytes, path: str, source: str) -> FoundRating | None:
    """The rating ``data`` (an XMP packet) gives ``path``; None when it holds no xmp:Rating."""
    try:
        packet = XmpPacket(data)
    except XmpError as error:
        raise _Unreadable(str(error)) from None
    text = packet.get(XMP, "Rating")
    if text is None:
        if packet.present(XMP, "Rating"):  # an rdf:Seq or other structure: a place that holds a rating, unread
            raise _Unreadable("xmp:Rating is a structure, not a simple value")
        return None
    stars = stars_in(text)
    if stars is None:
        raise _Unreadable(f"xmp:Rating {text!r} is not a whole number from -1 to 5")
    if stars == 0:
        return FoundRating(path, "unrated", source=source)
    if not set_by_hand(text, packet.get(NAMESPACE, "Rating")):  # the rule by which `xmp` keeps a person's
        return FoundRating(path, "ours", stars, source)
    return FoundRating(path, "rated" if stars > 0 else "reject", stars, source)


def _embedded_xmp(path: str) -> bytes | None:
    """The XMP packet inside an image file, if its format keeps one where Pillow finds it."""
    if path.lower().endswith((".heic", ".heif")):
        heif_opener_registered()  # with the heif extra; without it the file is simply not opened below
    try:
        with warnings.catch_warnings(), bounded_read.open_regular(path) as handle:
            warnings.simplefilter("ignore")  # a huge image's bomb warning: only its header is read here
            with Image.open(handle) as image:
                packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
                if packet is None and hasattr(image, "tag_v2"):
                    packet = image.tag_v2.get(700)  # TIFF's XMP tag
    except Exception:  # not a regular file, or not an image Pillow opens (a RAW, a broken file): no rating inside
        return None
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet if isinstance(packet, bytes) and packet.strip() else None
