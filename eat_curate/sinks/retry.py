"""Trying an operation again while it fails for a reason that passes: bounded, jittered exponential backoff.

A database restart, a failover or a network blip lasts seconds to minutes;
a scheduled job should wait it out, not die. :class:`Retrier` calls an
operation until it succeeds, fails for a reason that is not transient, or
has failed for longer than the policy's limit, counted from its first
failure. The operation must be safe to repeat as a whole (one transaction
of idempotent upserts, a read).

Waits double from ``first_delay_s`` up to ``max_delay_s``; each is drawn
between half and all of its step ("equal jitter"), so clients cut off by the
same restart do not reconnect in lockstep, and none hammers the server.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eat_curate.sinks.faults import InfrastructureFailure, RESUME_HINT

T = TypeVar("T")
WaitListener = Callable[[str | None], None]  # a message while waiting; None once the operation succeeds

DEFAULT_RETRY_FOR_S = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    limit_s: float = DEFAULT_RETRY_FOR_S  # give up once an operation has failed for this long; 0: never retry
    first_delay_s: float = 0.5
    max_delay_s: float = 15.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed attempt ``attempt`` (0, 1, 2 ...), before the limit is applied."""
        step = min(self.max_delay_s, self.first_delay_s * 2**attempt)
        return step * rng.uniform(0.5, 1.0)


NO_RETRY = RetryPolicy(limit_s=0)


class RetryLimitReached(InfrastructureFailure):
    """Still failing after the policy's limit: an infrastructure failure (``exit_codes.INFRASTRUCTURE``)."""


class Retrier:
    """Runs operations under one policy; see the module doc.

    ``transient(error)`` says whether ``error`` may pass; ``reason(error)``
    puts it in a few words. ``before_retry`` runs after each transient
    failure (e.g. to drop pooled connections a restart killed). Once the
    limit has been reached, later operations (recording how the run ended)
    are tried once, without waiting all over again.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        what: str,
        transient: Callable[[BaseException], bool],
        reason: Callable[[BaseException], str],
        on_wait: WaitListener | None = None,
        before_retry: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.what = what
        self._transient = transient
        self._reason = reason
        self._on_wait = on_wait
        self._before_retry = before_retry
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self.gave_up = False
        self.waits = 0  # retries so far, all operations together

    def call(self, operation: Callable[[], T]) -> T:
        limit = 0.0 if self.gave_up else self.policy.limit_s
        first_failure: float | None = None
        attempt = 0
        while True:
            try:
                result = operation()
            except Exception as error:
                if not self._transient(error):
                    raise
                if self._before_retry is not None:
                    self._before_retry()
                now = self._clock()
                first_failure = now if first_failure is None else first_failure
                waited = now - first_failure
                if waited >= limit:
                    self.gave_up = True
                    raise self._limit_reached(error, waited) from None
                delay = min(self.policy.delay(attempt, self._rng), limit - waited)
                self._notify(f"{self.what}: {self._reason(error)}; retrying in {delay:.1f} s "
                             f"({waited:.0f} s of {limit:g} s)")
                self._sleep(delay)
                attempt += 1
                self.waits += 1
            else:
                if attempt:
                    self._notify(None)
                return result

    def _notify(self, message: str | None) -> None:
        if self._on_wait is not None:
            self._on_wait(message)

    def _limit_reached(self, error: BaseException, waited: float) -> RetryLimitReached:
        if self.policy.limit_s <= 0:
            tried = "no retries allowed"
        elif waited > 0:
            tried = f"still failing after {waited:.0f} s of retries (limit {self.policy.limit_s:g} s)"
        else:
            tried = "not retried again: the retry limit was reached earlier in this run"
        return RetryLimitReached(f"{self.what}: {self._reason(error)}; {tried}; {RESUME_HINT}")
