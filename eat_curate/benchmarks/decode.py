"""`eat-curate bench decode`: JPEG draft decoding against full-resolution decoding, same photos, same run.

Both paths are the real decoder (:func:`eat_curate.io.decode.decode_image`),
with ``draft`` off and on; files are read into memory first, so only decoding,
orientation, conversion, resizing and hashing are timed, on one thread.

Draft decoding is only worth its speed if scores barely move, so both
versions of every photo are scored, by default with the built-in model
(trained on sharpness: an untrained model is blind to what decoding
changes), and the differences are held to the bounds every decode path
must keep (mean |Δ| <= 0.01, max |Δ| <= 0.05). The batched decoder of the
GPU path (on this machine's device: a CPU runs it with libjpeg-turbo) is
scored against the full decode too.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.errors import EatCurateError
from eat_curate.io.decode import DecodedImage, decode_image
from eat_curate.io.formats import SNIFF_BYTES, sniff_format
from eat_curate.io.resize import PRE_REDUCTION_MARGIN
from eat_curate.io.sources import SourceReadError, iter_items, read_bytes
from eat_curate.model.model_store import ModelStore
from eat_curate.scoring.gpu_decode import GpuJpegDecoder
from eat_curate.scoring.predictor import Predictor

MAX_MEAN_ABS_SCORE_DIFF = 0.01  # the bounds every decode path must keep against the others
MAX_ABS_SCORE_DIFF = 0.05
SCORE_BATCH = 16
GPU_PATH_BATCH = 8


@dataclass(frozen=True)
class ScoreAgreement:
    """How far one decode path's scores are from the full decode's, photo by photo."""

    mean_abs_diff: float
    max_abs_diff: float

    @property
    def within_bounds(self) -> bool:
        return self.mean_abs_diff <= MAX_MEAN_ABS_SCORE_DIFF and self.max_abs_diff <= MAX_ABS_SCORE_DIFF

    @classmethod
    def between(cls, scores: np.ndarray, reference: np.ndarray) -> ScoreAgreement:
        differences = np.abs(scores - reference)
        return cls(float(differences.mean()), float(differences.max()))


@dataclass
class DecodeBenchResult:
    source: str
    images: int
    median_megapixels: float
    size: int
    pre_reduction_margin: int
    rounds: int
    full_img_s: float
    draft_img_s: float
    ratio: float
    mean_abs_pixel_diff: float  # 0..255, model pixels of the two decodes
    differing_pixel_share: float  # of the model's uint8 values, draft against full
    model_id: str | None = None
    model_trained: bool | None = None
    model_dtype: str | None = None
    draft_scores: ScoreAgreement | None = None  # draft decode against full decode
    gpu_path_scores: ScoreAgreement | None = None  # the GPU path's batched decoder against full decode
    gpu_path_device: str | None = None

    @property
    def within_bounds(self) -> bool | None:
        if self.draft_scores is None:
            return None
        return all(scores.within_bounds for scores in (self.draft_scores, self.gpu_path_scores) if scores)

    def to_dict(self) -> dict:
        return {**asdict(self), "within_bounds": self.within_bounds,
                "bounds": {"mean_abs": MAX_MEAN_ABS_SCORE_DIFF, "max_abs": MAX_ABS_SCORE_DIFF}}


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


def builtin_predictor() -> Predictor | None:
    """The built-in model (the one ``score`` uses by default), or None where the package ships none."""
    store = ModelStore()
    name = store.default_name()
    return Predictor.from_store(name, store) if name else None


def _decode_all(jpegs: list[bytes], size: int, draft: bool) -> list[DecodedImage]:
    decoded = [decode_image(data, size=size, draft=draft) for data in jpegs]
    failures = [result.error for result in decoded if not result.ok]
    if failures:
        raise EatCurateError(f"{len(failures)} JPEGs failed to decode, e.g.: {failures[0]}")
    return decoded


def _gpu_path_pixels(jpegs: list[bytes], size: int, device: torch.device) -> np.ndarray:
    """Model pixels from the GPU path's batched decoder on ``device``, a few photos per batch."""
    decoder = GpuJpegDecoder(size, device)
    batches = range(0, len(jpegs), GPU_PATH_BATCH)
    decoded = [result for start in batches for result in decoder.decode(jpegs[start : start + GPU_PATH_BATCH])]
    return np.stack([result.pixels for result in decoded])


def _score_means(predictor: Predictor, pixels: np.ndarray) -> np.ndarray:
    means = []
    for start in tqdm(range(0, len(pixels), SCORE_BATCH), desc="scoring", unit="batch", leave=False):
        means.append(predictor.predict(pixels[start : start + SCORE_BATCH]).mean)
    return np.concatenate(means).astype(np.float64)


