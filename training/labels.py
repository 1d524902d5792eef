"""Label files: what each training image should score.

Three formats, all read into one :class:`LabelSet`:

- ``ava``: the AVA ``AVA.txt`` (whitespace separated: index, image id, ten
  vote counts for scores 1..10, two semantic tags, challenge id); image
  ``<id>.jpg`` in the images folder. Target: the vote distribution.
- ``tad66k``: TAD66K's CSV, one mean score per image on a 0-10 scale (a
  header row; the image column is ``image``, ``path`` or ``file``, the
  score column ``score``). Target: the score.
- ``table``: any CSV or Parquet with an image column (``path``, ``image`` or
  ``file``) and either ten vote columns ``votes_1`` .. ``votes_10``, or a
  ``score`` (1-10), or a ``rating`` (1-5 stars, a user's own picks, mapped
  linearly onto 1-10). Optional ``id`` and ``split`` (train/val/test)
  columns; other columns are ignored.

A malformed row stops the read with its line (CSV/text) or row (Parquet)
number: training on silently skipped labels would hide a broken file. So does
an image named by URL: training reads local files, and every such image would
otherwise be left out as missing.
Official splits come as id lists (``read_id_list``).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eat_curate.errors import EatCurateError
from eat_curate.io.bounded_read import not_regular_reason
from eat_curate.io.remote import protocol_of

LABEL_FORMATS = ("auto", "ava", "tad66k", "table")
TARGET_KINDS = ("votes", "score")
SPLITS = ("train", "val", "test")
VOTE_COLUMNS = tuple(f"votes_{i}" for i in range(1, 11))
IMAGE_COLUMNS = ("path", "image", "file")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
AVA_FIELDS = 15
LABEL_FILE_KINDS = "a CSV or Parquet table, or AVA's AVA.txt (see --format)"
ID_LIST_LAYOUT = "one image id per line, or a CSV whose first column holds them"


class LabelFileError(EatCurateError):
    """A label or id-list file cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class LabeledImage:
    image_id: str
    path: Path
    score: float  # the mean score on the 1-10 scale (from votes when there are votes)
    votes: tuple[int, ...] | None = None  # ten counts for scores 1..10
    split: str | None = None  # from the label file itself (a table's ``split`` column)

    def distribution(self) -> np.ndarray:
        counts = np.asarray(self.votes, dtype=np.float64)
        return counts / counts.sum()


@dataclass
class LabelSet:
    items: list[LabeledImage]
    target: str  # "votes": train on distributions (EMD); "score": on the mean score (MSE)
    format: str
    source: Path

    def __len__(self) -> int:
        return len(self.items)


def mean_of_votes(votes: Iterable[int]) -> float:
    counts = np.asarray(list(votes), dtype=np.float64)
    return float((counts * np.arange(1, 11)).sum() / counts.sum())


def rating_to_score(rating: float) -> float:
    """1-5 stars onto the 1-10 scale: 1 -> 1, 3 -> 5.5, 5 -> 10."""
    return 1.0 + (rating - 1.0) * 9.0 / 4.0


def strip_image_suffix(name: str) -> str:
    """``123.jpg`` and ``123`` name the same image in id lists."""
    lowered = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: Path) -> str:
    return "ava" if path.suffix.lower() == ".txt" else "table"


