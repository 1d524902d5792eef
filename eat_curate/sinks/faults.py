"""Failures of the storage under the sinks (a full or read-only disk, a database gone for good), as one line.

A full disk under ``--out`` raises ``OSError`` 28 from deep inside Arrow or
SQLite; the user needs one sentence saying where, what, and that what was
saved is kept. :func:`storage_faults` turns such errors into
:class:`InfrastructureFailure`, whose exit code tells a scheduler to try
again later (``eat_curate.exit_codes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eat_curate import exit_codes
from eat_curate.errors import StoreError, is_storage_error

RESUME_HINT = "what was saved is kept; run the same command again to resume once this is fixed"


class InfrastructureFailure(StoreError):
    """The storage failed during a run: disk full or read-only, or a database unreachable past the retry limit."""

    exit_code = exit_codes.INFRASTRUCTURE.code


def cannot_write(error: OSError, where: str) -> StoreError:
    """A file that could not be written, as one line: an InfrastructureFailure (exit 4) when the disk refused
    it (full, read-only, failing), else a StoreError (a missing folder, no permission: the command is wrong)."""
    failure = InfrastructureFailure if is_storage_error(error) else StoreError
    return failure(f"{where}: {error.strerror or error}")


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
