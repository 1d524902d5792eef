"""Failures of the storage under the sinks (a full or read-only disk, a database gone for good), as one line.

A full disk under ``--out`` raises ``OSError`` 28 from deep inside Arrow or
SQLite; the user needs one sentence saying where, what, and that what was
saved is kept. :func:`storage_faults` turns such errors into
:class:`InfrastructureFailure`, whose exit code tells a scheduler to try
again later (``eat_curate.exit_codes``).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from eat_curate import exit_codes
from eat_curate.errors import StoreError

# The storage refused to take more, whatever the data: no retry helps until an operator acts.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

RESUME_HINT = "what was saved is kept; run the same command again to resume once this is fixed"


class InfrastructureFailure(StoreError):
    """The storage failed during a run: disk full or read-only, or a database unreachable past the retry limit."""

    exit_code = exit_codes.INFRASTRUCTURE.code


def is_storage_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


def storage_failure(error: OSError, where: str) -> InfrastructureFailure:
    reason = error.strerror or str(error)
    return InfrastructureFailure(f"{where}: {reason.lower()}; {RESUME_HINT}")


@contextmanager
def storage_faults(where: str) -> Iterator[None]:
    """Raise :class:`InfrastructureFailure` (one line, no traceback) for a full, read-only or failing disk."""
    try:
        yield
    except OSError as error:
        if not is_storage_error(error):
            raise
        raise storage_failure(error, where) from None