def read_labels(path: Path | str, images: Path | str | None = None, fmt: str = "auto") -> LabelSet:
    """Read a label file; image paths are resolved against ``images`` (default: the file's folder)."""
    path = Path(path)
    if fmt not in LABEL_FORMATS:
        raise LabelFileError(f"unknown label format {fmt!r}; expected one of {', '.join(LABEL_FORMATS)}")
    _refuse_unless_a_file(path, "label file", f"a label file: {LABEL_FILE_KINDS}")
    images_dir = Path(images) if images is not None else path.parent
    if not images_dir.is_dir():
        raise LabelFileError(f"images folder {images_dir} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "ava":
            items = list(_read_ava(path, images_dir))
            target = "votes"
        elif fmt == "tad66k":
            items = list(_read_tad66k(path, images_dir))
            target = "score"
        else:
            items, target = _read_table(path, images_dir)
    except UnicodeDecodeError as error:  # Excel's plain "CSV" is in the system's code page (Windows-1252, ...)
        raise _not_utf8(path, error) from None
    if not items:
        raise LabelFileError(f"{path} holds no labelled images; expected {_layout(fmt, path)}")
    _check_unique(items, path)
    return LabelSet(items=items, target=target, format=fmt, source=path)


def _refuse_unless_a_file(path: Path, what: str, expected: str) -> None:
    """Refuse, from ``stat`` alone, what is not a regular file: a folder, ``/dev/null``, a FIFO (a pipe, as
    ``<(...)`` gives, which opening would wait on), saying what is expected instead."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LabelFileError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise LabelFileError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    reason = not_regular_reason(mode)
    if reason is None:
        return
    if not reason.startswith("is "):  # "not a regular file (FIFO)"
        reason = f"is {reason}"
    raise LabelFileError(f"{what} {path} {reason}; expected {expected}")


def _layout(fmt: str, path: Path) -> str:
    """What a label file of ``fmt`` holds, for a message about one that holds nothing."""
    if fmt == "ava":
        return "a line per image: index, image id, 10 vote counts, 2 tags, challenge id"
    columns = "image and score" if fmt == "tad66k" else "path, and votes_1..votes_10, score or rating"
    if path.suffix.lower() == ".parquet":
        return f"a row per image, in columns {columns}"
    return f"a header line naming the columns ({columns}), then a line per image"


def not_utf8(error: UnicodeDecodeError) -> str:
    """Where a text file stops being UTF-8, as a message says it: ``is not UTF-8 text (byte 0xe9 at offset 14)``."""
    return f"is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})"


def _not_utf8(path: Path, error: UnicodeDecodeError) -> LabelFileError:
    return LabelFileError(f'{path} {not_utf8(error)}; save it as UTF-8 (Excel: "CSV UTF-8")')


def _check_unique(items: list[LabeledImage], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.image_id in seen:
            raise LabelFileError(f"{path}: image id {item.image_id!r} appears more than once")
        seen.add(item.image_id)


def _parse_votes(values: list[str], where: str) -> tuple[int, ...]:
    votes = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            raise LabelFileError(f"{where}: vote count {value!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or number != int(number):
            raise LabelFileError(f"{where}: vote count {value!r} is not a whole number >= 0")
        votes.append(int(number))
    if sum(votes) == 0:
        raise LabelFileError(f"{where}: all ten vote counts are zero")
    return tuple(votes)


def _parse_number(value: object, name: str, low: float, high: float, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = _decimal_comma(value)
        if number is None:
            raise LabelFileError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise LabelFileError(f"{where}: {name} {value!r} is outside {low:g}..{high:g}")
    return number


def _decimal_comma(value: object) -> float | None:
    """``7,5`` as 7.5, as a spreadsheet with a comma for the decimal mark (much of Europe) writes it; else None."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+,\d+\s*", value):
        return float(value.replace(",", "."))
    return None


