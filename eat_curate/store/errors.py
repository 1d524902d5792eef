"""The one error type of the store: a sink or database the user must fix before (or while) writing."""

from __future__ import annotations

from eat_curate.errors import EatCurateError


class StoreError(EatCurateError):
    """An output that cannot be used: unwritable path, wrong URL, unreachable or newer database."""
