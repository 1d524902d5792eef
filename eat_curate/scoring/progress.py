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

    def close(self) -> None:
        pass


class BarProgress(Progress):
    """A tqdm bar on stderr: images done (scored, failed or skipped) with img/s and ETA."""

    def __init__(self, total: int | None = None, description: str = "scoring") -> None:
        super().__init__()
        from tqdm import tqdm

        self.extra: dict[str, object] = {}
        self.bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

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

    def close(self) -> None:
        self.bar.close()
