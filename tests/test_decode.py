"""The one decoder: every input gives one result, of the right kind, with upright RGB pixels on success."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import textwrap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageFile

from eat_curate.cli import cli
from eat_curate.io.decode import DEFAULT_MAX_PIXELS, DecodeError, DecodedImage, decode_image, open_image
from eat_curate.io.folders import file_item
from eat_curate.io.phash import dct_low_frequencies, hamming, phash, phash_batch
from eat_curate.io.sources import SourceReadError, read_bytes
from eat_curate.records import ERROR_KINDS, ScoreRecord, records_to_table
from hostile_files import CAPTURED_AT, ROTATED_NAME, ROTATED_STORED_SIZE, encode, photo, write_hostile_folder


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("hostile")
    return root, write_hostile_folder(root)


def outcome(path: Path, **options) -> DecodedImage | SourceReadError:
    """What the pipeline gets for one file: a read failure, or the decoder's one result."""
    try:
        data = read_bytes(file_item(str(path), album=None))
    except SourceReadError as error:
        return error
    return decode_image(data, **options)


def kind_of(result: DecodedImage | SourceReadError) -> str | None:
    return result.kind if isinstance(result, SourceReadError) else result.error_kind


# --- every hostile file: one result, the expected kind ---------------------------------------------


def test_every_hostile_file_gets_its_expected_outcome(hostile):
    root, expected = hostile
    outcomes = {name: kind_of(outcome(root / name)) for name in expected}
    assert outcomes == expected


def test_a_result_has_either_pixels_or_an_error_never_both(hostile):
    root, expected = hostile
    for name in expected:
        result = outcome(root / name)
        if isinstance(result, SourceReadError):
            assert result.reason
            continue
        assert result.content_hash is not None and len(result.content_hash) == 64
        if result.ok:
            assert result.pixels.shape == (224, 224, 3) and result.pixels.dtype == np.uint8, name
            assert result.error is None and result.phash is not None, name
            assert result.width and result.height and result.format, name
        else:
            assert result.error_kind in ERROR_KINDS, name
            assert result.error and "\n" not in result.error, name
            assert result.pixels is None and result.phash is None, name


def test_failures_keep_what_was_learned_before_them(hostile):
    root, _ = hostile
    truncated = outcome(root / "truncated.jpg")
    assert truncated.error_kind == "truncated"
    assert (truncated.format, truncated.width, truncated.height) == ("JPEG", 320, 240)
    empty = outcome(root / "empty.jpg")
    assert (empty.bytes, empty.error) == (0, "file is empty (0 bytes)")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF it skips
def test_damaged_copies_of_good_files_never_crash_and_never_look_like_our_bug(hostile):
    root, expected = hostile
    good = [(root / name).read_bytes() for name, kind in expected.items() if kind is None]
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(600):
        data = bytearray(rng.choice(good))
        damage = rng.random()
        if damage < 0.4:  # flipped bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif damage < 0.7:  # cut short
            data = data[: rng.randrange(1, len(data))]
        else:  # a run of bytes replaced by a run of another length
            start = rng.randrange(len(data))
            data[start : start + rng.randint(1, 50)] = rng.randbytes(rng.randint(0, 50))
        kinds[decode_image(bytes(data)).error_kind] += 1
    assert sum(kinds.values()) == 600
    assert "internal" not in kinds, kinds
    assert kinds["truncated"] > 100 and kinds[None] > 100  # both outcomes really exercised


def test_reasons_are_short_and_say_what_to_do(hostile):
    root, _ = hostile
    assert outcome(root / "text.jpg").error == "not an image: the file holds text"
    assert "JPEG XL" in outcome(root / "photo.jxl").error
    assert "broken symlink" in outcome(root / "broken_link.jpg").reason


# --- orientation, captured time, colour modes, frames ------------------------------------------------


