"""The batched JPEG decoder of the GPU path, run on the CPU (same code, torchvision's CPU decoder).

On a CUDA machine the same class decodes with nvJPEG; scripts/gpu_check.py
runs it there.
"""

import io
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageOps

from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.io.decode import decode_image, read_header
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.gpu_decode import GpuJpegDecoder, upright_chw
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from eat_curate.scoring.progress import Progress
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.io.sources import iter_items
from hostile_files import write_hostile_folder


def jpeg_with_orientation(orientation: int) -> bytes:
    rng = np.random.default_rng(orientation)
    picture = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_matches_pillows_exif_transpose(orientation):
    data = jpeg_with_orientation(orientation)
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        stored = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    turned = upright_chw(stored, orientation).permute(1, 2, 0).numpy()
    assert turned.shape == expected.shape and np.array_equal(turned, expected)


def test_batch_decode_agrees_with_the_cpu_decoder(tmp_path):
    paths = [make_photo(tmp_path / f"p{i}.jpg", size=(400 + 40 * i, 300), seed=i, quality=92) for i in range(4)]
    datas = [path.read_bytes() for path in paths] + [jpeg_with_orientation(6)]
    batch = GpuJpegDecoder(224, "cpu").decode(datas)
    for data, result in zip(datas, batch):
        reference = decode_image(data, 224, draft=False)
        assert result.ok and result.pixels.shape == (224, 224, 3)
        assert np.abs(result.pixels.astype(int) - reference.pixels.astype(int)).mean() < 2.0
        for field in ("content_hash", "bytes", "width", "height", "oriented_width", "oriented_height", "format"):
            assert getattr(result, field) == getattr(reference, field), field
        assert bin((result.phash ^ reference.phash) & (2**64 - 1)).count("1") <= 6


def test_images_of_one_size_are_resized_together_with_the_same_pixels_as_one_by_one():
    generator = torch.Generator().manual_seed(0)
    sizes = [(300, 400), (300, 400), (500, 260), (300, 400), (500, 260), (300, 400), (300, 400)]
    images = [torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=generator) for size in sizes]
    decoder = GpuJpegDecoder(224, "cpu")
    decoder.resize_pixels = 2 * 300 * 400  # as on a GPU, with room for two 400x300 images per call
    together = decoder._resize_all(images)
    one_by_one = torch.cat([decoder._resize(image[None]) for image in images])
    assert together.shape == (len(images), 3, 224, 224)
    assert torch.equal(together, one_by_one)


def test_every_hostile_file_still_gets_one_result_of_the_right_kind(tmp_path):
    expected = write_hostile_folder(tmp_path)
    names = sorted(name for name in expected if (tmp_path / name).is_file())
    results = GpuJpegDecoder(224, "cpu").decode([(tmp_path / name).read_bytes() for name in names])
    assert {name: result.error_kind for name, result in zip(names, results)} == {name: expected[name] for name in names}


def test_header_reading_decodes_no_pixels_and_flags_problems():
    header = read_header(jpeg_with_orientation(6))
    assert header.orientation == 6 and header.mode == "RGB" and header.facts.pixels is None
    assert (header.facts.width, header.facts.height, header.facts.oriented_width) == (50, 30, 30)
    assert read_header(b"").facts.error_kind == "empty"
    assert read_header(b"hello, I am text").facts.error_kind == "not-an-image"


def test_the_engine_scores_the_same_with_batched_decoding(model_store, photo_folder):
    class Keep:
        def __init__(self):
            self.records = {}

        def already_scored(self, items, model_id):
            return set()

        def write(self, records, tally=None):  # the sink contract now passes the run's counts too
            self.records.update((r.path, r) for r in records)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        predictor = Predictor(model_store.load("micro"), device="cpu", dtype="fp32")
    run = RunInfo("r", predictor.model_id, "micro", "", [str(photo_folder)])
    cpu, batched = Keep(), Keep()
    LocalEngine(predictor, EngineOptions(draft=False)).run(iter_items([str(photo_folder)]), [cpu], run, Progress(), RunSummary())
    LocalEngine(predictor, EngineOptions(gpu_decode=True)).run(iter_items([str(photo_folder)]), [batched], run, Progress(), RunSummary())
    assert cpu.records.keys() == batched.records.keys()
    for path, record in cpu.records.items():
        assert abs(record.mean - batched.records[path].mean) < 0.01


def test_the_in_process_score_bench_refuses_gpu_options(photo_folder, micro_model_path):
    result = CliRunner().invoke(cli, ["bench", "score", str(photo_folder), "--model", str(micro_model_path),
                                      "--gpu-decode"])
    assert result.exit_code == 2 and "go with --engine ray" in result.output