def _timed_rates(jpegs: list[bytes], size: int, rounds: int) -> dict[str, float]:
    """img/s of full and draft decoding, measured in turn every round."""
    progress = tqdm(total=2 * (rounds + 1), desc="timing", unit="pass", leave=False)

    def timed(draft: bool) -> Callable[[], int]:
        def run() -> int:
            _decode_all(jpegs, size, draft)
            progress.update()
            return len(jpegs)

        return run

    with progress:
        return interleaved_rates({"full": timed(False), "draft": timed(True)}, rounds=rounds)


def bench_decode(
    sources: Sequence[str],
    size: int = 224,
    limit: int | None = None,
    rounds: int = 3,
    predictor: Predictor | None = None,
) -> DecodeBenchResult:
    """Time and compare draft and full decoding of the JPEGs in ``sources``.

    ``predictor``: the model that scores both decodes; None: the built-in
    model (scores are skipped only where the package ships none).
    """
    jpegs = read_jpegs(sources, limit)
    full_results = _decode_all(jpegs, size, draft=False)
    full = np.stack([result.pixels for result in full_results])
    drafted = np.stack([result.pixels for result in _decode_all(jpegs, size, draft=True)])
    rates = _timed_rates(jpegs, size, rounds)
    result = DecodeBenchResult(
        source=sources[0] if len(sources) == 1 else f"{len(sources)} files",
        images=len(jpegs),
        median_megapixels=statistics.median(result.width * result.height / 1e6 for result in full_results),
        size=size,
        pre_reduction_margin=PRE_REDUCTION_MARGIN,
        rounds=rounds,
        full_img_s=rates["full"],
        draft_img_s=rates["draft"],
        ratio=rates["draft"] / rates["full"],
        mean_abs_pixel_diff=float(np.abs(full.astype(np.int16) - drafted.astype(np.int16)).mean()),
        differing_pixel_share=float((full != drafted).mean()),
    )
    predictor = predictor or builtin_predictor()
    if predictor is not None:
        _add_score_agreement(result, predictor, jpegs, full, drafted)
    return result


def _add_score_agreement(
    result: DecodeBenchResult, predictor: Predictor, jpegs: list[bytes], full: np.ndarray, drafted: np.ndarray
) -> None:
    """Score the draft decode and the GPU path's decode against the full decode."""
    reference = _score_means(predictor, full)
    result.model_id, result.model_trained = predictor.model_id, predictor.card.trained
    result.model_dtype = predictor.dtype_name
    result.draft_scores = ScoreAgreement.between(_score_means(predictor, drafted), reference)
    gpu_path = _gpu_path_pixels(jpegs, result.size, predictor.device)
    result.gpu_path_scores = ScoreAgreement.between(_score_means(predictor, gpu_path), reference)
    result.gpu_path_device = str(predictor.device)


def _agreement_line(label: str, scores: ScoreAgreement) -> str:
    verdict = "PASS" if scores.within_bounds else "FAIL"
    return (f"  scores, {label}: mean |diff| {scores.mean_abs_diff:.4f} (bound {MAX_MEAN_ABS_SCORE_DIFF}), "
            f"max |diff| {scores.max_abs_diff:.4f} (bound {MAX_ABS_SCORE_DIFF}): {verdict}")


def report_lines(result: DecodeBenchResult) -> list[str]:
    lines = [
        f"{result.images} JPEGs (median {result.median_megapixels:.1f} MP) decoded to {result.size}x{result.size}, "
        f"1 thread, median of {result.rounds} rounds",
        f"  full decode + resize   {result.full_img_s:8.2f} img/s",
        f"  draft decode + resize  {result.draft_img_s:8.2f} img/s   {result.ratio:.2f}x",
        f"  model pixels: mean |diff| {result.mean_abs_pixel_diff:.2f} / 255, "
        f"{result.differing_pixel_share:.1%} differ (pre-reduction keeps the short side over "
        f"{result.pre_reduction_margin} x {result.size} px)",
    ]
    if result.draft_scores is not None:
        caveat = "" if result.model_trained else ", untrained: random weights"
        model = f"{result.model_id}, {result.model_dtype}{caveat}"
        lines.append(_agreement_line(f"draft vs full ({model})", result.draft_scores))
        if result.gpu_path_scores is not None:
            lines.append(_agreement_line(f"GPU path on {result.gpu_path_device} vs full", result.gpu_path_scores))
    return lines
