"""Camera RAW files: found, developed upright from their preview or a half-size demosaic, or one error row each.

The RAW files are real DNGs, written with pidng from generated Bayer data
(eat_curate.benchmarks.bayer_dngs) and developed by the real LibRaw (rawpy).
The picture in them has a bright block in its top-left quarter, so which
way up a decode came out can be read back from the pixels.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import make_photo
from eat_curate.benchmarks.bayer_dngs import bayer_dng, marked_picture
from eat_curate.cli import cli
from eat_curate.io.decode import decode_image, open_image, read_header
from eat_curate.io.exif import upright
from eat_curate.io.folders import walk_folder
from eat_curate.io.formats import sniff_raw_signature
from eat_curate.io.phash import hamming
from eat_curate.io.raw_probe import capture_time, declared_length, identify_raw
from eat_curate.io.resize import resize_for_model
from eat_curate.library import DEFAULT_DISTANCE

SENSOR = (640, 480)  # half size (320 x 240) still reaches the model's 224
PICTURE = marked_picture(*SENSOR)
TAKEN = datetime(2024, 6, 1, 18, 30, 5)


def likeness(pixels: np.ndarray, expected: Image.Image) -> float:
    """Correlation of the grey levels of model pixels and of ``expected`` squashed the same way."""
    ours = pixels.astype(np.float64).mean(axis=2).ravel()
    theirs = resize_for_model(expected, pixels.shape[0]).astype(np.float64).mean(axis=2).ravel()
    return float(np.corrcoef(ours, theirs)[0, 1])


def jpeg_bytes(picture: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


# --- which bytes are a camera RAW ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "family"),
    [
        (b"II*\x00\x10\x00\x00\x00CR\x02\x00", "CR2"),
        (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01", "CR3"),
        (b"FUJIFILMCCD-RAW 0201FF383501", "RAF"),
        (b"IIRO\x08\x00\x00\x00", "ORF"),
        (b"IIU\x00\x18\x00\x00\x00", "RW2"),
        (b"FOVb\x00\x00\x04\x00", "X3F"),
        (b"\x00MRM\x00\x00\x00\x10", "MRW"),
        (b"II*\x00\x08\x00\x00\x00", None),  # any TIFF: its tags decide (identify_raw)
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None),
    ],
)
def test_makers_signatures_name_their_raw_family(head, family):
    assert sniff_raw_signature(head) == family


def test_a_dng_is_known_by_its_content_whatever_its_name():
    dng = bayer_dng(PICTURE)
    for name in (None, "IMG_0001.dng", "IMG_0001.jpg", "no-extension"):
        identity = identify_raw(dng, name)
        assert (identity.format, identity.by_content) == ("DNG", True)


def test_a_tiff_ep_raw_is_named_by_its_maker_and_an_ordinary_tiff_stays_a_tiff(tmp_path):
    assert identify_raw(bayer_dng(PICTURE, dng=False, make="NIKON CORPORATION")).format == "NEF"
    assert identify_raw(bayer_dng(PICTURE, dng=False, make="SONY")).format == "ARW"
    assert identify_raw(bayer_dng(PICTURE, dng=False, make="Someone New")).format == "RAW"
    # A TIFF exported from a RAW keeps the camera's Make, but holds no colour-filter-array image.
    exported = make_photo(tmp_path / "exported.tif", fmt="TIFF", tiffinfo={271: "NIKON CORPORATION"})
    assert identify_raw(exported.read_bytes(), "exported.tif") is None


def test_the_name_counts_only_when_the_content_is_no_known_format():
    jpeg = jpeg_bytes(PICTURE)
    assert identify_raw(jpeg, "DSC_0001.NEF") is None  # a JPEG named .NEF is the JPEG it is
    assert identify_raw(b"some notes\n" * 10, "DSC_0001.NEF") is None  # text: not an image at all
    junk = random.Random(0).randbytes(4096)
    assert identify_raw(junk, "DSC_0001.NEF").by_content is False  # LibRaw will judge it
    assert identify_raw(junk) is None


def test_a_folder_walk_lists_raw_files_by_extension_and_by_signature(tmp_path):
    (tmp_path / "IMG_1.DNG").write_bytes(bayer_dng(PICTURE))
    (tmp_path / "IMG_2.cr3").write_bytes(b"not really a CR3")  # named like a RAW: listed, its row will say why
    (tmp_path / "renamed_raf").write_bytes(b"FUJIFILMCCD-RAW 0201FF383501" + bytes(64))
    (tmp_path / "IMG_1.xmp").write_text("<x:xmpmeta/>")  # a sidecar: skipped unread
    (tmp_path / "notes").write_text("shopping list")
    listed = sorted(Path(item.key).name for item in walk_folder(str(tmp_path)))
    assert listed == ["IMG_1.DNG", "IMG_2.cr3", "renamed_raf"]


# --- developing: preview or demosaic, always upright ---------------------------------------------------


@pytest.mark.parametrize("preview", [None, "jpeg", "bitmap"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_raw_comes_out_upright_in_all_eight_orientations_by_either_path(orientation, preview):
    result = decode_image(bayer_dng(PICTURE, orientation=orientation, preview=preview))
    assert result.ok, result.error
    assert likeness(result.pixels, upright(Image.fromarray(PICTURE), orientation)) > 0.95
    turned = orientation in (5, 6, 7, 8)
    assert (result.width, result.height) == SENSOR  # as stored, whichever path
    assert (result.oriented_width, result.oriented_height) == (SENSOR[::-1] if turned else SENSOR)
    # ... and not merely "something like it": the unturned picture is a worse match when a turn was due.
    if orientation != 1:
        assert likeness(result.pixels, Image.fromarray(PICTURE)) < 0.9


@pytest.mark.parametrize(
    ("preview_side", "size", "used"),
    [(224, 224, "preview"), (223, 224, "demosaic"), (400, 384, "preview"), (300, 384, "demosaic")],
)
def test_the_preview_serves_when_its_long_side_reaches_the_model_size(preview_side, size, used):
    negative = 255 - PICTURE  # a different preview, so the pixels tell which one was decoded
    dng = bayer_dng(PICTURE, preview="jpeg", preview_side=preview_side, preview_of=negative)
    pixels = decode_image(dng, size=size).pixels
    assert pixels.shape == (size, size, 3)
    from_preview = likeness(pixels, Image.fromarray(negative)) > 0.95
    assert from_preview == (used == "preview")
    if used == "demosaic":
        assert likeness(pixels, Image.fromarray(PICTURE)) > 0.95


def test_a_preview_with_its_own_exif_orientation_is_turned_by_that_once():
    exif = Image.Exif()
    exif[0x0112] = 6  # the preview says so itself (Fujifilm's previews are whole JPEGs with EXIF)
    dng = bayer_dng(PICTURE, orientation=6, preview="jpeg", preview_exif=exif)
    assert likeness(decode_image(dng).pixels, upright(Image.fromarray(PICTURE), 6)) > 0.95


def test_a_preview_stored_already_turned_is_not_turned_again():
    turned = np.ascontiguousarray(np.rot90(PICTURE, k=-1))  # the upright view of orientation 6, portrait
    dng = bayer_dng(PICTURE, orientation=6, preview="jpeg", preview_of=turned)
    assert likeness(decode_image(dng).pixels, Image.fromarray(turned)) > 0.95


def test_a_raw_row_has_the_facts_of_any_image():
    result = decode_image(bayer_dng(PICTURE, orientation=8, preview="jpeg", captured_at=TAKEN))
    assert (result.format, result.captured_at) == ("DNG", TAKEN)
    assert (result.oriented_width, result.oriented_height) == (480, 640)
    assert len(result.content_hash) == 64 and result.bytes > 0 and result.phash is not None


def test_capture_time_falls_back_to_the_previews_exif_then_to_libraw():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2023:01:02 03:04:05"
    result = decode_image(bayer_dng(PICTURE, preview="jpeg", preview_exif=exif))
    assert result.captured_at == datetime(2023, 1, 2, 3, 4, 5)
    # Only IFD0's DateTime, which LibRaw reads: from the header LibRaw writes on the preview, or from
    # its timestamp once the raw data is unpacked for the demosaic.
    for preview in ("jpeg", None):
        dated = bayer_dng(PICTURE, preview=preview, captured_at=TAKEN, captured_tag="DateTime")
        assert capture_time(dated) is None and decode_image(dated).captured_at == TAKEN, preview
    assert decode_image(bayer_dng(PICTURE)).captured_at is None  # none anywhere: none, not 1970


def test_a_raw_and_a_jpeg_of_the_same_picture_are_near_duplicates_by_perceptual_hash():
    jpeg = decode_image(jpeg_bytes(PICTURE))
    for preview in (None, "jpeg"):  # LibRaw's rendering or the camera's preview: one `dupes` group either way
        raw = decode_image(bayer_dng(PICTURE, preview=preview))
        assert hamming(raw.phash, jpeg.phash) <= DEFAULT_DISTANCE, preview
    unrelated = decode_image(bayer_dng(np.ascontiguousarray(PICTURE[::-1, ::-1])))
    assert hamming(unrelated.phash, jpeg.phash) > DEFAULT_DISTANCE


def test_open_image_and_read_header_take_raws_too():
    dng = bayer_dng(PICTURE, orientation=6, preview="jpeg", preview_side=1024)
    assert open_image(dng).size == (768, 1024)  # the whole preview, turned upright
    assert open_image(dng, min_size=224).size == (384, 512)  # drafted: the smallest scale keeping 224
    header = read_header(dng)
    assert header.facts.ok and header.facts.format == "DNG"  # not a JPEG: GPU decoding leaves it to the CPU


# --- failures: one row each, with a kind and a reason ---------------------------------------------------


@pytest.mark.parametrize("preview", [None, "jpeg"])
def test_a_truncated_raw_is_a_truncated_row_even_when_its_preview_is_whole(preview):
    dng = bayer_dng(PICTURE, preview=preview)
    result = decode_image(dng[: int(len(dng) * 0.6)])  # the preview sits before the raw data: intact
    assert result.error_kind == "truncated" and "DNG" in result.error
    assert (result.format, result.width, result.height) == ("DNG", *SENSOR)  # what was learnt is kept
    assert result.pixels is None and result.phash is None


def test_files_named_like_raws_that_are_not_are_not_an_image():
    assert decode_image(b"shopping list\n", name="DSC_0001.NEF").error_kind == "not-an-image"
    junk = decode_image(random.Random(1).randbytes(20_000), name="DSC_0001.NEF")
    assert junk.error_kind == "not-an-image" and "LibRaw" in junk.error


def test_a_jpeg_named_nef_is_decoded_as_the_jpeg_it_is():
    result = decode_image(jpeg_bytes(PICTURE), name="DSC_0001.NEF")
    assert result.ok and result.format == "JPEG"


def test_without_rawpy_a_raw_is_an_unsupported_row_that_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rawpy", None)  # `import rawpy` now raises ImportError
    result = decode_image(bayer_dng(PICTURE, preview="jpeg"))
    assert (result.error_kind, result.format) == ("unsupported", "DNG")
    assert "pip install 'eat-curate[raw]'" in result.error


def test_rawpy_is_imported_only_when_a_raw_is_decoded():
    script = textwrap.dedent(
        """
        import sys
        from eat_curate.benchmarks.bayer_dngs import bayer_dng, marked_picture
        from eat_curate.io.decode import decode_image
        from PIL import Image
        import io
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48)).save(buffer, "JPEG")
        assert decode_image(buffer.getvalue()).ok
        print("rawpy" in sys.modules)
        assert decode_image(bayer_dng(marked_picture(64, 48))).ok
        print("rawpy" in sys.modules)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt tags it skips
