"""The device's JPEG decoders: a batch of encoded files in, (3, H, W) uint8 RGB tensors out, None per refusal.

The GPU path (:mod:`eat_curate.scoring.gpu_decode`) decodes whole batches of
baseline JPEGs on the device through one of two backends, both nvJPEG
underneath:

- ``torchvision``: ``torchvision.io.decode_jpeg`` on a list. One bad file
  fails the whole batch call, so the batch is then decoded again one file
  at a time. Always there; on a CPU device it is libjpeg-turbo, which is
  how the GPU path's logic is tested without a GPU.
- ``nvimagecodec``: NVIDIA's nvImageCodec (``from nvidia import
  nvimgcodec``; the ``gpu`` extra installs it), whose batch call answers
  None in the place of each file it cannot decode and still decodes the
  others (0.5.0 and later; 0.3 and 0.4 left the failed ones out of the
  list instead, so a list of another length is taken as a failure of the
  whole call). Its decoders are limited to the GPU ones (CUDA, hybrid and
  the hardware JPEG engine): a file they refuse goes to the project's CPU
  decoder, as with torchvision, rather than to nvImageCodec's own CPU codecs.

Both return what the rest of the path expects: RGB, 8-bit, stored
orientation (EXIF orientation is applied afterwards, by
:func:`~eat_curate.scoring.gpu_decode.upright_chw`), on the decoder's device,
ready for work queued on the current CUDA stream after the call.

:func:`choose_backend` picks nvImageCodec on a CUDA device where it imports
and decodes a test picture, torchvision otherwise.
"""

from __future__ import annotations

import importlib
import io
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

import torch

NVIMGCODEC_MODULE = "nvidia.nvimgcodec"


class JpegBackendWarning(RuntimeWarning):
    """The preferred JPEG backend could not be used: the GPU path goes on with torchvision."""


