"""The perceptual hash computed on the device (the GPU path) equals the CPU's, bit for bit.

The device hash (``phash_tensor``) never leaves the device until the
scores do; here the device is the CPU, the arithmetic the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eat_curate.io.phash import phash, phash_tensor
from eat_curate.samples.generated import landscape

SIZE = 224


def pictures() -> list[np.ndarray]:
    """Model-sized pixels of every kind a run meets: photos, noise, flat fields, a gradient."""
    rng = np.random.default_rng(7)
    photos = [np.asarray(landscape(seed, (SIZE, SIZE))) for seed in range(8)]
    noise = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(4)]
    flat = [np.full((SIZE, SIZE, 3), value, dtype=np.uint8) for value in (0, 77, 255)]
    gradient = np.broadcast_to(np.linspace(0, 255, SIZE, dtype=np.uint8)[None, :, None], (SIZE, SIZE, 3)).copy()
    return photos + noise + flat + [gradient]


def as_device_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """(N, 3, H, W) uint8: a channels-last view, as the pipeline's buffers hold the model's pixels."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def test_the_device_hash_equals_the_cpu_hash_bit_for_bit():
    arrays = pictures()
    on_device = phash_tensor(as_device_batch(arrays))
    assert on_device.dtype == torch.int64 and on_device.shape == (len(arrays),)
    assert on_device.tolist() == [phash(Image.fromarray(array)) for array in arrays]


def test_the_sign_bit_is_the_first_coefficients_bit():
    hashes = phash_tensor(as_device_batch(pictures())).tolist()
    assert any(value < 0 for value in hashes) and any(value > 0 for value in hashes)


@pytest.mark.parametrize("count", [0, 1, 5])
def test_a_hash_does_not_depend_on_its_batch(count):
    arrays = pictures()
    alone = [phash_tensor(as_device_batch([array])).item() for array in arrays[:count]]
    assert phash_tensor(as_device_batch(arrays)[:count]).tolist() == alone


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_device_hash_equals_the_cpu_hash():
    arrays = pictures()
    assert phash_tensor(as_device_batch(arrays).cuda()).tolist() == [phash(Image.fromarray(a)) for a in arrays]