def test_exif_orientation_turns_the_picture_upright(hostile):
    root, _ = hostile
    result = outcome(root / ROTATED_NAME, size=8)
    assert (result.width, result.height) == ROTATED_STORED_SIZE  # 40 x 20 as stored
    assert (result.oriented_width, result.oriented_height) == (20, 40)
    # Stored left half red, right half blue; orientation 6 means "rotate 90 degrees clockwise to view":
    # the red half ends up on top.
    red, blue = result.pixels[:3, :, 0].mean(), result.pixels[-3:, :, 2].mean()
    assert red > 180 and blue > 180
    assert result.pixels[:3, :, 2].mean() < 60


def test_captured_at_is_exif_date_time_original():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:12:31 23:59:58"
    assert decode_image(encode(photo(), "JPEG", exif=exif)).captured_at == datetime(2019, 12, 31, 23, 59, 58)
    assert decode_image(encode(photo(), "JPEG")).captured_at is None
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"  # what some cameras write when the clock is unset
    assert decode_image(encode(photo(), "JPEG", exif=exif)).captured_at is None


def test_captured_at_from_the_hostile_folder(hostile):
    root, _ = hostile
    assert outcome(root / ROTATED_NAME).captured_at == datetime.strptime(CAPTURED_AT, "%Y:%m:%d %H:%M:%S")


def test_a_corrupt_exif_block_does_not_spoil_the_picture():
    jpeg = encode(photo(), "JPEG")
    junk_exif = b"\xff\xe1" + (2 + 6 + 20).to_bytes(2, "big") + b"Exif\x00\x00" + b"\x13" * 20
    result = decode_image(jpeg[:2] + junk_exif + jpeg[2:])
    assert result.ok, result.error
    assert (result.oriented_width, result.oriented_height) == (result.width, result.height)


def test_transparency_is_composited_on_white():
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    assert (decode_image(encode(clear, "PNG"), size=16).pixels == 255).all()
    half = Image.new("LA", (32, 32), (0, 128))  # black at half opacity over white: mid grey
    assert abs(int(decode_image(encode(half, "PNG"), size=16).pixels.mean()) - 127) <= 2


def test_sixteen_bit_and_float_images_are_scaled_not_clipped(hostile):
    root, _ = hostile
    for name in ("grey16.png", "float32.tiff"):  # both ramps from black to white
        pixels = outcome(root / name).pixels
        assert 100 < pixels.mean() < 155, name
        assert pixels.min() < 20 and pixels.max() > 235, name


def test_cmyk_and_greyscale_come_out_as_rgb_of_the_same_picture(hostile):
    root, _ = hostile
    cmyk = outcome(root / "cmyk.jpg")
    rgb = decode_image(encode(photo(seed=2), "JPEG", quality=90))
    assert np.abs(cmyk.pixels.astype(int) - rgb.pixels.astype(int)).mean() < 8


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animations_give_their_first_frame(fmt):
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((230, 20, 20), (20, 20, 230))]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    pixels = decode_image(data, size=8).pixels
    assert pixels[..., 0].min() > 200 and pixels[..., 2].max() < 50


# --- draft: reduced-scale JPEG decoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "target"),
    [
        ((1000, 700), 224),
        ((2000, 2000), 224),
        ((1792, 1792), 224),  # exactly 8x the target: 1/8 scale lands on it
        ((1800, 230), 224),  # a panorama strip: its short side allows no reduction
        ((200, 150), 224),  # smaller than the target: decoded as is
        ((3000, 2000), 384),
    ],
)
def test_draft_never_decodes_below_the_target_size(stored, target):
    data = encode(photo(stored, seed=3), "JPEG", quality=90)
    drafted = open_image(data, min_size=target)
    assert min(drafted.size) >= min(target, *stored)
    assert drafted.size[0] >= min(target, stored[0]) and drafted.size[1] >= min(target, stored[1])
    # ...and it is the smallest such scale: half of it would be below the target.
    if drafted.size != stored:
        assert drafted.size[0] // 2 < target or drafted.size[1] // 2 < target


