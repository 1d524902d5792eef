"""The GPU path's JPEG backends (eat_curate.scoring.jpeg_backends), here on the CPU.

torchvision runs for real (libjpeg-turbo standing in for nvJPEG). nvImageCodec
needs a GPU, so its backend runs against a stand-in module with the documented
Python API of ``nvidia.nvimgcodec`` (0.5 and later): ``Decoder(device_id=...,
backends=[Backend(kind)], options=...)``, ``DecodeParams(color_spec=...,
apply_exif_orientation=...)`` (orientation applied unless told not to),
``decode(list, params=..., cuda_stream=...)`` answering None in the place of
each file it cannot decode. The stand-in decodes with Pillow and hands back
HWC arrays, as the real one hands back HWC images through
``__cuda_array_interface__`` on a GPU.
"""

from __future__ import annotations

import enum
import io
import sys
import types
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torchvision.io
from PIL import Image, ImageOps

from conftest import make_photo
from eat_curate.scoring.gpu_decode import GpuJpegDecoder, encoded_tensor
from eat_curate.scoring.jpeg_backends import (
    JpegBackendWarning,
    NvImageCodecBackend,
    TorchvisionBackend,
    choose_backend,
    preferred_backend,
)


def jpeg(size: tuple[int, int] = (50, 30), seed: int = 0, mode: str = "RGB", orientation: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    picture = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))  # 2-D: grey ("L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


BROKEN = b"\xff\xd8\xff\xe0 not a JPEG after its first marker"


def stored_rgb_chw(data: bytes) -> np.ndarray:
    """Pillow's RGB pixels of ``data`` as stored (no EXIF turn), (3, H, W)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).transpose(2, 0, 1)


# --- a stand-in for nvidia.nvimgcodec ---------------------------------------------------------------


class ColorSpec(enum.Enum):
    UNCHANGED = 0
    SRGB = 1
    GRAY = 2


class BackendKind(enum.Enum):
    CPU_ONLY = 1
    GPU_ONLY = 2
    HYBRID_CPU_GPU = 3
    HW_GPU_ONLY = 4


@dataclass
class Backend:
    backend_kind: BackendKind
    load_hint: float = 1.0


@dataclass
class DecodeParams:
    apply_exif_orientation: bool = True
    color_spec: ColorSpec = ColorSpec.SRGB
    allow_any_depth: bool = False


class Decoder:
    """nvImageCodec's batch decoder as documented, decoding with Pillow on the host."""

    grey_as_one_channel = False  # a grey JPEG handed back as (H, W, 1)

    def __init__(self, device_id: int = -1, max_num_cpu_threads: int = 0, backends=None, options: str = "") -> None:
        self.backends = backends
        self.calls: list[dict] = []
        made.append(self)

    def decode(self, srcs, *, params: DecodeParams | None = None, cuda_stream: int = 0) -> list:
        self.calls.append({"count": len(srcs), "params": params, "cuda_stream": cuda_stream})
        return [self.decode_one(np.asarray(src).tobytes(), params or DecodeParams()) for src in srcs]

    def decode_one(self, data: bytes, params: DecodeParams):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                if params.apply_exif_orientation:
                    image = ImageOps.exif_transpose(image)
                if not (self.grey_as_one_channel and image.mode == "L"):
                    image = image.convert("RGB")
                pixels = np.array(image)
        except OSError:
            return None
        return pixels[..., None] if pixels.ndim == 2 else pixels


class DecoderOfVersion04(Decoder):
    """nvImageCodec 0.3 and 0.4: failed files left out of the list instead of None in their place."""

    def decode(self, srcs, **kwargs) -> list:
        return [image for image in super().decode(srcs, **kwargs) if image is not None]


class DecoderWithoutNvJpeg(Decoder):
    """An install whose nvJPEG library is missing: it loads, makes decoders, and decodes nothing."""

    def decode(self, srcs, **kwargs) -> list:
        return [None] * len(srcs)


class DecoderThatBreaks(Decoder):
    """Decodes the test picture at its start, then fails on every batch (the GPU out of memory, say)."""

    def decode(self, srcs, **kwargs) -> list:
        if self.calls:
            self.calls.append({"count": len(srcs)})
            raise RuntimeError("nvJPEG status 5:\nallocator failure")
        return super().decode(srcs, **kwargs)


class DecoderWithoutDriver(Decoder):
    """What nvImageCodec does on a machine whose CUDA driver it cannot use: the decoder is not made."""

    def __init__(self, **kwargs) -> None:
        raise RuntimeError("CUDA Runtime failure: '#35'")


made: list[Decoder] = []


def stand_in(decoder: type[Decoder] = Decoder) -> types.ModuleType:
    module = types.ModuleType("nvidia.nvimgcodec")
    module.ColorSpec, module.BackendKind, module.Backend = ColorSpec, BackendKind, Backend
    module.DecodeParams, module.Decoder = DecodeParams, decoder
    return module


@pytest.fixture
def nvimgcodec(monkeypatch):
    """``nvidia.nvimgcodec`` importable, as the stand-in; returns a function to swap in another decoder."""
    made.clear()

    def install(decoder: type[Decoder] = Decoder) -> types.ModuleType:
        module = stand_in(decoder)
        monkeypatch.setitem(sys.modules, "nvidia.nvimgcodec", module)
        return module

    install()
    return install


def backend_warnings(warned) -> list[str]:
    return [str(warning.message) for warning in warned if issubclass(warning.category, JpegBackendWarning)]


# --- torchvision ------------------------------------------------------------------------------------


