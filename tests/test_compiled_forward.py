"""The predictor's compiled forward: off on a CPU (scores unchanged), at one fixed batch shape on a GPU.

Compiling the micro model takes minutes on a 2-core CPU, and on a CPU the
model's fused oneDNN kernels cannot be compiled at all; so here the eager
forward stands in for the compiled one to test the fixed-shape batching
around it, and the compiled forward itself is tested on a GPU.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.model.eat import score_moments
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning, padded_size
from eat_curate.scoring.preprocess import normalize_batch


def predictor_of(model_store, **options) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(model_store.load("micro"), **options)


def pixels(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)


def test_on_a_cpu_nothing_is_compiled_and_the_scores_are_the_plain_forwards(model_store):
    predictor = predictor_of(model_store, device="cpu", dtype="fp32")
    assert not predictor.compiled and not predictor_of(model_store, device="cpu", compile=None).compiled  # auto
    batch = pixels(5)
    with torch.inference_mode():
        distribution = predictor.model.distribution(predictor.model(normalize_batch(batch)))
        mean, std = score_moments(distribution)
    prediction = predictor.predict(batch)
    assert np.array_equal(prediction.probabilities, distribution.numpy())
    assert np.array_equal(prediction.mean, mean.numpy()) and np.array_equal(prediction.std, std.numpy())


@pytest.mark.parametrize("options", [{"compile": True}, {"cuda_graphs": True}])
def test_compiling_is_refused_on_a_cpu(model_store, options):
    with pytest.raises(ValueError, match="CUDA"):
        predictor_of(model_store, device="cpu", **options)


@pytest.mark.parametrize("flags", [["--compile"], ["--cuda-graphs"]])
def test_score_refuses_compiling_on_a_cpu_before_writing_anything(photo_folder, micro_model_path, tmp_path, flags):
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(cli, ["score", str(photo_folder), "--model", str(micro_model_path), "--out", str(out),
                                      "--device", "cpu", *flags])
    assert result.exit_code == 2 and "need a CUDA device" in result.output
    assert not out.exists()


def test_a_compiled_forward_runs_at_the_fixed_batch_size_whatever_it_is_given(model_store):
    predictor = predictor_of(model_store, device="cpu", dtype="fp32")
    reference = predictor.predict(pixels(9))
    shapes = []

    def compiled_stand_in(batch: torch.Tensor) -> torch.Tensor:
        shapes.append(len(batch))
        return predictor._pixel_scores(batch)

    predictor._compiled_scores = compiled_stand_in  # what torch.compile would have built
    predictor.use_batch_size(4)
    padded = predictor.predict(pixels(9))  # split into 4 + 4 + 1, the last padded to 4
    assert shapes == [4, 4, 4]
    assert np.allclose(padded.probabilities, reference.probabilities, atol=1e-6)
    assert padded.mean.shape == (9,)


def test_without_a_fixed_batch_size_the_shapes_are_powers_of_two():
    assert [padded_size(count, None) for count in (1, 2, 3, 5, 8, 200)] == [1, 2, 4, 8, 8, 256]
    assert padded_size(3, 16) == 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_on_a_gpu_the_compiled_forward_scores_as_the_eager_one(model_store, cuda_graphs):
    eager = predictor_of(model_store, device="cuda", dtype="fp32", compile=False)
    compiled = predictor_of(model_store, device="cuda", dtype="fp32", cuda_graphs=cuda_graphs)
    compiled.use_batch_size(8)
    batch = pixels(11)
    assert np.allclose(compiled.predict(batch).mean, eager.predict(batch).mean, atol=1e-3)