class JpegBackend(Protocol):
    """Decodes encoded JPEGs on ``device``."""

    name: str
    device: torch.device

    def decode(self, encoded: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        """(3, H, W) uint8 RGB tensors on ``device`` for (L,) uint8 CPU tensors of file bytes; None where refused."""


class TorchvisionBackend:
    """``torchvision.io.decode_jpeg`` on the whole batch, then one file at a time if the batch call fails."""

    name = "torchvision"

    def __init__(self, device: torch.device | str) -> None:
        import torchvision.io

        self.device = torch.device(device)
        self._decode_jpeg = torchvision.io.decode_jpeg
        self._rgb = torchvision.io.ImageReadMode.RGB

    def decode(self, encoded: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        try:
            return list(self._decode_jpeg(list(encoded), mode=self._rgb, device=self.device))
        except RuntimeError:  # one bad file fails the whole batch call: retry one by one
            decoded = []
            for tensor in encoded:
                try:
                    decoded.append(self._decode_jpeg(tensor, mode=self._rgb, device=self.device))
                except RuntimeError:
                    decoded.append(None)
            return decoded


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line, for a warning."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def nvimgcodec_module() -> ModuleType | None:
    """``nvidia.nvimgcodec`` if it is installed, else None (a broken install raises: it is not 'absent')."""
    try:
        return importlib.import_module(NVIMGCODEC_MODULE)
    except ModuleNotFoundError as error:
        if error.name in ("nvidia", NVIMGCODEC_MODULE):
            return None
        raise


def probe_jpeg() -> bytes:
    """A small baseline JPEG that any working nvJPEG decodes: :class:`NvImageCodecBackend` tries it first."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 120, 40)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class NvImageCodecBackend:
    """nvImageCodec's batched decoder, restricted to its GPU backends, in stream order with torch.

    Built only where it works: the constructor decodes :func:`probe_jpeg`
    and raises if that fails (an install without nvJPEG, say), so that
    :func:`choose_backend` can use torchvision instead of sending every
    image to the CPU.
    """

    name = "nvimagecodec"

    def __init__(self, device: torch.device | str, module: ModuleType | None = None) -> None:
        self.device = torch.device(device)
        codec = module if module is not None else importlib.import_module(NVIMGCODEC_MODULE)
        kinds = codec.BackendKind
        gpu_kinds = [kinds.GPU_ONLY, kinds.HYBRID_CPU_GPU, kinds.HW_GPU_ONLY]  # not CPU_ONLY: see the module
        device_id = {} if self.device.index is None else {"device_id": self.device.index}  # None: the current one
        # Chroma upsampling pinned (0.5's default; later versions leave it to each codec): the same pixels
        # whatever the version installed.
        self._decoder = codec.Decoder(backends=[codec.Backend(kind) for kind in gpu_kinds],
                                      options=":fancy_upsampling=0", **device_id)
        # RGB whatever the file's colour model (ColorSpec.RGB up to 0.5, SRGB in later versions); the
        # pixels as stored, since EXIF orientation is applied by default: the project turns them upright itself.
        rgb = codec.ColorSpec.SRGB if hasattr(codec.ColorSpec, "SRGB") else codec.ColorSpec.RGB
        self._params = codec.DecodeParams(color_spec=rgb, apply_exif_orientation=False)
        probe = self.decode([torch.frombuffer(bytearray(probe_jpeg()), dtype=torch.uint8)])[0]
        if probe is None or tuple(probe.shape) != (3, 16, 32):
            raise RuntimeError("nvImageCodec did not decode a test JPEG (is nvJPEG installed for its CUDA version?)")

    def _stream(self) -> int:
        """The current torch stream's handle (0, the legacy default stream, off CUDA)."""
        return torch.cuda.current_stream(self.device).cuda_stream if self.device.type == "cuda" else 0

    def decode(self, encoded: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        # Decoding synchronises with the stream passed: it starts after the work already queued there
        # and makes that stream wait for the decoded pixels. That is torch's current stream (the
        # engine's prep stream), so whatever the caller queues next reads finished pixels, and no
        # host synchronisation is needed. The files go in as uint8 numpy arrays (no copy).
        images = self._decoder.decode([tensor.numpy() for tensor in encoded], params=self._params,
                                      cuda_stream=self._stream())
        if len(images) != len(encoded):  # nvImageCodec before 0.5 left failed files out: no way to match them up
            raise RuntimeError(f"nvImageCodec returned {len(images)} images for {len(encoded)} files "
                               "(a version before 0.5?)")
        return [self._chw(image) for image in images]

    def _chw(self, image) -> torch.Tensor | None:
        """A (3, H, W) uint8 tensor of its own from a decoded HWC image; None for anything but 8-bit RGB."""
        if image is None:
            return None
        hwc = torch.as_tensor(image, device=self.device)  # __cuda_array_interface__: a view, keeping the image alive
        if hwc.dtype != torch.uint8 or hwc.dim() != 3 or hwc.shape[2] not in (1, 3):
            return None  # not what was asked for: the CPU decoder decides
        if hwc.shape[2] == 1:  # grey left grey: RGB is the grey value three times (as torchvision and Pillow give)
            hwc = hwc.expand(-1, -1, 3)
        # A copy of torch's own, queued on the current stream after the decode. The image's buffer goes with
        # the view: nvImageCodec frees it on the stream it decoded on (this one) or with a synchronising cudaFree.
        return hwc.permute(2, 0, 1).contiguous()


def preferred_backend(device: torch.device | str) -> str:
    """The backend :func:`choose_backend` tries first: nvImageCodec on a CUDA device where it is installed."""
    if torch.device(device).type == "cuda" and nvimgcodec_module() is not None:
        return NvImageCodecBackend.name
    return TorchvisionBackend.name


def choose_backend(device: torch.device | str) -> JpegBackend:
    """The JPEG backend for ``device``: nvImageCodec where preferred and working, else torchvision.

    Installing the ``gpu`` extra is the opt-in; if nvImageCodec is installed
    but cannot decode, one warning says why and torchvision decodes instead.
    """
    device = torch.device(device)
    try:
        if preferred_backend(device) == NvImageCodecBackend.name:
            return NvImageCodecBackend(device)
    except Exception as error:  # a broken install must not stop the run: torchvision does the same work
        warnings.warn(f"nvImageCodec unusable ({one_line(error)}); decoding JPEGs with torchvision",
                      JpegBackendWarning, stacklevel=2)
    return TorchvisionBackend(device)
