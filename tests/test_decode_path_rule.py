"""The GPU path's rule: which images the device decodes, read from each file alone.

Whole baseline JPEGs (YCbCr or grey, 8-bit) go to the device; progressive,
CMYK, 12-bit, truncated and broken JPEGs and other formats go to the CPU.
Each still gets one record of the right kind, and an image's record does
not depend on the images batched with it. The device here is the CPU
(torchvision's decoder standing in for nvJPEG): the same code and rule.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from eat_curate.io.decode import decode_image, read_header
from eat_curate.io.sources import SourceItem
from eat_curate.scoring.decode_path import jpeg_frame, decodes_on_device
from eat_curate.scoring.engine import EngineOptions, LocalEngine
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from hostile_files import photo
from pipeline_stand_ins import MemorySink, score

SIZE = 224


def encoded(image: Image.Image, fmt: str = "JPEG", **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def with_orientation(picture: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(picture, quality=90, exif=exif.tobytes())


def with_precision(data: bytes, bits: int) -> bytes:
    """The same JPEG with its frame header declaring ``bits`` per sample (a 12-bit JPEG's header)."""
    start = data.index(b"\xff\xc0")
    return data[: start + 4] + bytes([bits]) + data[start + 5 :]


def with_thumbnail_then_cut(data: bytes) -> bytes:
    """A JPEG whose APP1 holds a whole little JPEG (an EXIF thumbnail: SOI ... EOI), cut before its own end."""
    thumbnail = encoded(photo((16, 12), seed=9), quality=50)
    segment = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    whole = data[:2] + segment + data[2:]
    return whole[: len(whole) * 2 // 3]


PICTURE = photo((96, 64), seed=3)
BASELINE = encoded(PICTURE, quality=90)
FILES = {  # name: (bytes, decoded on the device?)
    "baseline": (BASELINE, True),
    "greyscale": (encoded(PICTURE.convert("L"), quality=90), True),
    "rotated by EXIF": (with_orientation(PICTURE, 6), True),
    "a phone's video after the end": (BASELINE + b"\x00\x00\x00\x18ftypmp42" + bytes(500), True),
    "progressive": (encoded(PICTURE, quality=90, progressive=True), False),
    "CMYK": (encoded(PICTURE.convert("CMYK"), quality=90), False),
    "12-bit": (with_precision(BASELINE, 12), False),
    "truncated": (BASELINE[: len(BASELINE) * 2 // 3], False),
    "truncated, with a thumbnail's end marker": (with_thumbnail_then_cut(BASELINE), False),
    "garbage after the JPEG signature": (b"\xff\xd8\xff" + bytes(range(256)) * 4, False),
    "PNG": (encoded(PICTURE, "PNG"), False),
}


@pytest.mark.parametrize("name", FILES)
def test_the_rule_reads_the_file_alone(name):
    data, on_device = FILES[name]
    assert decodes_on_device(read_header(data), data) is on_device


def test_the_frame_says_what_kind_of_jpeg_it_is():
    assert (jpeg_frame(BASELINE).marker, jpeg_frame(BASELINE).precision, jpeg_frame(BASELINE).components) == (
        0xC0, 8, 3)
    assert jpeg_frame(FILES["progressive"][0]).marker == 0xC2
    assert jpeg_frame(FILES["CMYK"][0]).components == 4
    assert jpeg_frame(FILES["12-bit"][0]).precision == 12
    assert jpeg_frame(FILES["PNG"][0]) is None
    assert jpeg_frame(FILES["garbage after the JPEG signature"][0]) is None


@pytest.fixture(scope="module")
def micro(model_store) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(model_store.load("micro"), device="cpu", dtype="fp32")


def items(names: list[str]) -> list[SourceItem]:
    return [SourceItem(key=name, image_id=f"{index:016x}", album=None, data=FILES[name][0])
            for index, name in enumerate(names)]


def test_on_the_gpu_path_every_file_gets_the_record_its_decoder_owes_it(micro):
    sink = MemorySink()
    score(LocalEngine(micro, EngineOptions(batch_size=4, gpu_decode=True)), items(list(FILES)), sink)
    assert [record.path for record in sink.records] == list(FILES)
    for record in sink.records:
        reference = decode_image(FILES[record.path][0], SIZE, draft=False)  # what the CPU says of the file
        assert record.error_kind == reference.error_kind, record.path
        assert (record.width, record.height, record.oriented_width, record.oriented_height, record.format) == (
            reference.width, reference.height, reference.oriented_width, reference.oriented_height,
            reference.format), record.path
        assert record.phash == reference.phash, record.path  # the same pixels, hashed on either side
    kinds = {record.path: record.error_kind for record in sink.records}
    assert kinds["truncated"] == kinds["truncated, with a thumbnail's end marker"] == "truncated"
    assert kinds["progressive"] is kinds["CMYK"] is kinds["rotated by EXIF"] is None


def test_a_record_does_not_depend_on_the_files_batched_with_it(micro):
    names = list(FILES)
    together, alone = MemorySink(), MemorySink()
    score(LocalEngine(micro, EngineOptions(batch_size=6, gpu_decode=True)), items(names), together)
    for name in names:
        score(LocalEngine(micro, EngineOptions(batch_size=6, gpu_decode=True)), items([name]), alone)
    for a, b in zip(together.records, alone.records):
        assert (a.path, a.error_kind, a.phash, a.content_hash) == (b.path, b.error_kind, b.phash, b.content_hash)
        if a.ok:
            assert np.allclose(a.probabilities, b.probabilities, atol=1e-6)
