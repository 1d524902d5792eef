"""RAW decode speed: the embedded preview against the half-size demosaic, same pictures, same run.

Camera-size DNGs are generated (:mod:`eat_curate.benchmarks.bayer_dngs`:
12-bit uncompressed Bayer, 12 MP by default) twice over: with a JPEG preview
of ``preview_side`` (1620 px long, as Canon embeds) and without one, so the
decoder takes the preview path on the first set and demosaics the second.
Both go through the real decoder (:func:`eat_curate.io.decode.decode_image`)
to the model's input, resize and hash included, on one thread (LibRaw may
use OpenMP threads of its own inside a demosaic). Files are in memory: only
decoding is timed. Beside the wall-clock rates, the process's CPU time per
image: steadier than img/s on a shared machine, and what a pool of decode
workers divides among its cores.

Real cameras' RAWs are mostly losslessly compressed, which makes their
demosaic path slower than these uncompressed ones; the preview path is the
same JPEG work either way. Needs rawpy and pidng (``pip install
'eat-curate[raw]' pidng``).
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from eat_curate.benchmarks.bayer_dngs import bayer_dng, marked_picture
from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.errors import EatCurateError
from eat_curate.io.decode import decode_image


@dataclass
class RawDecodeBenchResult:
    files: int  # per path
    width: int  # sensor, as stored
    height: int
    file_megabytes: float  # one DNG with its preview
    preview_side: int
    size: int
    rounds: int
    preview_img_s: float
    demosaic_img_s: float
    speedup: float  # preview / demosaic
    preview_cpu_ms: float  # process CPU time per image, all threads
    demosaic_cpu_ms: float
    cpu: str

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def to_dict(self) -> dict:
        return {**asdict(self), "megapixels": self.megapixels}


def bench_raw_decode(
    files: int = 3, megapixels: float = 12.0, preview_side: int = 1620, size: int = 224, rounds: int = 3
) -> RawDecodeBenchResult:
    """img/s of decoding RAWs by their embedded preview and by a half-size demosaic."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5)) // 2 * 2  # 4:3, even sides (whole Bayer quads)
    height = width * 3 // 4 // 2 * 2
    pictures = [marked_picture(width, height, seed=seed) for seed in range(files)]
    with_preview = [bayer_dng(picture, preview="jpeg", preview_side=preview_side) for picture in pictures]
    without_preview = [bayer_dng(picture) for picture in pictures]

    cpu_seconds: dict[str, list[float]] = defaultdict(list)  # per image, every pass (warm-up included)

    def decode_all(path: str, datas: list[bytes]):
        def run() -> int:
            started = time.process_time()
            for data in datas:
                result = decode_image(data, size=size)
                if not result.ok:
                    raise EatCurateError(f"a generated DNG failed to decode: {result.error}")
            cpu_seconds[path].append((time.process_time() - started) / len(datas))
            return len(datas)

        return run

    rates = interleaved_rates(
        {"preview": decode_all("preview", with_preview), "demosaic": decode_all("demosaic", without_preview)},
        rounds=rounds,
    )
    return RawDecodeBenchResult(
        files=files,
        width=width,
        height=height,
        file_megabytes=len(with_preview[0]) / 1e6,
        preview_side=preview_side,
        size=size,
        rounds=rounds,
        preview_img_s=rates["preview"],
        demosaic_img_s=rates["demosaic"],
        speedup=rates["preview"] / rates["demosaic"],
        preview_cpu_ms=1000 * statistics.median(cpu_seconds["preview"]),
        demosaic_cpu_ms=1000 * statistics.median(cpu_seconds["demosaic"]),
        cpu=cpu_description(),
    )


def report_lines(result: RawDecodeBenchResult) -> list[str]:
    return [
        f"{result.files} generated DNGs per path, {result.width}x{result.height} ({result.megapixels:.1f} MP, "
        f"{result.file_megabytes:.1f} MB), decoded to {result.size}x{result.size}, 1 thread, "
        f"median of {result.rounds} rounds; {result.cpu}",
        f"  embedded preview ({result.preview_side} px JPEG)  {result.preview_img_s:8.2f} img/s "
        f"{result.preview_cpu_ms:8.1f} CPU ms/img   {result.speedup:.1f}x",
        f"  half-size demosaic             {result.demosaic_img_s:8.2f} img/s {result.demosaic_cpu_ms:8.1f} CPU ms/img",
    ]


def cpu_description() -> str:
    """The CPU's model name, its logical cores, and whether it has bf16 instructions (AVX512-BF16, AMX)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{os.cpu_count()} cores"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = [flag for flag in ("avx512_bf16", "amx_bf16") if f" {flag}" in info]
    return f"{model or 'CPU'}, {os.cpu_count()} cores" + (f", {'/'.join(flags)}" if flags else "")
