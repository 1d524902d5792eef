"""The batch predictor and the one preprocessing function."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning, resolve_dtype
from eat_curate.io.resize import resize_for_model
from eat_curate.scoring.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize_batch, preprocess


@pytest.fixture(scope="module")
def predictor(model_store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(model_store.load("micro"), device="cpu", dtype="fp32")


def pixels(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)


def test_resize_squashes_to_the_model_size_without_keeping_aspect():
    image = Image.new("RGB", (400, 100), (255, 0, 0))
    out = resize_for_model(image, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 255).all()


def test_greyscale_and_alpha_inputs_become_rgb():
    assert resize_for_model(Image.new("L", (50, 50), 128)).shape == (224, 224, 3)
    assert resize_for_model(Image.new("RGBA", (50, 50)), 32).shape == (32, 32, 3)


def test_normalisation_uses_imagenet_statistics():
    grey = np.full((1, 2, 2, 3), 128, dtype=np.uint8)
    out = normalize_batch(grey)
    expected = [(128 / 255 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert out.shape == (1, 3, 2, 2)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor(expected), atol=1e-5)


def test_preprocess_is_resize_then_normalise():
    image = Image.fromarray(pixels(1)[0])
    assert torch.allclose(preprocess(image), normalize_batch(resize_for_model(image)[None])[0])


def test_predictions_are_distributions_with_moments(predictor):
    result = predictor.predict(pixels(5))
    assert result.probabilities.shape == (5, 10) and result.probabilities.dtype == np.float32
    assert np.allclose(result.probabilities.sum(axis=1), 1, atol=1e-5)
    bins = np.arange(1, 11)
    assert np.allclose(result.mean, result.probabilities @ bins, atol=1e-4)
    assert np.allclose(result.std, np.sqrt((result.probabilities * (bins - result.mean[:, None]) ** 2).sum(1)), atol=1e-4)


def test_an_image_scores_the_same_whatever_its_batch(predictor):
    batch = pixels(9, seed=1)
    together = predictor.predict(batch)
    one_by_one = [predictor.predict(batch[i : i + 1]).mean[0] for i in range(9)]
    assert np.allclose(together.mean, one_by_one, atol=1e-5)


def test_wrong_pixel_shape_is_refused(predictor):
    with pytest.raises(ValueError, match="takes"):
        predictor.predict(np.zeros((1, 100, 100, 3), dtype=np.uint8))
    assert len(predictor.predict(np.zeros((0, 224, 224, 3), dtype=np.uint8))) == 0


def test_untrained_models_warn_every_time(model_store):
    for _ in range(2):
        with pytest.warns(UntrainedModelWarning, match="untrained"):
            Predictor(model_store.load("micro"), device="cpu")


def test_model_id_names_the_weights(predictor, model_store):
    assert predictor.model_id == model_store.card("micro").model_id
    assert predictor.model_id.startswith("micro@")


def test_dtype_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype("fp32", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("auto", cpu) in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("fp8", cpu)


def test_bf16_predictor_stays_close_to_fp32(model_store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        full = Predictor(model_store.load("micro"), device="cpu", dtype="fp32").predict(pixels(4, 2))
        low = Predictor(model_store.load("micro"), device="cpu", dtype="bf16").predict(pixels(4, 2))
    assert np.abs(full.mean - low.mean).mean() < 0.01
