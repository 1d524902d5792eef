"""When an input needs no work: the one rule every sink applies in ``already_scored``.

An item is already scored by a model when the sink holds a *success* for the
item's key and that model, and the image has not changed since:

- an item whose bytes are known up front (``content_hash`` set, e.g. embedded
  in a manifest) is unchanged when the stored content hash is the same;
- any other item is unchanged when the stored (bytes, mtime) equal the item's
  (size, mtime), an unknown value counting as a value: an item whose size or
  mtime cannot be known without reading is therefore scored again every run.

Error rows never count: a re-run retries them.
"""

from __future__ import annotations

from collections.abc import Hashable

from eat_curate.io.sources import SourceItem


def item_version(item: SourceItem) -> Hashable:
    """What identifies the item's current bytes, for comparison with :func:`stored_versions`."""
    if item.content_hash:
        return ("sha256", item.content_hash)
    return ("stat", item.size, item.mtime)


def stored_versions(size: int | None, mtime: float | None, content_hash: str | None) -> list[Hashable]:
    """The versions a stored success row vouches for: its (bytes, mtime), and its content hash if known."""
    versions: list[Hashable] = [("stat", size, mtime)]
    if content_hash:
        versions.append(("sha256", content_hash))
    return versions
