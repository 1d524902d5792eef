"""The project's error base: an expected failure whose message is meant for the user.

The CLI prints such errors as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class EatCurateError(Exception):
    """A failure the user can act on; ``str(error)`` says what and why."""


class StoreError(EatCurateError):
    """An output or database that cannot be used: unwritable path, wrong URL, unreachable or newer database."""
