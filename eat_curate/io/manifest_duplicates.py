"""Manifest rows that name an image or an id already named by an earlier row: found up front, refused or kept.

The outputs hold one row per image: Parquet one per (path, model), SQL one
per (image id, model). A manifest that lists one path twice, or gives two
rows (two albums, say) the same id, would be counted twice and written once:
a row lost without a word. So such a manifest is either

- refused (``"refuse"``, the default), before anything is scored, with the
  rows named; or
- kept whole (``"keep"``): every row is scored and written. The first row of
  a path or an id keeps it; each later row gets its own, deterministically
  from its 0-based row number in the manifest:

  - a row repeating an earlier row's path gets the key ``"<path>#<row>"``
    (its bytes are still read from the path) and, when the manifest gives
    it no id, the id derived from that key;
  - a row repeating an earlier row's id gets the id ``"<id>#<row>"``.

Finding them costs one pass over the location and id columns only, keeping
two 64-bit hashes per row (160 MB for 10 million rows), and a second pass
only when some hashes are equal, to compare the real values.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from eat_curate.io.items import image_id_for

REFUSE, KEEP = "refuse", "keep"
DUPLICATE_POLICIES = (REFUSE, KEEP)
SHOWN = 5  # duplicates named in a refusal; the rest are counted


@dataclass(frozen=True)
class RowIdentity:
    """What the outputs key a manifest row by."""

    row: int  # 0-based
    key: str  # the resolved path or URL (or "<manifest>#<row>" for embedded bytes)
    image_id: str
    id_given: bool  # from the manifest's id column, not derived from the key


@dataclass(frozen=True)
class Duplicate:
    identity: RowIdentity
    same_path_as: int | None  # the earlier row with this row's path
    same_id_as: int | None  # the earlier row with this row's id

    def describe(self) -> str:
        row = self.identity.row
        if self.same_path_as is not None and self.same_path_as == self.same_id_as:
            return f"row {row} repeats row {self.same_path_as} ({self.identity.key})"
        if self.same_path_as is not None:
            return f"row {row} repeats the path of row {self.same_path_as} ({self.identity.key})"
        return f"row {row} has the id of row {self.same_id_as} ({self.identity.image_id!r})"


@dataclass(frozen=True)
class Renamed:
    """How a kept duplicate row is keyed instead."""

    key: str
    image_id: str
    location: str | None  # where its bytes are, when the key no longer says


def find_duplicates(identities: Callable[[], Iterable[RowIdentity]]) -> list[Duplicate]:
    """Every row whose path or id an earlier row has, in row order.

    ``identities()`` lists the rows; it is called once, and a second time only when hashes collide.
    """
    key_hashes, id_hashes = array("q"), array("q")
    for identity in identities():
        key_hashes.append(hash(identity.key))
        id_hashes.append(hash(identity.image_id))
    suspect_keys, suspect_ids = _repeated(key_hashes), _repeated(id_hashes)
    if not suspect_keys and not suspect_ids:
        return []
    first_with_key: dict[str, int] = {}
    first_with_id: dict[str, int] = {}
    found = []
    for identity in identities():
        same_path = _earlier(first_with_key, identity.key, identity.row) if hash(identity.key) in suspect_keys else None
        same_id = (
            _earlier(first_with_id, identity.image_id, identity.row) if hash(identity.image_id) in suspect_ids else None
        )
        if same_path is not None or same_id is not None:
            found.append(Duplicate(identity, same_path, same_id))
    return found


def renames(duplicates: Iterable[Duplicate]) -> dict[int, Renamed]:
    """Row number -> its own key and id, for keeping every row (see the module doc)."""
    renamed = {}
    for duplicate in duplicates:
        identity = duplicate.identity
        key, image_id, location = identity.key, identity.image_id, None
        if duplicate.same_path_as is not None:
            key, location = f"{identity.key}#{identity.row}", identity.key
            if not identity.id_given:
                image_id = image_id_for(key)
        if image_id == identity.image_id and duplicate.same_id_as is not None:
            image_id = f"{identity.image_id}#{identity.row}"
        renamed[identity.row] = Renamed(key, image_id, location)
    return renamed


def refusal(manifest: str, duplicates: list[Duplicate]) -> str:
    """The one-line message refusing ``manifest``, naming its first duplicate rows."""
    named = "; ".join(duplicate.describe() for duplicate in duplicates[:SHOWN])
    more = f"; and {len(duplicates) - SHOWN} more" if len(duplicates) > SHOWN else ""
    return (
        f"manifest {manifest} names an image or an id more than once, and the outputs keep one row per path "
        f"and per id (rows counted from 0): {named}{more}. Remove the repeated rows, or keep every row "
        f"(score --duplicates keep: a later row gets '#<row>' appended to its path key or id)"
    )


def _repeated(hashes: array) -> set[int]:
    values = np.frombuffer(hashes, dtype=np.int64) if len(hashes) else np.zeros(0, np.int64)
    unique, counts = np.unique(values, return_counts=True)
    return set(unique[counts > 1].tolist())


def _earlier(first_rows: dict[str, int], value: str, row: int) -> int | None:
    first = first_rows.setdefault(value, row)
    return first if first != row else None
