"""Which files are one shot: the key the sinks store beside every image, and its twin in DuckDB SQL.

A camera that saves RAW + JPEG writes ``IMG_0001.CR2`` and ``IMG_0001.JPG``
side by side: one photograph in two files. Files in the same folder whose
names differ only in the extension (and in the case of ASCII letters) are
one shot, and share a key: the folder as stored, then the stem with ``A-Z``
folded to ``a-z``::

    /photos/trip/IMG_0001.CR2  ->  /photos/trip/img_0001
    /photos/trip/img_0001.jpg  ->  /photos/trip/img_0001

- The stem is the name before its last dot; a name without a dot, or whose
  only dot leads (``.jpg``), is its own stem.
- Only ASCII letters fold: camera file names are ASCII (the DCF standard),
  and ASCII folding is exactly the same in Python, SQLite, PostgreSQL and
  DuckDB, so a result reads the same from every store. ``Été.jpg`` and
  ``été.jpg`` stay two shots.
- A manifest's embedded image (``<manifest>#<row>``) has no file name of its
  own and no key (NULL): it is a shot alone.
- A key longer than ``MAX_KEY_BYTES`` (UTF-8) is stored as ``sha256:`` and
  its digest: a database's index holds at most about 2.7 KB per entry
  (PostgreSQL's B-tree), and a deep folder or a signed URL passes that. Equal
  keys still give equal digests, so such files pair as before.

The key is derived from the path alone, so it is the same whichever engine
wrote the row; pairing itself (which keys hold more than one file) is the
read side's (``eat_curate.library.shots``).
"""

from __future__ import annotations

import hashlib
import re
import string

_EMBEDDED_ROW = re.compile(r"#[0-9]+\Z")  # "<manifest uri>#<row>"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
MAX_KEY_BYTES = 1024  # well below PostgreSQL's B-tree entry limit (2,704 bytes), in UTF-8
DIGEST_PREFIX = "sha256:"


def shot_key(path: str) -> str | None:
    """The shot ``path`` belongs to (module doc); None for a manifest's embedded image."""
    if _EMBEDDED_ROW.search(path):
        return None
    folder, slash, name = path.rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if dot > 0 else name
    key = folder + slash + stem.translate(_ASCII_LOWER)
    if len(key) * 4 <= MAX_KEY_BYTES:  # no character takes more than 4 bytes: skip encoding the usual key
        return key
    encoded = key.encode("utf-8", "surrogatepass")
    return key if len(encoded) <= MAX_KEY_BYTES else DIGEST_PREFIX + hashlib.sha256(encoded).hexdigest()


def with_shot_key_sql(relation: str) -> str:
    """DuckDB SQL: the rows of ``relation`` (it has a ``path`` column) with ``shot``, as :func:`shot_key` makes it.

    Each step is its own projection, so DuckDB computes the name and the stem
    once per row (inline, the expression would repeat them: five times the
    work). ASCII text folds with ``lower``, which equals ASCII folding there;
    other text with ``translate``, exact but slower. RE2 (DuckDB's regular
    expressions): ``[^/]`` and ``[^.]`` match a newline too, and ``$`` is the
    end of the text, as in Python.
    """
    upper, lower = string.ascii_uppercase, string.ascii_lowercase
    named = (
        "SELECT *, regexp_replace(path, '[^/]*$', '') AS shot_folder, regexp_extract(path, '[^/]*$') AS shot_name "
        f"FROM ({relation})"
    )
    cut = f"SELECT *, regexp_replace(shot_name, '\\.[^.]*$', '') AS shot_cut FROM ({named})"
    # Cutting at a leading dot leaves nothing: such a name (".jpg") is its own stem.
    stem = f"SELECT *, CASE WHEN shot_cut = '' THEN shot_name ELSE shot_cut END AS shot_stem FROM ({cut})"
    folded = (
        "CASE WHEN strlen(shot_stem) = length(shot_stem) THEN lower(shot_stem) "
        f"ELSE translate(shot_stem, '{upper}', '{lower}') END"
    )
    keyed = f"SELECT *, shot_folder || {folded} AS shot_whole FROM ({stem})"
    # strlen: the length in UTF-8 bytes, the bound's unit; sha256: the hex digest of the UTF-8 text.
    key = (f"CASE WHEN strlen(shot_whole) <= {MAX_KEY_BYTES} THEN shot_whole "
           f"ELSE '{DIGEST_PREFIX}' || sha256(shot_whole) END")
    return (
        f"SELECT * EXCLUDE (shot_folder, shot_name, shot_cut, shot_stem, shot_whole), "
        f"CASE WHEN regexp_matches(path, '#[0-9]+$') THEN NULL ELSE {key} END AS shot FROM ({keyed})"
    )
