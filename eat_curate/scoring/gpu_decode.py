"""JPEG decoding on the GPU (nvJPEG, through nvImageCodec or torchvision) for the GPU scoring path.

The CPU reads the bytes and the header (hash, dimensions, EXIF orientation and
capture time: no pixels); the GPU decodes a whole batch of JPEGs at once,
turns each upright, squashes it to the model's input by the one rule of
:mod:`eat_curate.io.resize` (average down by a power of two, then bicubic),
repeating Pillow's arithmetic bit for bit (:mod:`eat_curate.scoring.device_resize`),
and takes its perceptual hash there too. Which images it takes is a fixed
rule read from each file (:mod:`eat_curate.scoring.decode_path`: whole
baseline JPEGs); the others — other formats, progressive or CMYK JPEGs,
and files nvJPEG rejects after all — go through the CPU decoder
(:func:`eat_curate.io.decode.decode_image`), so every input still gets
exactly one result of the same kind.

The decoding itself is a backend's (:mod:`eat_curate.scoring.jpeg_backends`):
nvImageCodec on a CUDA device where it is installed (the ``gpu`` extra),
torchvision otherwise; ``backend_name`` says which. Should nvImageCodec
fail on a batch as a whole (not an image it refuses, which the CPU decodes
as usual), one warning says so and torchvision decodes that batch again
and every later one: no image is lost to a broken install.

Two ways in: :meth:`GpuJpegDecoder.decode` (bytes in, pixels as numpy
arrays out: the Ray engine's actors, benchmarks), and
:meth:`GpuJpegDecoder.decode_into`, which leaves the pixels on the device,
in rows of a buffer the in-process engine's pipeline hands over, and waits
for nothing there but nvJPEG itself.

The same class runs on the CPU with libjpeg-turbo, which is how its logic is
tested on machines without a GPU: there its pixels are exactly those of
``decode_image(data, draft=False)``. On a GPU they differ only where nvJPEG's
decoded pixels differ from libjpeg's. The CPU fallback decodes at full
resolution too unless ``draft`` is set: reduced-scale (draft) decoding
gives slightly different pixels, and a run should not score its baseline
and progressive JPEGs two different ways.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence

import torch

from eat_curate.io.decode import DecodedImage, ImageHeader, decode_image, read_header
from eat_curate.io.phash import phash_tensor
from eat_curate.scoring.decode_path import DEVICE_MODES, decodes_on_device
from eat_curate.scoring.device_resize import resize_batch_for_model
from eat_curate.scoring.jpeg_backends import (JpegBackend, JpegBackendWarning, TorchvisionBackend, choose_backend,
                                             one_line)

GPU_JPEG_MODES = DEVICE_MODES  # YCbCr and greyscale JPEGs; CMYK/YCCK go to the CPU (eat_curate.scoring.decode_path)
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


def encoded_tensor(data: bytes) -> torch.Tensor:
    """The bytes of an encoded image as the (L,) uint8 CPU tensor torchvision's decoder takes (a writable copy)."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


