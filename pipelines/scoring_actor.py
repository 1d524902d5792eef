"""The Ray engine's scoring stage: a callable class that Ray Data runs as a pool of actors.

Its ``__init__`` builds the predictor once per actor (one model on one
device, compiled or not and fixed at the run's batch size, as the in-process
engine's), and, for GPU decoding, a full-size ``GpuJpegDecoder``; its
``__call__`` scores one batch of decoded (or read) rows, giving the model
only the rows that decoded. The weights come through the object store, put
once by the driver: an actor that Ray restarts (its process killed, its node
lost) runs ``__init__`` again and fetches them again, and Ray Data retries
the batches it held.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from eat_curate.model.card import ModelCard
from eat_curate.model.checkpoint import load_model_bytes
from eat_curate.records import NUM_BINS
from pipelines.block_columns import decode_read_rows, decoded_ok, pixels_of, scored_rows


def build_predictor(card: dict, weights: bytes, device: str, dtype: str, compile: bool | None = False,
                    cuda_graphs: bool = False):
    """The default predictor factory: EAT from the card and weights bytes (runs on the actor).

    ``compile``/``cuda_graphs``: as the in-process engine's ``--compile``/``--cuda-graphs`` (the engine
    binds them; a factory is called with the card, weights, device and dtype).
    """
    import warnings

    from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning

    loaded = load_model_bytes(ModelCard.from_dict(card), weights)
    with warnings.catch_warnings():
        # The driver already warned the user once for this run.
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(loaded, device=device, dtype=dtype, compile=compile, cuda_graphs=cuda_graphs)


class ScoringActor:
    """Holds one predictor for the whole run; scores decoded rows (or read rows, decoding them on its device)."""

    def __init__(self, factory: Callable, card: dict, weights: list, device: str, dtype: str,
                 threads: int | None, gpu_decode: bool, batch_size: int) -> None:
        """``weights``: [an object reference to the weights' bytes] (in a list, so Ray passes it unresolved)."""
        import ray

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.predictor = factory(card, ray.get(weights[0]), device, dtype)
        if hasattr(self.predictor, "use_batch_size"):
            # A compiled forward is traced once, at the run's batch size (Ray Data's batches are that size,
            # but for the last): smaller batches are padded to it, as in the in-process engine.
            self.predictor.use_batch_size(batch_size)
        self.decoder = None
        if gpu_decode:
            from eat_curate.scoring.gpu_decode import GpuJpegDecoder

            # At full size, as the in-process engine's --gpu-decode: nvJPEG has no reduced-scale decode, and
            # the JPEGs it leaves to the CPU (progressive, CMYK) must be scored as the others are.
            self.decoder = GpuJpegDecoder(self.predictor.input_size, self.predictor.device)

    def __call__(self, rows: pa.Table) -> pa.Table:
        if self.decoder is not None:
            rows = decode_read_rows(rows, self.decoder, self.predictor.input_size)
        ok = decoded_ok(rows)
        if not ok.any():  # a batch of error rows only: nothing for the model, as in the in-process engine
            nothing = np.zeros((0,), dtype=np.float32)
            return scored_rows(rows, ok, nothing.reshape(0, NUM_BINS), nothing, nothing)
        prediction = self.predictor.predict(pixels_of(rows)[ok])  # images that failed to decode are not scored
        return scored_rows(rows, ok, prediction.probabilities, prediction.mean, prediction.std)