def test_torchvision_decodes_the_good_files_of_a_batch_holding_a_broken_one():
    datas = [jpeg(seed=1), jpeg((40, 60), seed=2), BROKEN, jpeg(seed=3)]
    decoded = TorchvisionBackend("cpu").decode([encoded_tensor(data) for data in datas])
    assert decoded[2] is None
    for data, image in zip(datas[:2] + datas[3:], decoded[:2] + decoded[3:]):
        alone = torchvision.io.decode_jpeg(encoded_tensor(data), mode=torchvision.io.ImageReadMode.RGB)
        assert image.dtype == torch.uint8 and image.shape == alone.shape and image.shape[0] == 3
        assert torch.equal(image, alone)


# --- nvImageCodec, through the stand-in --------------------------------------------------------------


def test_nvimagecodec_gives_rgb_chw_tensors_as_stored_and_none_where_a_file_fails(nvimgcodec):
    datas = [jpeg((50, 30), seed=1, orientation=6), BROKEN, jpeg((20, 10), seed=2, mode="L")]
    decoded = NvImageCodecBackend("cpu").decode([encoded_tensor(data) for data in datas])
    assert decoded[1] is None
    turned, grey = decoded[0], decoded[2]
    assert turned.dtype == torch.uint8 and turned.shape == (3, 30, 50)  # not turned: upright_chw does that
    assert np.array_equal(turned.numpy(), stored_rgb_chw(datas[0]))
    assert grey.shape == (3, 10, 20) and np.array_equal(grey.numpy(), stored_rgb_chw(datas[2]))


def test_nvimagecodec_makes_rgb_of_a_grey_picture_handed_back_with_one_channel(nvimgcodec):
    nvimgcodec(type("GreyDecoder", (Decoder,), {"grey_as_one_channel": True}))
    data = jpeg((20, 10), seed=2, mode="L")
    (grey,) = NvImageCodecBackend("cpu").decode([encoded_tensor(data)])
    assert grey.shape == (3, 10, 20) and np.array_equal(grey.numpy(), stored_rgb_chw(data))


def test_nvimagecodec_is_asked_for_its_gpu_decoders_only(nvimgcodec):
    NvImageCodecBackend("cpu")
    (decoder,) = made
    kinds = {backend.backend_kind for backend in decoder.backends}
    assert kinds == {BackendKind.GPU_ONLY, BackendKind.HYBRID_CPU_GPU, BackendKind.HW_GPU_ONLY}


def test_nvimagecodec_before_0_5_dropping_failed_files_fails_the_batch_rather_than_mismatch_it(nvimgcodec):
    nvimgcodec(DecoderOfVersion04)
    backend = NvImageCodecBackend("cpu")
    with pytest.raises(RuntimeError, match="before 0.5"):
        backend.decode([encoded_tensor(jpeg(seed=1)), encoded_tensor(BROKEN), encoded_tensor(jpeg(seed=2))])


def test_nvimagecodec_that_cannot_decode_its_test_picture_is_not_used(nvimgcodec):
    nvimgcodec(DecoderWithoutNvJpeg)
    with pytest.raises(RuntimeError, match="did not decode a test JPEG"):
        NvImageCodecBackend("cpu")


# --- which backend --------------------------------------------------------------------------------


def test_a_cpu_device_always_decodes_with_torchvision(nvimgcodec):
    assert preferred_backend("cpu") == "torchvision"
    assert choose_backend("cpu").name == "torchvision"
    assert GpuJpegDecoder(224, "cpu").backend_name == "torchvision"
    assert made == []  # nvImageCodec not even tried


def test_a_cuda_device_prefers_nvimagecodec_where_it_is_installed(nvimgcodec, monkeypatch):
    assert preferred_backend("cuda") == "nvimagecodec"
    assert preferred_backend(torch.device("cuda", 1)) == "nvimagecodec"
    monkeypatch.setitem(sys.modules, "nvidia.nvimgcodec", None)  # not installed
    assert preferred_backend("cuda") == "torchvision"


def test_nvimagecodec_installed_but_unusable_on_a_gpu_warns_once_and_torchvision_decodes(nvimgcodec):
    nvimgcodec(DecoderWithoutDriver)
    with pytest.warns(JpegBackendWarning) as warned:
        backend = choose_backend("cuda")
    assert backend.name == "torchvision" and backend.device == torch.device("cuda")
    (warning,) = backend_warnings(warned)
    assert "CUDA Runtime failure" in warning


# --- nvImageCodec failing in the middle of a run ------------------------------------------------------


def test_a_batch_nvimagecodec_fails_on_is_decoded_again_by_torchvision_and_so_is_the_rest(nvimgcodec, tmp_path):
    nvimgcodec(DecoderThatBreaks)
    datas = [make_photo(tmp_path / f"p{i}.jpg", size=(320 + 40 * i, 240), seed=i, quality=90).read_bytes()
             for i in range(3)]
    decoder = GpuJpegDecoder(224, "cpu", backend=NvImageCodecBackend("cpu"))
    assert decoder.backend_name == "nvimagecodec"
    with pytest.warns(JpegBackendWarning) as warned:
        results = decoder.decode(datas)
    (warning,) = backend_warnings(warned)
    assert "allocator failure" in warning and "\n" not in warning  # one line
    assert decoder.backend_name == "torchvision"
    expected = GpuJpegDecoder(224, "cpu", backend=TorchvisionBackend("cpu")).decode(datas)
    for result, reference in zip(results, expected):
        assert result.ok and np.array_equal(result.pixels, reference.pixels) and result.phash == reference.phash
    (broken,) = made
    calls = len(broken.calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error", JpegBackendWarning)
        decoder.decode(datas)  # later batches: torchvision straight away, nothing more to warn about
    assert len(broken.calls) == calls
