"""A predictor that returns one fixed distribution: the model replaced by a constant.

For measuring the pipeline around the model (sources, decoding, sinks,
orchestration, memory) at sizes where running EAT would take hours. It has
the Predictor's interface, so any engine can run it in the model's place.
"""

from __future__ import annotations

import numpy as np

from eat_curate.scoring.predictor import Prediction

# A plausible, fixed distribution (mean 5.5): what the sinks store for every image.
CONSTANT_DISTRIBUTION = np.array([0.02, 0.04, 0.08, 0.14, 0.22, 0.22, 0.14, 0.08, 0.04, 0.02], dtype=np.float32)


class ConstantPredictor:
    def __init__(self, model_id: str = "constant@000000000000", input_size: int = 224) -> None:
        self.model_id = model_id
        self.input_size = input_size
        self.dtype_name = "none"

    def predict(self, pixels: np.ndarray) -> Prediction:
        count = len(pixels)
        probabilities = np.tile(CONSTANT_DISTRIBUTION, (count, 1))
        bins = np.arange(1, 11, dtype=np.float32)
        mean = float(CONSTANT_DISTRIBUTION @ bins)
        std = float(np.sqrt(CONSTANT_DISTRIBUTION @ (bins - mean) ** 2))
        return Prediction(probabilities, np.full(count, mean, np.float32), np.full(count, std, np.float32))


def build_constant_predictor(card: dict, weights: bytes, device: str, dtype: str) -> ConstantPredictor:
    """A predictor factory (see pipelines.ray_engine) that ignores the weights: for pipeline benchmarks."""
    return ConstantPredictor(model_id=f"{card['name']}@{card['sha256'][:12]}", input_size=int(card["architecture"]["image_size"]))
