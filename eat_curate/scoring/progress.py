"""Progress of a scoring run, reported by engines and shown by the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

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