def test_draft_reduces_work_and_barely_changes_the_model_pixels():
    data = encode(photo((2400, 1600), seed=4), "JPEG", quality=92)
    assert open_image(data, min_size=224).size == (600, 400)  # 1/4 scale: 1/8 would be 300 x 200
    full, drafted = decode_image(data, draft=False), decode_image(data, draft=True)
    assert full.ok and drafted.ok
    assert (full.width, full.height) == (drafted.width, drafted.height) == (2400, 1600)  # as stored, not as drafted
    assert np.abs(full.pixels.astype(int) - drafted.pixels.astype(int)).mean() < 3


# --- limits and formats ------------------------------------------------------------------------------


def test_images_over_max_pixels_are_refused_before_decoding():
    data = encode(photo((300, 200)), "PNG")
    refused = decode_image(data, max_pixels=50_000)
    assert refused.error_kind == "too-large"
    assert (refused.width, refused.height, refused.format) == (300, 200, "PNG")
    assert "300x200" in refused.error
    assert decode_image(data, max_pixels=60_000).ok


def damaged_tiff(tag: int, field_type: int | None = None, value: int | None = None) -> bytes:
    """An uncompressed 96x64 TIFF (little-endian, as Pillow writes it) with the type or value of its entry ``tag``
    changed, as a flipped byte or two does."""
    data = bytearray(encode(photo((96, 64)), "TIFF"))
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == tag:
            if field_type is not None:
                struct.pack_into("<H", data, entry + 2, field_type)
            if value is not None:
                struct.pack_into("<I", data, entry + 8, value)
            return bytes(data)
    raise AssertionError(f"no tag {tag}")


@pytest.mark.parametrize("field_type", [16, 2], ids=["64-bit", "text"])
def test_a_tiff_whose_strip_offsets_changed_type_is_a_corrupt_file_not_our_bug(field_type):
    decoded = decode_image(damaged_tiff(273, field_type=field_type))  # 273: StripOffsets

    assert decoded.error_kind == "truncated", decoded.error  # was "internal": OverflowError, TypeError
    assert decoded.error.startswith("truncated or corrupt TIFF")


def test_a_tiff_taller_than_its_strips_is_corrupt_not_scored_as_a_black_picture():
    decoded = decode_image(damaged_tiff(257, value=64 * 1_000))  # 257: ImageLength, 64 rows stored

    assert decoded.error_kind == "truncated"  # was: decoded 6,144,000 pixels, all black but the first 64 rows
    assert decoded.error == "corrupt TIFF: its image data covers 6,144 of its 96x64000 pixels"
    assert decode_image(damaged_tiff(257, value=64)).ok  # the height as stored: the check passes good files


@pytest.mark.parametrize("field_type", [5, 11, 12], ids=["fraction", "float", "double"])
def test_a_tiff_whose_rows_per_strip_changed_type_is_corrupt(field_type):
    decoded = decode_image(damaged_tiff(278, field_type=field_type))  # 278: RowsPerStrip, now a fraction of a row

    assert decoded.error_kind == "truncated", decoded.error
    assert decoded.error.startswith("corrupt TIFF: its image data covers 0 of its 96x64 pixels")


def test_a_photo_over_pillows_bomb_warning_but_within_our_limit_prints_no_warning(tmp_path):
    """Pillow warns of a "decompression bomb DOS attack" from ~89.5 MP: a 102 MP medium-format photo. In a fresh
    process, as `score` runs: pytest restores the warning filters an import sets while it collects."""
    bomb = tmp_path / "tall.tif"
    bomb.write_bytes(damaged_tiff(257, value=1_000_000))  # 96 x 1,000,000 = 96 MP declared
    decode = f"from eat_curate.io.decode import decode_image; print(decode_image(open({str(bomb)!r}, 'rb').read()).error)"

    done = subprocess.run([sys.executable, "-c", decode], capture_output=True, text=True, timeout=120)

    assert done.stdout.startswith("corrupt TIFF"), done.stdout + done.stderr  # our own check, after the header
    assert "DecompressionBombWarning" not in done.stderr and "bomb" not in done.stderr, done.stderr


def test_decoding_changes_no_global_pillow_settings(hostile):
    root, expected = hostile
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    for name in expected:
        outcome(root / name, max_pixels=1_000)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before
    assert DEFAULT_MAX_PIXELS <= 2 * Image.MAX_IMAGE_PIXELS  # never promises more than Pillow allows