class GpuJpegDecoder:
    """Decodes batches of encoded images to (size, size, 3) uint8 model pixels, JPEGs on ``device``."""

    def __init__(self, size: int, device: torch.device | str = "cuda", draft: bool = False,
                 backend: JpegBackend | None = None) -> None:
        self.size = size
        self.device = torch.device(device)
        self.draft = draft  # for the CPU fallback only: nvJPEG always decodes at full size (see above)
        # nvImageCodec on a GPU where installed, else torchvision (always torchvision on a CPU).
        self.backend = backend if backend is not None else choose_backend(self.device)
        # Resizing images together pays on a GPU (H200, 256 2-MP images: 18 ms against 24 one by one)
        # and costs on a CPU (2 cores, 8 of them: 168 ms against 90), so a CPU resizes one at a time.
        self.resize_pixels = RESIZE_PIXELS if self.device.type == "cuda" else 0

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 images of one size -> (N, 3, S, S) uint8 model pixels."""
        return resize_batch_for_model(images, self.size)

    def _groups(self, images: Sequence[torch.Tensor]) -> list[list[int]]:
        """Indexes of ``images`` in groups resized together: one size each, about ``resize_pixels`` at most.

        On a GPU, images of one size (the usual case: one camera, one export)
        are resized together, a few at a time: one kernel launch for many
        images instead of one each, with the float copies kept to about
        ``resize_pixels``.
        """
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            by_size[tuple(image.shape)].append(index)
        groups = []
        for size, indexes in by_size.items():
            per_call = max(1, self.resize_pixels // (size[1] * size[2]))
            groups += [indexes[first : first + per_call] for first in range(0, len(indexes), per_call)]
        return groups

    def _resize_all(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, 3, S, S) uint8 model pixels of upright (3, H, W) images of any sizes, in their order."""
        resized = torch.empty((len(images), 3, self.size, self.size), dtype=torch.uint8, device=self.device)
        for group in self._groups(images):
            for index, pixels in zip(group, self._resize(torch.stack([images[i] for i in group]))):
                resized[index] = pixels
        return resized

    def _resize_into(self, images: Sequence[torch.Tensor], out: torch.Tensor) -> list[int]:
        """Model pixels of upright (3, H, W) images written into rows 0.. of ``out`` ((R, S, S, 3) uint8).

        Returns each image's row. Rows follow the resize groups, so each group
        lands in a slice: no index tensor, nothing copied from the host.
        """
        rows = [0] * len(images)
        filled = 0
        for group in self._groups(images):
            resized = self._resize(torch.stack([images[i] for i in group]))
            out[filled : filled + len(group)].copy_(resized.permute(0, 2, 3, 1))
            for offset, index in enumerate(group):
                rows[index] = filled + offset
            filled += len(group)
        return rows

    @property
    def backend_name(self) -> str:
        """The JPEG backend decoding now: "nvimagecodec" or "torchvision" (for benchmarks to print)."""
        return self.backend.name

    def _decode_on_device(self, encoded: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        """Decoded (3, H, W) uint8 tensors, None for those nvJPEG refuses.

        A backend other than torchvision that fails on the batch as a whole
        is dropped for the rest of the run, with one warning, and torchvision
        decodes the batch again.
        """
        try:
            return self.backend.decode(encoded)
        except Exception as error:
            if isinstance(self.backend, TorchvisionBackend):
                raise
            warnings.warn(f"{self.backend.name} failed on a batch ({one_line(error)}); "
                          "decoding JPEGs with torchvision from now on", JpegBackendWarning, stacklevel=2)
            self.backend = TorchvisionBackend(self.device)
            return self.backend.decode(encoded)

    def decode_into(self, encoded: Sequence[torch.Tensor], orientations: Sequence[int],
                    out: torch.Tensor) -> list[int | None]:
        """Decode JPEGs on the device into rows of ``out`` ((R, S, S, 3) uint8 there), each turned upright.

        ``encoded``: each file's bytes (:func:`encoded_tensor`), already
        chosen by :func:`~eat_curate.scoring.decode_path.decodes_on_device`.
        Returns each input's row in ``out`` (the rows used are 0 to the
        count decoded, in an order of the decoder's choosing), or None where
        nvJPEG refused the file: the caller decodes that one on the CPU.
        """
        decoded = self._decode_on_device(encoded)
        ready = [index for index, image in enumerate(decoded) if image is not None]
        upright = [upright_chw(decoded[index], orientations[index]) for index in ready]
        rows: list[int | None] = [None] * len(encoded)
        for index, row in zip(ready, self._resize_into(upright, out)):
            rows[index] = row
        return rows

    def decode(self, datas: Sequence[bytes], headers: Sequence[ImageHeader] | None = None) -> list[DecodedImage]:
        """One result per input, in order. ``headers``: already parsed by the reading threads, if at hand."""
        headers = list(headers) if headers is not None else [read_header(data) for data in datas]
        on_device = [i for i, header in enumerate(headers) if decodes_on_device(header, datas[i])]
        results: list[DecodedImage | None] = [None] * len(datas)
        if on_device:
            out = torch.empty((len(on_device), self.size, self.size, 3), dtype=torch.uint8, device=self.device)
            rows = self.decode_into([encoded_tensor(datas[i]) for i in on_device],
                                    [headers[i].orientation for i in on_device], out)
            count = sum(row is not None for row in rows)
            if count:
                # On the device: a Pillow pass per image took as long as the model. One transfer each.
                hashes = phash_tensor(out[:count].permute(0, 3, 1, 2)).tolist()
                arrays = out[:count].cpu().numpy()
                for i, row in zip(on_device, rows):
                    if row is not None:
                        facts = headers[i].facts
                        facts.pixels, facts.phash = arrays[row], hashes[row]
                        results[i] = facts
        for i, data in enumerate(datas):
            if results[i] is None:  # not a JPEG the GPU takes, or refused by nvJPEG: the CPU decoder decides
                results[i] = decode_image(data, size=self.size, draft=self.draft)
        return results
