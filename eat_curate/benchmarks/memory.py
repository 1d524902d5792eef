"""`eat-curate bench memory`: peak memory of the source -> sink path as the input grows.

For each row count N, a Parquet manifest of N tiny embedded images is
streamed through ``iter_items`` -> a constant prediction -> a sink, in a
fresh process whose peak RSS (VmHWM) is read at the end. The model is
left out on purpose (its memory does not grow with N); so is decoding (the
decoder holds one image at a time). Streaming holds if the peaks for 1e4 and
1e6 rows stay within about 200 MB of each other.

The child process is this module: ``python -m eat_curate.benchmarks.memory``.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

SINKS = ("parquet", "sqlite")
TARGET_SPREAD_MB = 200
_MANIFEST_BATCH = 100_000
_CHUNK = 1000  # items per already_scored call and per write, as the engines use
_DISTRIBUTION = [0.02, 0.03, 0.05, 0.1, 0.2, 0.25, 0.15, 0.1, 0.06, 0.04]
_MEAN = sum((i + 1) * p for i, p in enumerate(_DISTRIBUTION))
_STD = sum(p * (i + 1 - _MEAN) ** 2 for i, p in enumerate(_DISTRIBUTION)) ** 0.5


@dataclass
class MemoryFigure:
    sink: str
    rows: int
    peak_rss_mb: float
    rss_after_imports_mb: float
    seconds: float


@dataclass
class MemoryBenchResult:
    figures: list[MemoryFigure] = field(default_factory=list)

    def spread_mb(self, sink: str) -> float:
        """Peak RSS of the largest run minus that of the smallest, for ``sink``."""
        runs = sorted((f for f in self.figures if f.sink == sink), key=lambda f: f.rows)
        return runs[-1].peak_rss_mb - runs[0].peak_rss_mb if len(runs) > 1 else 0.0

    def to_dict(self) -> dict:
        sinks = sorted({figure.sink for figure in self.figures})
        return {
            "figures": [asdict(figure) for figure in self.figures],
            "spread_mb": {sink: round(self.spread_mb(sink), 1) for sink in sinks},
            "target_spread_mb": TARGET_SPREAD_MB,
        }


def tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_manifest(path: Path, rows: int) -> None:
    """A manifest of ``rows`` embedded copies of one tiny PNG in 100 albums, written in slices."""
    image = tiny_png()
    schema = pa.schema([("image", pa.binary()), ("album", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, _MANIFEST_BATCH):
            count = min(_MANIFEST_BATCH, rows - start)
            albums = [f"album-{i % 100:02d}" for i in range(start, start + count)]
            writer.write_table(pa.table({"image": [image] * count, "album": albums}, schema=schema))


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux's VmHWM, not ``ru_maxrss``: a process started by fork + exec
    inherits its parent's ``ru_maxrss`` (the CLI that spawns it holds torch,
    about 1 GB), which would hide the child's own peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _stream(manifest: Path, sink_kind: str, target: Path) -> dict:
    """The child's work: manifest -> iter_items -> constant records -> sink; returns its figures."""
    from eat_curate.io.sources import iter_items
    from eat_curate.records import ScoreRecord
    from eat_curate.runs import RunInfo, RunSummary
    from eat_curate.sinks import ParquetSink, SqlSink

    rss_after_imports = _peak_rss_mb()
    start = time.perf_counter()
    sink = ParquetSink(target) if sink_kind == "parquet" else SqlSink(str(target))
    run = RunInfo(
        run_id="memory",
        model_id="constant@000000000000",
        model_name="constant",
        model_sha256="0" * 64,
        sources=[str(manifest)],
    )
    sink.begin_run(run)
    rows = 0
    chunk = []

    def flush() -> None:
        done = sink.already_scored([item.version() for item in chunk], run.model_id)
        sink.write(
            [
                ScoreRecord(
                    image_id=item.image_id,
                    path=item.key,
                    album=item.album,
                    model_id=run.model_id,
                    run_id=run.run_id,
                    content_hash=item.content_hash,
                    bytes=item.size,
                    probabilities=_DISTRIBUTION,
                    mean=_MEAN,
                    std=_STD,
                )
                for item in chunk
                if item.key not in done
            ]
        )
        chunk.clear()

    for item in iter_items([str(manifest)], album_from="album"):
        chunk.append(item)
        rows += 1
        if len(chunk) == _CHUNK:
            flush()
    flush()
    sink.end_run(run, RunSummary(ok=rows), "completed")
    sink.close()
    return {
        "rows": rows,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_imports_mb": rss_after_imports,
        "seconds": time.perf_counter() - start,
    }


def bench_memory(row_counts: Sequence[int], sinks: Sequence[str] = SINKS) -> MemoryBenchResult:
    result = MemoryBenchResult()
    progress = tqdm(total=len(row_counts) * len(sinks), unit="run", desc="bench memory", disable=None, leave=False)
    with progress, tempfile.TemporaryDirectory(prefix="eat-curate-bench-memory-") as scratch:
        folder = Path(scratch)
        for rows in sorted(row_counts):
            manifest = folder / f"manifest-{rows}.parquet"
            write_manifest(manifest, rows)
            for sink in sinks:
                progress.set_postfix_str(f"{sink}, {rows:,} rows")
                target = folder / (f"scores-{rows}.parquet" if sink == "parquet" else f"scores-{rows}.db")
                child = subprocess.run(
                    [sys.executable, "-m", "eat_curate.benchmarks.memory", sink, str(manifest), str(target)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if child.returncode != 0:
                    raise RuntimeError(f"memory benchmark child failed ({sink}, {rows} rows):\n{child.stderr}")
                figures = json.loads(child.stdout)
                result.figures.append(MemoryFigure(sink=sink, **figures))
                target.unlink()
                progress.update()
            manifest.unlink()
    return result


def report_lines(result: MemoryBenchResult) -> list[str]:
    lines = [
        f"  {figure.sink:<8} {figure.rows:>10,} rows  peak RSS {figure.peak_rss_mb:8.1f} MB "
        f"(after imports {figure.rss_after_imports_mb:.1f} MB)  {figure.seconds:7.1f} s "
        f"({figure.rows / figure.seconds:,.0f} rows/s)"
        for figure in result.figures
    ]
    for sink in dict.fromkeys(figure.sink for figure in result.figures):
        spread = result.spread_mb(sink)
        verdict = "within" if spread <= TARGET_SPREAD_MB else "OVER"
        lines.append(f"  {sink}: largest minus smallest input: {spread:+.1f} MB, {verdict} the {TARGET_SPREAD_MB} MB bar")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Child of `eat-curate bench memory`: stream one manifest into one sink."
    )
    parser.add_argument("sink", choices=SINKS)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    print(json.dumps(_stream(args.manifest, args.sink, args.target)))


if __name__ == "__main__":
    main()