def test_damaged_raws_never_crash_and_never_look_like_our_bug():
    good = [bayer_dng(marked_picture(128, 96), preview=preview) for preview in (None, "jpeg", "bitmap")]
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(150):
        data = bytearray(rng.choice(good))
        if rng.random() < 0.5:  # flipped bytes, most of them in the directories at the start
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(min(len(data), 600) if rng.random() < 0.7 else len(data))] = rng.randrange(256)
        else:  # cut short
            data = data[: rng.randrange(1, len(data))]
        kinds[decode_image(bytes(data)).error_kind] += 1
    assert "internal" not in kinds, kinds
    assert kinds["truncated"] > 20 and kinds[None] > 20, kinds


def with_preview_width(dng: bytes, width: int) -> bytes:
    """``dng`` whose first directory (the preview, in these DNGs) declares ``width``, as a damaged byte can."""
    data = bytearray(dng)
    order = "<" if data[:2] == b"II" else ">"
    (directory,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, directory)
    for entry in range(directory + 2, directory + 2 + 12 * count, 12):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == 256:  # ImageWidth
            struct.pack_into(order + ("H" if kind == 3 else "I"), data, entry + 8, width)
            return bytes(data)
    raise AssertionError("no ImageWidth in the first directory")


def test_a_bitmap_preview_whose_width_was_damaged_is_not_read_past_libraws_buffer(tmp_path):
    """LibRaw keeps the preview's stored bytes, rawpy shapes them by the declared size: 29.8 MB of a 147 KB
    buffer here. Reading it ended the process with a segfault, so the decoding runs in a process of its own."""
    damaged = tmp_path / "damaged.dng"
    damaged.write_bytes(with_preview_width(bayer_dng(PICTURE[:240, :320], preview="bitmap", preview_side=256), 51_712))
    script = (f"from eat_curate.io.decode import decode_image; "
              f"decoded = decode_image(open({str(damaged)!r}, 'rb').read()); print(decoded.ok, decoded.width)")

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"  # was -11 (SIGSEGV)
    assert run.stdout.split() == ["True", "320"]  # the demosaic served: the sensor's own size