def test_threads_decode_the_same_as_one(hostile):
    root, expected = hostile
    payloads = [(root / name).read_bytes() for name in expected if expected[name] != "unreadable"] * 4

    def fingerprint(data: bytes) -> tuple:
        result = decode_image(data)
        return result.error_kind, result.phash, None if result.pixels is None else result.pixels.tobytes()

    sequential = [fingerprint(data) for data in payloads]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(fingerprint, payloads)) == sequential


def test_heic_without_pillow_heif_is_unsupported_with_a_hint():
    # A fresh interpreter where importing pillow_heif fails, as on a machine without it.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["pillow_heif"] = None
        from eat_curate.io.decode import decode_image
        heic = b"\\x00\\x00\\x00\\x18ftypheic\\x00\\x00\\x00\\x00mif1heic" + bytes(64)
        result = decode_image(heic)
        print(result.error_kind, "|", result.error)
        """
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "unsupported | HEIC/HEIF needs pillow-heif: pip install 'eat-curate[heif]'"


def test_heic_decodes_with_pillow_heif(hostile):
    pytest.importorskip("pillow_heif")
    root, expected = hostile
    assert expected["photo.heic"] is None
    assert outcome(root / "photo.heic").format == "HEIF"


# --- open_image (training's entry point) -------------------------------------------------------------


def test_open_image_returns_upright_rgb(hostile):
    root, _ = hostile
    image = open_image((root / ROTATED_NAME).read_bytes())
    assert (image.mode, image.size) == ("RGB", (20, 40))


@pytest.mark.parametrize(
    ("name", "kind"), [("empty.jpg", "empty"), ("text.jpg", "not-an-image"), ("bomb.png", "too-large")]
)
def test_open_image_raises_decode_error_with_its_kind(hostile, name, kind):
    root, _ = hostile
    with pytest.raises(DecodeError) as raised:
        open_image((root / name).read_bytes())
    assert raised.value.kind == kind


# --- records -----------------------------------------------------------------------------------------


def test_record_fields_build_a_score_record_that_parquet_accepts(hostile):
    root, _ = hostile
    record_names = {field.name for field in fields(ScoreRecord)}
    records = []
    for name in (ROTATED_NAME, "truncated.jpg"):
        decoded_fields = outcome(root / name).to_record_fields()
        assert set(decoded_fields) <= record_names
        records.append(ScoreRecord(image_id=name, path=name, album=None, model_id="m", run_id="r", **decoded_fields))
    table = records_to_table(records).to_pylist()
    assert table[0]["captured_at"] == datetime(2021, 7, 14, 18, 30, 5)
    assert (table[0]["oriented_width"], table[1]["error_kind"]) == (20, "truncated")


# --- perceptual hash ---------------------------------------------------------------------------------


def scene(seed: int, size: tuple[int, int] = (480, 320)) -> Image.Image:
    """A random smooth 'landscape': coarse random colour blobs, upsampled. Different seeds: unrelated pictures."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8))
    return coarse.resize(size, Image.Resampling.BICUBIC)


