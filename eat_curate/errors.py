"""The project's error base: an expected failure whose message is meant for the user.

The CLI prints such errors as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""

import errno

# The storage refused to take more, whatever the data: a full, over-quota, read-only or failing disk.
# No retry helps until an operator acts (exit code 4, ``exit_codes.INFRASTRUCTURE``).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def is_storage_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


class EatCurateError(Exception):
    """A failure the user can act on; ``str(error)`` says what and why."""


class StoreError(EatCurateError):
    """An output or database that cannot be used: unwritable path, wrong URL, unreachable or newer database."""