def _read_ava(path: Path, images_dir: Path) -> Iterator[LabeledImage]:
    with open(path, encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{line_number}"
            if len(fields) != AVA_FIELDS:
                raise LabelFileError(
                    f"{where}: expected {AVA_FIELDS} fields (index, image id, 10 vote counts, 2 tags, "
                    f"challenge id), found {len(fields)}"
                )
            image_id = fields[1]
            votes = _parse_votes(fields[2:12], where)
            yield LabeledImage(image_id, images_dir / f"{image_id}.jpg", mean_of_votes(votes), votes)


def _csv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and (line number, row) pairs of a CSV file, as spreadsheets save them.

    A UTF-8 byte-order mark (Excel's "CSV UTF-8") is skipped. The fields are split at commas, or, when the
    header has none, at semicolons (Excel where the decimal mark is a comma) or tabs.
    """
    handle = open(path, newline="", encoding="utf-8-sig")
    header_line = handle.readline()
    handle.seek(0)
    delimiter = next((mark for mark in (",", ";", "\t") if mark in header_line), ",")
    reader = csv.DictReader(handle, delimiter=delimiter)
    header = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            for row in reader:
                if None in row:
                    raise LabelFileError(f"{path}:{reader.line_num}: more fields than the header has")
                if any(value is None for value in row.values()):
                    raise LabelFileError(f"{path}:{reader.line_num}: fewer fields than the header has")
                yield reader.line_num, row

    return header, rows()


def _image_column(header: list[str], path: Path) -> str:
    if not header:
        raise LabelFileError(f"{path} is empty; a header line naming the columns comes first")
    for name in IMAGE_COLUMNS:
        if name in header:
            return name
    raise LabelFileError(f"{path}: no image column; expected one of {', '.join(IMAGE_COLUMNS)} in the header")


def _read_tad66k(path: Path, images_dir: Path) -> Iterator[LabeledImage]:
    header, rows = _csv_rows(path)
    image_column = _image_column(header, path)
    if "score" not in header:
        raise LabelFileError(f"{path}: TAD66K labels need a 'score' column")
    for line_number, row in rows:
        where = f"{path}:{line_number}"
        name = row[image_column].strip()
        if not name:
            raise LabelFileError(f"{where}: empty image name")
        _refuse_url(name, where)
        score = _parse_number(row["score"], "score", 0.0, 10.0, where)
        yield LabeledImage(name, images_dir / name, score)


def _table_rows(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    """Header and (location, row) pairs of a CSV (location = line) or Parquet (location = row) table."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise LabelFileError(f"{path} is not a readable Parquet file: {exc}") from None

        def parquet_rows() -> Iterator[tuple[str, dict]]:
            for number, row in enumerate(table.to_pylist(), start=1):
                yield f"{path} row {number}", row

        return table.column_names, parquet_rows()
    header, rows = _csv_rows(path)
    return header, ((f"{path}:{line}", row) for line, row in rows)


def _read_table(path: Path, images_dir: Path) -> tuple[list[LabeledImage], str]:
    header, rows = _table_rows(path)
    image_column = _image_column(header, path)
    has_votes = all(name in header for name in VOTE_COLUMNS)
    if not has_votes and any(name in header for name in VOTE_COLUMNS):
        missing = [name for name in VOTE_COLUMNS if name not in header]
        raise LabelFileError(f"{path}: vote columns incomplete, missing {', '.join(missing)}")
    label_column = "votes" if has_votes else next((c for c in ("score", "rating") if c in header), None)
    if label_column is None:
        raise LabelFileError(
            f"{path}: no label columns; expected votes_1..votes_10, a 'score' (1-10) or a 'rating' (1-5)"
        )
    items = []
    for where, row in rows:
        name = row[image_column]
        if name is None or not str(name).strip():
            raise LabelFileError(f"{where}: empty image path")
        name = str(name).strip()
        _refuse_url(name, where)
        image_id = str(row["id"]).strip() if row.get("id") not in (None, "") else name
        split = _parse_split(row.get("split"), where)
        if label_column == "votes":
            votes = _parse_votes([str(row[c]) for c in VOTE_COLUMNS], where)
            items.append(LabeledImage(image_id, images_dir / name, mean_of_votes(votes), votes, split))
        elif label_column == "score":
            score = _parse_number(row["score"], "score", 1.0, 10.0, where)
            items.append(LabeledImage(image_id, images_dir / name, score, None, split))
        else:
            rating = _parse_number(row["rating"], "rating", 1.0, 5.0, where)
            items.append(LabeledImage(image_id, images_dir / name, rating_to_score(rating), None, split))
    return items, "votes" if has_votes else "score"


def _refuse_url(name: str, where: str) -> None:
    if protocol_of(name) is not None:
        raise LabelFileError(
            f"{where}: image {name!r} is a URL; training reads local files: download the images, "
            "then name them by their path relative to --images"
        )


def _parse_split(value: object, where: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    split = str(value).strip().lower()
    if split not in SPLITS:
        raise LabelFileError(f"{where}: split {value!r} is not one of {', '.join(SPLITS)}")
    return split


def read_id_list(path: Path | str) -> set[str]:
    """Image ids of an official split: one per line, or a CSV whose first column holds them (after a header).

    Ids are compared without an image suffix, so ``123.jpg`` matches AVA's ``123``.
    """
    path = Path(path)
    _refuse_unless_a_file(path, "id list", f"a file of {ID_LIST_LAYOUT}")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle]
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    if path.suffix.lower() == ".csv":
        lines = [line.split(",", 1)[0].strip() for line in lines[1:]]
    ids = {strip_image_suffix(line) for line in lines if line}
    if not ids:
        raise LabelFileError(f"id list {path} is empty; expected {ID_LIST_LAYOUT}")
    return ids