def near_copies(image: Image.Image) -> dict[str, Image.Image]:
    """What a photographer's library does to one shot: re-saves, downsizes, brightens, crops a sliver."""
    width, height = image.size
    return {
        "jpeg q60": Image.open(io.BytesIO(encode(image, "JPEG", quality=60))),
        "half size": image.resize((width // 2, height // 2), Image.Resampling.LANCZOS),
        "brighter": Image.eval(image, lambda value: min(255, int(value * 1.08))),
        "cropped 2%": image.crop((width // 100, height // 100, width - width // 100, height - height // 100)),
    }


def test_phash_keeps_near_identical_shots_close():
    for seed in range(4):
        original = phash(scene(seed))
        for change, copy in near_copies(scene(seed)).items():
            assert hamming(original, phash(copy)) <= 6, (seed, change)


def test_phash_keeps_unrelated_pictures_far_apart():
    hashes = [phash(scene(seed)) for seed in range(100, 112)]
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 12
    assert 24 <= np.mean(distances) <= 40  # about half the bits, as for independent pictures


def test_phash_is_a_signed_int64_and_hamming_counts_all_64_bits():
    values = [phash(scene(seed)) for seed in range(20)]
    assert all(-(2**63) <= value < 2**63 for value in values)
    assert any(value < 0 for value in values)  # bit 63 is used, as the sign
    assert hamming(-1, 0) == 64 and hamming(0, 0) == 0
    assert hamming(values[0], values[1]) == hamming(values[1], values[0])
    assert hamming(-1, 2**64 - 1) == 0  # signed and unsigned spellings of the same 64 bits


def test_phash_dct_matches_imagehash():
    imagehash = pytest.importorskip("imagehash")
    for seed in range(6):
        image = scene(seed)
        # imagehash's pHash thresholds the top-left 8x8 (DC included); ours skips the DC row and column.
        # Same greyscale, resize and DCT underneath: its bits must come out of our coefficients exactly.
        block = dct_low_frequencies(image)[:8, :8]
        assert np.array_equal(block > np.median(block), imagehash.phash(image).hash)


def test_phash_is_the_hash_scipys_full_dct_and_numpys_median_gave():
    """The hash takes 81 coefficients by matrix products; hashes stored by earlier versions, which took
    scipy's whole 32x32 DCT and np.median, must still compare equal (dupes, --keep-best)."""
    from scipy.fft import dctn

    rng = np.random.default_rng(11)
    pictures = [scene(seed, (320, 240)) for seed in range(40)]
    pictures += [Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)) for _ in range(10)]
    pictures += [Image.new("RGB", (224, 224), (value, value, value)) for value in (0, 77, 255)]  # flat
    for picture in pictures:
        grey = picture.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        block = np.round(dctn(np.asarray(grey, dtype=np.float64), type=2)[1:9, 1:9].ravel(), 6)
        expected = int.from_bytes(np.packbits(block > np.median(block)).tobytes(), "big", signed=True)
        assert phash(picture) == expected


@pytest.mark.parametrize("size", [(224, 224), (480, 320), (97, 131)])
def test_the_batched_phash_of_the_gpu_path_equals_pillows_bit_for_bit(size):
    rng = np.random.default_rng(size[0])
    pictures = [np.asarray(scene(seed, size)) for seed in range(12)]
    pictures += [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(4)]  # noise
    pictures += [np.full((size[1], size[0], 3), value, dtype=np.uint8) for value in (0, 128, 255)]  # flat
    batch = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2)  # (N, 3, H, W), as the GPU path holds them
    assert phash_batch(batch) == [phash(Image.fromarray(picture)) for picture in pictures]
    assert phash_batch(batch[:0]) == []


def test_decoded_images_carry_the_phash_of_their_pixels():
    result = decode_image(encode(scene(1), "PNG"))
    assert result.phash == phash(Image.fromarray(result.pixels))
    assert hamming(result.phash, phash(scene(1))) <= 4


# --- the decode benchmark command --------------------------------------------------------------------


def test_bench_decode_prints_both_rates_their_ratio_and_the_score_difference(photo_folder, model_store):
    args = ["bench", "decode", str(photo_folder), "--model", "micro", "--models-dir", str(model_store.root)]
    result = CliRunner().invoke(cli, [*args, "--rounds", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("4 JPEGs (median 0.1 MP) decoded to 224x224")  # the PNG is not a JPEG
    assert "full decode + resize" in lines[1] and "img/s" in lines[1]
    assert "draft decode + resize" in lines[2] and lines[2].endswith("x")
    assert "micro@" in lines[4] and "untrained" in lines[4] and "(bound 0.01)" in lines[4] and "(bound 0.05)" in lines[4]
    assert "GPU path on cpu vs full" in lines[5] and lines[5].endswith("PASS")  # the same arithmetic, bit for bit


def test_bench_decode_refuses_a_missing_folder(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "decode", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such folder" in result.output
