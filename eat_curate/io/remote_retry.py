"""Retrying remote reads: which failures are worth another try, and how long to wait between tries.

Object stores and web servers fail now and then in ways that pass: a timeout,
a 503 while a node restarts, a connection reset mid-transfer. Those are
tried again after a short, growing wait (with jitter, so many threads do
not come back at the same instant). Everything else — 404, 403, a host
that refuses connections or does not resolve — fails at once: waiting
would not change the answer, and a dead host in a 10,000-row manifest must
not cost minutes per row.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in all, the first included
    first_wait_s: float = 0.5  # before the second try; doubles for each later one
    max_wait_s: float = 4.0
    timeout_s: float = 30.0  # one try's limit to connect, and to wait for each piece of an answer

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.first_wait_s < 0 or self.max_wait_s < 0 or self.timeout_s <= 0:
            raise ValueError("waits must not be negative and the timeout must be positive")

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt`` (2, 3, ...): doubling, capped, jittered down to half."""
        base = min(self.max_wait_s, self.first_wait_s * 2 ** (attempt - 2))
        return base * random.uniform(0.5, 1.0)


# What remote reads use unless told otherwise: 3 tries, about 0.5 s and 1 s apart, 30 s timeouts.
# Looked up at each read, so a program (or a test) may replace it: see use_policy.
DEFAULT_RETRY = RetryPolicy()


def use_policy(policy: RetryPolicy) -> None:
    """Make ``policy`` what this process's remote reads and listings use from now on
    (``score --remote-tries/--remote-timeout``; the Ray engine installs the driver's in its workers)."""
    global DEFAULT_RETRY
    DEFAULT_RETRY = policy


class GaveUp(Exception):
    """Every try failed; ``error`` is the last failure."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def is_transient(error: BaseException) -> bool:
    """A timeout, a 5xx answer, or a connection dropped mid-answer: worth another try."""
    if isinstance(error, (TimeoutError, ConnectionResetError)):  # asyncio.TimeoutError is TimeoutError
        return True
    if type(error).__name__ in ("FSTimeoutError", "ServerDisconnectedError", "ClientPayloadError"):
        return True  # fsspec's and aiohttp's, named rather than imported: both are optional here
    status = http_status(error)
    return status is not None and 500 <= status < 600


def http_status(error: BaseException) -> int | None:
    """The HTTP status an error carries (aiohttp's ``status``, urllib's ``code``), None for other errors."""
    status = getattr(error, "status", None) or getattr(error, "code", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def with_retries(call: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, tried again on transient failures; raises the first permanent failure, or
    :class:`GaveUp` with the last transient one after ``policy.attempts`` tries."""
    for attempt in range(1, policy.attempts + 1):
        if attempt > 1:
            sleep(policy.wait_before(attempt))
        try:
            return call()
        except Exception as error:  # network stacks raise many types; is_transient sorts them
            if not is_transient(error):
                raise
            if attempt == policy.attempts:
                raise GaveUp(error, attempt) from error
    raise AssertionError("unreachable: attempts is at least 1")
