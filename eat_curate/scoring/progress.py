"""Progress of a scoring run, reported by engines and shown by the CLI.

On a terminal a bar redraws itself in place; in a log (cron, `ray job logs`,
`2> score.log`) those redraws pile up into one endless line, so there a line
is printed every so often instead (:func:`progress_for`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eat_curate.records import ScoreRecord


class Progress:
    """Silent progress: engines report to it; subclasses show it."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.skipped = 0

    def advance(self, records: Sequence[ScoreRecord]) -> None:
        for record in records:
            if record.ok:
                self.ok += 1
            else:
                self.failed += 1

    def skip(self, count: int) -> None:
        self.skipped += count

    def note(self, **fields: object) -> None:
        """Engine-specific facts to show beside the counts (e.g. Ray actors alive)."""

    def waiting(self, message: str | None) -> None:
        """What the run is waiting for (a database coming back), or None when it goes on."""

    def close(self) -> None:
        pass


class BarProgress(Progress):
    """A tqdm bar on stderr: images done (scored, failed or skipped) with img/s and ETA.

    The bar appears on the first report, so what is printed while the model
    loads is not torn by it. A wait (``waiting``) replaces the bar's
    description until the run goes on.
    """

    def __init__(self, total: int | None = None, description: str = "scoring") -> None:
        super().__init__()
        self.total = total
        self.description = description
        self.extra: dict[str, object] = {}
        self._bar = None

    @property
    def bar(self):
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.description, unit="img", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        return self._bar

    def _postfix(self) -> None:
        self.bar.set_postfix(ok=self.ok, failed=self.failed, skipped=self.skipped, **self.extra, refresh=False)

    def advance(self, records: Sequence[ScoreRecord]) -> None:
        super().advance(records)
        self._postfix()
        self.bar.update(len(records))

    def skip(self, count: int) -> None:
        super().skip(count)
        self._postfix()
        self.bar.update(count)

    def note(self, **fields: object) -> None:
        self.extra.update(fields)
        self._postfix()
        self.bar.refresh()

    def waiting(self, message: str | None) -> None:
        self.bar.set_description(message or self.description, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class LineProgress(Progress):
    """A line on stderr every ``every_s`` seconds of a run: counts so far and the recent rate.

    The rate is over the time since the last line; for the first line, since
    the first report, which leaves out the start (loading the model, the
    first batch), unless that report is the one the line is printed on.

    ``waiting`` messages (a database coming back) are printed as they come.
    A run shorter than ``every_s`` prints no line: its summary says it all.
    """

    def __init__(self, every_s: float = 30.0, description: str = "scoring",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if every_s <= 0:
            raise ValueError(f"every_s must be above 0, not {every_s}")
        self.every_s = every_s
        self.description = description
        self.extra: dict[str, object] = {}
        self._clock = clock
        self._started = clock()
        # (time, images scored) at the first report and at the last line
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None
        self._waiting = False

    def advance(self, records: Sequence[ScoreRecord]) -> None:
        super().advance(records)
        self._print_when_due()

    def skip(self, count: int) -> None:
        super().skip(count)
        self._print_when_due()

    def note(self, **fields: object) -> None:
        self.extra.update(fields)

    def waiting(self, message: str | None) -> None:
        if message is not None:
            self._print(f"{self.description}: {message}")
        elif self._waiting:
            self._print(f"{self.description}: going on")
        self._waiting = message is not None

    def _print_when_due(self) -> None:
        now = self._clock()
        scored = self.ok + self.failed  # skipped images cost nothing, so they would inflate the rate
        if self._first is None:
            self._first = (now, scored)
        if now - (self._last[0] if self._last else self._started) < self.every_s:
            return
        since, before = self._last or (self._first if self._first[0] < now else (self._started, 0))
        rate = (scored - before) / (now - since)
        counts = ", ".join(
            [f"ok {self.ok:,}", f"failed {self.failed:,}", f"skipped {self.skipped:,}"]
            + [f"{name} {value}" for name, value in self.extra.items()]
        )
        done = self.ok + self.failed + self.skipped
        self._print(f"{self.description}: {done:,} images in {_clock_time(now - self._started)} ({counts}); "
                    f"{rate:.1f} img/s over the last {now - since:.0f} s")
        self._last = (now, scored)

    @staticmethod
    def _print(line: str) -> None:
        print(line, file=sys.stderr, flush=True)  # sys.stderr now, not at import: it may have been swapped


def _clock_time(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


PROGRESS_MODES = ("auto", "bar", "lines", "none")


def progress_for(mode: str, every_s: float = 30.0) -> Progress:
    """The progress ``mode`` asks for; ``auto``: a bar on a terminal, else a line every ``every_s`` seconds."""
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode == "bar":
        return BarProgress()
    if mode == "lines":
        return LineProgress(every_s)
    if mode == "none":
        return Progress()
    raise ValueError(f"unknown progress mode {mode!r}; expected one of {', '.join(PROGRESS_MODES)}")