# --- what the bytes say before LibRaw: capture time, declared length ------------------------------------


def exif_tiff(date: str) -> bytes:
    """A bare TIFF (as Pillow writes EXIF) whose EXIF IFD holds DateTimeOriginal."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = date
    return exif.tobytes()[len(b"Exif\x00\x00") :]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_capture_time_is_read_from_tiff_and_its_makers_variants():
    tiff = exif_tiff("2022:08:09 10:11:12")
    taken = datetime(2022, 8, 9, 10, 11, 12)
    assert capture_time(tiff) == taken
    assert capture_time(tiff[:2] + (b"OR" if tiff[:2] == b"MM" else b"RO") + tiff[4:]) == taken  # ORF's magic
    assert capture_time(b"FUJIFILMCCD-RAW " + bytes(100)) is None  # not TIFF: LibRaw dates it instead


def test_declared_length_catches_a_cut_short_file():
    dng = bayer_dng(PICTURE)
    assert declared_length(dng) == len(dng)
    assert declared_length(dng[:1000]) == len(dng)  # the directories survive, the strip is cut
    boxes = box(b"ftyp", b"crx \x00\x00\x00\x01") + box(b"mdat", bytes(5000))
    assert declared_length(boxes) == len(boxes)
    assert declared_length(boxes[:3000]) == len(boxes)
    assert declared_length(b"not a raw at all") is None


# --- end to end: `eat-curate score` on a folder of RAW and JPEG files ------------------------------------


def test_scoring_a_folder_of_raws_and_jpegs_gives_one_row_per_file(tmp_path, micro_model_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "portrait.dng").write_bytes(bayer_dng(PICTURE, orientation=6, preview="jpeg", captured_at=TAKEN))
    (folder / "landscape.DNG").write_bytes(bayer_dng(PICTURE))  # no preview: demosaiced
    make_photo(folder / "landscape.jpg", size=SENSOR, quality=90)
    cut = bayer_dng(PICTURE, preview="jpeg")
    (folder / "cut.dng").write_bytes(cut[: len(cut) // 2])
    (folder / "notes.NEF").write_text("not a raw")
    out = tmp_path / "scores.parquet"

    result = CliRunner().invoke(cli, ["score", str(folder), "--out", str(out), "--model", str(micro_model_path)])

    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in pq.read_table(out).to_pylist()}
    assert sorted(rows) == ["cut.dng", "landscape.DNG", "landscape.jpg", "notes.NEF", "portrait.dng"]
    for name in ("portrait.dng", "landscape.DNG", "landscape.jpg"):
        assert rows[name]["error"] is None and 1 <= rows[name]["mean"] <= 10, name
    portrait = rows["portrait.dng"]
    assert (portrait["format"], portrait["width"], portrait["height"]) == ("DNG", 640, 480)
    assert (portrait["oriented_width"], portrait["oriented_height"]) == (480, 640)
    assert portrait["captured_at"] == TAKEN
    assert rows["landscape.DNG"]["format"] == "DNG"
    assert (rows["cut.dng"]["error_kind"], rows["notes.NEF"]["error_kind"]) == ("truncated", "not-an-image")


def test_the_raw_benchmark_times_both_paths_on_the_same_pictures():
    from eat_curate.benchmarks.raw_decode import bench_raw_decode, report_lines

    result = bench_raw_decode(files=1, megapixels=0.5, preview_side=400, rounds=1)
    assert (result.width, result.height) == (816, 612)
    assert result.preview_img_s > result.demosaic_img_s > 0 and result.speedup > 1
    assert result.preview_cpu_ms > 0 and result.demosaic_cpu_ms > 0
    assert "half-size demosaic" in "\n".join(report_lines(result))
