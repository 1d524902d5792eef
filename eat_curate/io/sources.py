"""Image sources: what to score, one SourceItem per input image.

(Contract only so far; the listing of folders, files, manifests and URLs is
being written.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceItem:
    key: str  # absolute path, URI, or "<manifest uri>#<row>" for embedded bytes; unique per input
    image_id: str  # the manifest's `id` when given, else derived from key
    album: str | None
    data: bytes | None = None  # embedded image bytes (a manifest's `image` column)
    content_hash: str | None = None  # sha256 hex of `data`, known up front for embedded bytes
    size: int | None = None  # bytes on storage, when known without reading
    mtime: float | None = None  # modification time, when known without reading
    extra: dict | None = None  # a manifest's other columns, carried through
