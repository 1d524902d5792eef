"""JPEG decoding on the GPU (nvJPEG through ``torchvision.io.decode_jpeg``) for the GPU scoring path.

The CPU reads the bytes and the header (hash, dimensions, EXIF orientation and
capture time: no pixels); the GPU decodes a whole batch of JPEGs at once,
turns each upright, squashes it to the model's input by the one rule of
:mod:`eat_curate.io.resize` (average down by a power of two, then bicubic),
repeating Pillow's arithmetic bit for bit (:mod:`eat_curate.scoring.device_resize`),
and takes its perceptual hash there too. Anything the GPU path does not
take — other formats, CMYK JPEGs, files nvJPEG rejects — goes through the
CPU decoder (:func:`eat_curate.io.decode.decode_image`), so every input
still gets exactly one result of the same kind.

The same class runs on the CPU with libjpeg-turbo, which is how its logic is
tested on machines without a GPU: there its pixels are exactly those of
``decode_image(data, draft=False)``. On a GPU they differ only where nvJPEG's
decoded pixels differ from libjpeg's. The CPU fallback decodes at full
resolution too unless ``draft`` is set: reduced-scale (draft) decoding
gives slightly different pixels, and a run should not score its baseline
and progressive JPEGs two different ways.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from eat_curate.io.decode import DecodedImage, ImageHeader, decode_image, read_header
from eat_curate.io.phash import phash_batch
from eat_curate.scoring.device_resize import resize_batch_for_model

GPU_JPEG_MODES = ("RGB", "L")  # YCbCr and greyscale JPEGs; CMYK/YCCK go to the CPU
RESIZE_PIXELS = 32_000_000  # decoded pixels resized in one call: at most about 770 MB of float64 on the device


def upright_chw(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """A (C, H, W) image turned upright by EXIF orientation (as Pillow's ImageOps.exif_transpose)."""
    height, width = 1, 2
    if orientation == 2:
        return image.flip(width)
    if orientation == 3:
        return image.flip(height, width)
    if orientation == 4:
        return image.flip(height)
    if orientation == 5:
        return image.transpose(height, width)
    if orientation == 6:
        return image.rot90(-1, dims=(height, width))
    if orientation == 7:
        return image.transpose(height, width).flip(height, width)
    if orientation == 8:
        return image.rot90(1, dims=(height, width))
    return image


class GpuJpegDecoder:
    """Decodes batches of encoded images to (size, size, 3) uint8 model pixels, JPEGs on ``device``."""

    def __init__(self, size: int, device: torch.device | str = "cuda", draft: bool = False) -> None:
        import torchvision.io

        self.size = size
        self.device = torch.device(device)
        self.draft = draft  # for the CPU fallback only: nvJPEG always decodes at full size (see above)
        self._decode_jpeg = torchvision.io.decode_jpeg
        self._rgb = torchvision.io.ImageReadMode.RGB
        # Resizing images together pays on a GPU (H200, 256 2-MP images: 18 ms against 24 one by one)
        # and costs on a CPU (2 cores, 8 of them: 168 ms against 90), so a CPU resizes one at a time.
        self.resize_pixels = RESIZE_PIXELS if self.device.type == "cuda" else 0

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 images of one size -> (N, 3, S, S) uint8 model pixels."""
        return resize_batch_for_model(images, self.size)

    def _resize_all(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, 3, S, S) uint8 model pixels of upright (3, H, W) images of any sizes.

        On a GPU, images of one size (the usual case: one camera, one export)
        are resized together, a few at a time: one kernel launch for many
        images instead of one each, with the float copies kept to about
        ``resize_pixels``.
        """
        resized = torch.empty((len(images), 3, self.size, self.size), dtype=torch.uint8, device=self.device)
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            by_size[tuple(image.shape)].append(index)
        for size, indexes in by_size.items():
            per_call = max(1, self.resize_pixels // (size[1] * size[2]))
            for first in range(0, len(indexes), per_call):
                group = indexes[first : first + per_call]
                resized[group] = self._resize(torch.stack([images[i] for i in group]))
        return resized

    def _decode_on_device(self, datas: Sequence[bytes]) -> list[torch.Tensor | None]:
        """Decoded (3, H, W) uint8 tensors, None for those nvJPEG refuses."""
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        try:
            return list(self._decode_jpeg(tensors, mode=self._rgb, device=self.device))
        except RuntimeError:  # one bad file fails the whole batch call: retry one by one
            decoded = []
            for tensor in tensors:
                try:
                    decoded.append(self._decode_jpeg(tensor, mode=self._rgb, device=self.device))
                except RuntimeError:
                    decoded.append(None)
            return decoded

    def decode(self, datas: Sequence[bytes], headers: Sequence[ImageHeader] | None = None) -> list[DecodedImage]:
        """One result per input, in order. ``headers``: already parsed by the reading threads, if at hand."""
        headers = list(headers) if headers is not None else [read_header(data) for data in datas]
        on_device = [
            i for i, header in enumerate(headers)
            if header.facts.ok and header.facts.format == "JPEG" and header.mode in GPU_JPEG_MODES
        ]
        results: list[DecodedImage | None] = [None] * len(datas)
        if on_device:
            decoded = self._decode_on_device([datas[i] for i in on_device])
            ready = [(i, image) for i, image in zip(on_device, decoded) if image is not None]
            if ready:
                pixels = self._resize_all([upright_chw(image, headers[i].orientation) for i, image in ready])
                hashes = phash_batch(pixels)  # on the device: a Pillow pass per image took as long as the model
                arrays = pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # one transfer for the batch
                for (i, _), array, perceptual in zip(ready, arrays, hashes):
                    facts = headers[i].facts
                    facts.pixels, facts.phash = array, perceptual
                    results[i] = facts
        for i, data in enumerate(datas):
            if results[i] is None:  # not a JPEG the GPU takes, or refused by nvJPEG: the CPU decoder decides
                results[i] = decode_image(data, size=self.size, draft=self.draft)
        return results

