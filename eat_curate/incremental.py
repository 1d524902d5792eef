"""When an input needs no work: the one rule every sink applies in ``already_scored``.

An input is already scored by a model when the sink holds a *success* for the
input's key and that model, and the image has not changed since:

- an input whose bytes are known up front (a content hash, e.g. embedded in
  a manifest) is unchanged when the stored content hash is the same;
- any other input is unchanged when the stored (bytes, mtime) equal its
  (size, mtime), an unknown value counting as a value: an input whose size or
  mtime cannot be known without reading is therefore scored again every run.

Error rows never count: a re-run retries them. Sinks see inputs only as
:class:`InputVersion` (key, image id, version), never as source items.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple


class InputVersion(NamedTuple):
    key: str  # the input's unique key (path, URI, or manifest row)
    image_id: str
    version: Hashable  # what identifies its current bytes: see :func:`input_version`


def input_version(size: int | None, mtime: float | None, content_hash: str | None) -> Hashable:
    """What identifies an input's current bytes, for comparison with :func:`stored_versions`."""
    if content_hash:
        return ("sha256", content_hash)
    return ("stat", size, mtime)


def stored_versions(size: int | None, mtime: float | None, content_hash: str | None) -> list[Hashable]:
    """The versions a stored success row vouches for: its (bytes, mtime), and its content hash if known."""
    versions: list[Hashable] = [("stat", size, mtime)]
    if content_hash:
        versions.append(("sha256", content_hash))
    return versions
