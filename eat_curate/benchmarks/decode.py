"""`eat-curate bench decode`: JPEG draft decoding against full-resolution decoding, same photos, same run.

Both paths are the real decoder (:func:`eat_curate.io.decode.decode_image`),
with ``draft`` off and on; files are read into memory first, so only decoding,
orientation, conversion, resizing and hashing are timed, on one thread. With
a model, both versions of every photo are scored and the score differences
reported: draft decoding is only worth its speed if scores barely move
(the pipeline's bar: mean absolute difference <= 0.02).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.errors import EatCurateError
from eat_curate.io.decode import DecodedImage, decode_image
from eat_curate.io.formats import SNIFF_BYTES, sniff_format
from eat_curate.io.sources import SourceReadError, iter_items, read_bytes
from eat_curate.scoring.predictor import Predictor

MAX_MEAN_ABS_SCORE_DIFF = 0.02
SCORE_BATCH = 16


@dataclass
class DecodeBenchResult:
    source: str
    images: int
    median_megapixels: float
    size: int
    rounds: int
    full_img_s: float
    draft_img_s: float
    ratio: float
    mean_abs_pixel_diff: float  # 0..255, model pixels of the two decodes
    model_id: str | None = None
    model_trained: bool | None = None
    mean_abs_score_diff: float | None = None
    max_abs_score_diff: float | None = None

    @property
    def within_score_bar(self) -> bool | None:
        if self.mean_abs_score_diff is None:
            return None
        return self.mean_abs_score_diff <= MAX_MEAN_ABS_SCORE_DIFF

    def to_dict(self) -> dict:
        return {**asdict(self), "within_score_bar": self.within_score_bar}


def read_jpegs(sources: Sequence[str], limit: int | None = None) -> list[bytes]:
    """The bytes of every distinct JPEG in ``sources`` (folders or files; by content, not name), in order.

    Copies and links to the same file count once (wallpaper packages link one
    picture under several resolution names).
    """
    jpegs: list[bytes] = []
    seen: set[str] = set()
    for item in tqdm(iter_items(sources), desc="reading JPEGs", unit="file", leave=False):
        try:
            data = read_bytes(item)
        except SourceReadError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        if sniff_format(data[:SNIFF_BYTES]) == "JPEG" and digest not in seen:
            seen.add(digest)
            jpegs.append(data)
            if limit is not None and len(jpegs) >= limit:
                break
    if not jpegs:
        raise EatCurateError(f"no JPEG files found in {', '.join(sources[:3])}{' ...' if len(sources) > 3 else ''}")
    return jpegs


def _decode_all(jpegs: list[bytes], size: int, draft: bool) -> list[DecodedImage]:
    decoded = [decode_image(data, size=size, draft=draft) for data in jpegs]
    failures = [result.error for result in decoded if not result.ok]
    if failures:
        raise EatCurateError(f"{len(failures)} JPEGs failed to decode, e.g.: {failures[0]}")
    return decoded


def _score_means(predictor: Predictor, pixels: np.ndarray) -> np.ndarray:
    means = []
    for start in tqdm(range(0, len(pixels), SCORE_BATCH), desc="scoring", unit="batch", leave=False):
        means.append(predictor.predict(pixels[start : start + SCORE_BATCH]).mean)
    return np.concatenate(means).astype(np.float64)


def bench_decode(
    sources: Sequence[str],
    size: int = 224,
    limit: int | None = None,
    rounds: int = 3,
    predictor: Predictor | None = None,
) -> DecodeBenchResult:
    jpegs = read_jpegs(sources, limit)
    full_results = _decode_all(jpegs, size, draft=False)
    full = np.stack([result.pixels for result in full_results])
    drafted = np.stack([result.pixels for result in _decode_all(jpegs, size, draft=True)])

    progress = tqdm(total=2 * (rounds + 1), desc="timing", unit="pass", leave=False)

    def timed(draft: bool) -> Callable[[], int]:
        def run() -> int:
            _decode_all(jpegs, size, draft)
            progress.update()
            return len(jpegs)

        return run

    with progress:
        rates = interleaved_rates({"full": timed(False), "draft": timed(True)}, rounds=rounds)

    result = DecodeBenchResult(
        source=sources[0] if len(sources) == 1 else f"{len(sources)} files",
        images=len(jpegs),
        median_megapixels=statistics.median(result.width * result.height / 1e6 for result in full_results),
        size=size,
        rounds=rounds,
        full_img_s=rates["full"],
        draft_img_s=rates["draft"],
        ratio=rates["draft"] / rates["full"],
        mean_abs_pixel_diff=float(np.abs(full.astype(np.int16) - drafted.astype(np.int16)).mean()),
    )
    if predictor is not None:
        differences = np.abs(_score_means(predictor, full) - _score_means(predictor, drafted))
        result.model_id = predictor.model_id
        result.model_trained = predictor.card.trained
        result.mean_abs_score_diff = float(differences.mean())
        result.max_abs_score_diff = float(differences.max())
    return result


def report_lines(result: DecodeBenchResult) -> list[str]:
    lines = [
        f"{result.images} JPEGs (median {result.median_megapixels:.1f} MP) decoded to {result.size}x{result.size}, "
        f"1 thread, median of {result.rounds} rounds",
        f"  full decode + resize   {result.full_img_s:8.2f} img/s",
        f"  draft decode + resize  {result.draft_img_s:8.2f} img/s   {result.ratio:.2f}x",
        f"  model pixels: mean |diff| {result.mean_abs_pixel_diff:.2f} / 255",
    ]
    if result.mean_abs_score_diff is not None:
        verdict = "within" if result.within_score_bar else "OVER"
        caveat = "" if result.model_trained else ", untrained: random weights"
        lines.append(
            f"  scores, draft vs full ({result.model_id}{caveat}): mean |diff| {result.mean_abs_score_diff:.4f}, "
            f"max |diff| {result.max_abs_score_diff:.4f}, {verdict} the {MAX_MEAN_ABS_SCORE_DIFF} bar"
        )
    return lines
