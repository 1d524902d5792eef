"""Opening a Parquet result whose footer outgrew pyarrow's default limits.

Older eat-curate versions appended every run to a result file's footer (see
``history.py``) without a cap. Past about 75 MB of runs, Arrow's base64 copy
of the schema in the footer is a string longer than pyarrow reads by default
(``thrift_string_size_limit``, 100 MB), and pyarrow refuses the whole file
("Couldn't deserialize thrift: ... Exceeded size limit"). Such a footer is
big, not damaged, so it is read again with both thrift limits raised to the
footer's own length, which no string or list in it can exceed.

Only then: raised limits would cost other files nothing (measured), but
the defaults keep a damaged footer that claims a huge string or list from
making pyarrow allocate for it. DuckDB has no such limits: it reads these
files as they are (slowly, see ``library/parquet_views.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_TOO_BIG = "Exceeded size limit"  # pyarrow's message when a footer string or list passes a thrift limit
# pyarrow's defaults, the least a retry asks for (page headers are read under the same limits).
_DEFAULT_STRING_LIMIT = 100_000_000
_DEFAULT_CONTAINER_LIMIT = 1_000_000
_MOST_LIMIT = 2**31 - 1  # pyarrow takes the limits as int32


def footer_length(path: Path) -> int:
    """The length of ``path``'s Parquet footer, from the 4 bytes before its closing magic."""
    with open(path, "rb") as file:
        file.seek(-8, os.SEEK_END)
        return int.from_bytes(file.read(4), "little")


def _raised_limits(path: Path) -> dict[str, int]:
    length = footer_length(path)
    return {
        "thrift_string_size_limit": min(max(length, _DEFAULT_STRING_LIMIT), _MOST_LIMIT),
        "thrift_container_size_limit": min(max(length, _DEFAULT_CONTAINER_LIMIT), _MOST_LIMIT),
    }


def parquet_file(path: Path) -> pq.ParquetFile:
    """``pq.ParquetFile(path)``, also for a footer past pyarrow's default thrift limits."""
    try:
        return pq.ParquetFile(path)
    except OSError as exc:
        if _TOO_BIG not in str(exc):
            raise
    return pq.ParquetFile(path, **_raised_limits(path))


def read_schema(path: Path) -> pa.Schema:
    """``pq.read_schema(path)``, also for a footer past pyarrow's default thrift limits."""
    return parquet_file(path).schema_arrow

