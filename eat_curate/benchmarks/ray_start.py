"""`eat-curate bench ray-start`: the driver's work before a Ray Data run can start, by item block size.

The Ray engine hands its to-do list to Ray Data as item-row blocks in the
object store (``pipelines.segments``), and Ray Data asks each block for its
metadata in a task of its own before the Dataset starts. Both costs are per
block, so they are measured for the engine's blocks (``ITEM_BLOCK_ROWS``)
against blocks of one decode task's size (16 rows, what the engine put
before): cutting and putting the blocks, then planning the Dataset over them.

The Ray engine lives in ``pipelines/``, which this package does not import:
the command passes in how to cut items into blocks and plan a Dataset.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from eat_curate.io.items import SourceItem

BASELINE_BLOCK_ROWS = 16


@dataclass(frozen=True)
class StartFigure:
    block_rows: int
    blocks: int
    cut_s: float  # items -> item-row tables -> object store (median)
    plan_s: float  # the Dataset over those blocks: one metadata task each (median)

    @property
    def total_s(self) -> float:
        return self.cut_s + self.plan_s


@dataclass
class RayStartResult:
    items: int
    rounds: int
    baseline: StartFigure
    engine: StartFigure

    @property
    def speedup(self) -> float:
        return self.baseline.total_s / self.engine.total_s if self.engine.total_s else float("inf")

    def to_dict(self) -> dict:
        figures = {side: {**asdict(figure), "total_s": figure.total_s}
                   for side, figure in (("baseline", self.baseline), ("engine", self.engine))}
        return {"items": self.items, "rounds": self.rounds, **figures, "speedup": self.speedup}


def synthetic_items(count: int) -> list[SourceItem]:
    """``count`` to-do items as a folder listing gives them (paths, albums, sizes, mtimes)."""
    return [SourceItem(key=f"/photos/{i // 1000:04d}/IMG_{i:07d}.jpg", image_id=f"{i:016x}", album=f"{i // 1000:04d}",
                       size=2_000_000 + i, mtime=1_700_000_000.0 + i) for i in range(count)]


def bench_ray_start(
    count: int,
    engine_block_rows: int,
    cut: Callable[[Sequence[SourceItem], int], list],
    plan: Callable[[list], object],
    rounds: int = 3,
) -> RayStartResult:
    """Median seconds to ``cut`` ``count`` items into blocks (object references) and ``plan`` a Dataset
    over them, with blocks of ``BASELINE_BLOCK_ROWS`` and of ``engine_block_rows`` rows, in turn."""
    items = synthetic_items(count)
    plan(cut(items[:BASELINE_BLOCK_ROWS * 4], BASELINE_BLOCK_ROWS))  # untimed: Ray starts the workers of its tasks
    times: dict[int, list[tuple[float, float]]] = {BASELINE_BLOCK_ROWS: [], engine_block_rows: []}
    blocks: dict[int, int] = {}
    for _ in range(rounds):
        for rows in times:
            started = time.perf_counter()
            references = cut(items, rows)
            cut_s = time.perf_counter() - started
            started = time.perf_counter()
            plan(references)
            times[rows].append((cut_s, time.perf_counter() - started))
            blocks[rows] = len(references)
            del references  # frees the blocks before the next measure
    figures = {rows: StartFigure(rows, blocks[rows], statistics.median(cut_s for cut_s, _ in runs),
                                 statistics.median(plan_s for _, plan_s in runs)) for rows, runs in times.items()}
    return RayStartResult(count, rounds, figures[BASELINE_BLOCK_ROWS], figures[engine_block_rows])


def report_lines(result: RayStartResult) -> list[str]:
    lines = [f"{result.items:,} to-do items, before a Ray Data run can start (median of {result.rounds} rounds)"]
    for label, figure in (("baseline", result.baseline), ("engine", result.engine)):
        lines.append(f"  blocks of {figure.block_rows:>5,} rows {'(' + label + ')':10} {figure.blocks:>7,} blocks   "
                     f"cut+put {figure.cut_s:6.2f} s   plan {figure.plan_s:6.2f} s   total {figure.total_s:6.2f} s")
    lines.append(f"  the engine's blocks start {result.speedup:.1f}x sooner")
    return lines
