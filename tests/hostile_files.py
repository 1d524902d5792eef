"""A folder of odd and hostile image files, each with the outcome the pipeline owes it.

``write_hostile_folder(root)`` writes every case into ``root`` (flat, so the
album is None) and returns ``{file name: expected error_kind}``, None meaning
"scores fine". Decoder, source and engine tests share it: whatever reads the
folder must produce exactly one result per name, of the expected kind.

Deterministic: the same files, byte for byte, on every call (fixed seeds,
fixed EXIF values). Cases the platform cannot produce are left out of the
returned dict: HEIC without pillow-heif, AVIF without Pillow's AVIF encoder,
and the no-permission file when running as root (root reads anything; the
broken symlink covers "unreadable" there).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, features

CAPTURED_AT = "2021:07:14 18:30:05"  # EXIF DateTimeOriginal of the rotated JPEG
ROTATED_NAME = "rotated_exif6.jpg"  # stored 40x20, orientation 6: upright it is 20x40
ROTATED_STORED_SIZE = (40, 20)
BOMB_DECLARED_SIZE = (100_000, 100_000)  # 10 gigapixels declared in a 100-byte PNG


def photo(size: tuple[int, int] = (96, 64), seed: int = 0) -> Image.Image:
    """A small photo-like RGB image: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / (9 + seed % 5) + seed),
            128 + 100 * np.cos(yy / (11 + seed % 3)),
            128 + 60 * np.sin((xx + yy) / 17.0),
        ],
        axis=-1,
    )
    return Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header declares ``width`` x ``height`` RGB pixels, with one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)  # nowhere near enough: only the header matters
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def rotated_jpeg() -> bytes:
    """Stored 40x20, left half red and right half blue; EXIF orientation 6 and a capture time."""
    pixels = np.zeros((ROTATED_STORED_SIZE[1], ROTATED_STORED_SIZE[0], 3), dtype=np.uint8)
    pixels[:, : ROTATED_STORED_SIZE[0] // 2] = (220, 20, 20)
    pixels[:, ROTATED_STORED_SIZE[0] // 2 :] = (20, 20, 220)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = CAPTURED_AT
    return encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif)


def _animation(fmt: str, **save) -> bytes:
    frames = [photo((48, 32), seed=seed) for seed in range(3)]
    if fmt == "GIF":
        frames = [frame.quantize(64) for frame in frames]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **save)


def _palette_with_transparency() -> bytes:
    image = photo((64, 48), seed=3).quantize(32)
    return encode(image, "PNG", transparency=0)


def _grey16() -> bytes:
    ramp = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)  # up to ~64k
    return encode(Image.fromarray(ramp), "PNG")


def _float_tiff() -> bytes:
    return encode(Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)), "TIFF")


def _truncated_jpeg() -> bytes:
    data = encode(photo((320, 240), seed=4), "JPEG", quality=90)
    return data[: len(data) // 2]


def _cases() -> dict[str, tuple[bytes, str | None]]:
    """File name -> (content, expected error_kind) for every case that is plain bytes."""
    rgba = photo((64, 48), seed=5).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
    cases: dict[str, tuple[bytes, str | None]] = {
        # fine, in every colour mode and container the decoder converts
        "photo.jpg": (encode(photo(seed=1), "JPEG", quality=90), None),
        "cmyk.jpg": (encode(photo(seed=2).convert("CMYK"), "JPEG", quality=90), None),
        "grey.jpg": (encode(photo(seed=6).convert("L"), "JPEG", quality=90), None),
        "bilevel.png": (encode(photo(seed=7).convert("1"), "PNG"), None),
        "palette_transparent.png": (_palette_with_transparency(), None),
        "grey16.png": (_grey16(), None),
        "rgba.png": (encode(rgba, "PNG"), None),
        "grey_alpha.png": (encode(rgba.convert("LA"), "PNG"), None),
        "float32.tiff": (_float_tiff(), None),
        "photo.tiff": (encode(photo(seed=8), "TIFF", compression="tiff_lzw"), None),
        "photo.bmp": (encode(photo(seed=9), "BMP"), None),
        "photo.webp": (encode(photo(seed=10), "WEBP", quality=85), None),
        "animated.gif": (_animation("GIF"), None),
        "animated.png": (_animation("PNG"), None),
        "animated.webp": (_animation("WEBP", quality=80), None),
        ROTATED_NAME: (rotated_jpeg(), None),
        "jpeg_without_extension": (encode(photo(seed=11), "JPEG", quality=90), None),  # found by sniffing
        # not fine, each in its own way
        "empty.jpg": (b"", "empty"),
        "text.jpg": (b"This is a shopping list, not a photo.\nmilk\neggs\n", "not-an-image"),
        "random_bytes.png": (np.random.default_rng(12).bytes(2048), "not-an-image"),
        "truncated.jpg": (_truncated_jpeg(), "truncated"),
        "corrupt_header.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated"),
        "bomb.png": (png_declaring(*BOMB_DECLARED_SIZE), "too-large"),
        "photo.jxl": (b"\xff\x0a" + np.random.default_rng(13).bytes(256), "unsupported"),
    }
    if features.check("avif"):
        cases["photo.avif"] = (encode(photo(seed=14), "AVIF", quality=80), None)
    heic = _heic()
    if heic is not None:
        cases["photo.heic"] = (heic, None)
    return cases


def _heic() -> bytes | None:
    try:
        import pillow_heif
    except ImportError:
        return None
    buffer = io.BytesIO()
    pillow_heif.from_pillow(photo(seed=15)).save(buffer, quality=80)  # without registering a Pillow plugin
    return buffer.getvalue()


def write_hostile_folder(root: Path) -> dict[str, str | None]:
    """Write every case into ``root``; return {file name: expected error_kind or None}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}
    for name, (content, kind) in _cases().items():
        (root / name).write_bytes(content)
        expected[name] = kind
    # Unreadable: a link whose target is gone (a file deleted between listing and reading).
    os.symlink("deleted_before_reading.jpg", root / "broken_link.jpg")
    expected["broken_link.jpg"] = "unreadable"
    if os.geteuid() != 0:
        locked = root / "no_permission.jpg"
        locked.write_bytes(encode(photo(seed=16), "JPEG"))
        locked.chmod(0)
        expected["no_permission.jpg"] = "unreadable"
    return expected


# --- files that are not files: a reader must check what it opens -------------------------------------

SPARSE_SIZE = 3 << 30  # a 3 GiB sparse file: costs no disk, would cost 3 GiB of memory if read


def write_special_files(root: Path, with_dev_zero: bool = True, with_sparse: bool = True) -> dict[str, tuple[str, str]]:
    """Write things named like photos that are not regular files of sane size into ``root``;
    return {file name: (expected error_kind, expected reason)}.

    ``zero.jpg`` (a symlink to /dev/zero: endless) and ``huge.jpg`` (sparse, 3 GiB) would cost
    unbounded or gigabytes of memory to a naive reader: leave them out where a test runs today's
    code in its own process without a memory limit.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "pipe.jpg")
    expected = {"pipe.jpg": ("unreadable", "not a regular file (FIFO)")}
    _make_socket(root / "sock.jpg")
    expected["sock.jpg"] = ("unreadable", "not a regular file (socket)")
    if with_dev_zero:
        os.symlink("/dev/zero", root / "zero.jpg")
        expected["zero.jpg"] = ("unreadable", "not a regular file (character device)")
    if with_sparse:
        with open(root / "huge.jpg", "wb") as handle:
            handle.truncate(SPARSE_SIZE)
        expected["huge.jpg"] = ("too-large", "3 GiB, over the limit of 512 MiB per image")
    return expected


def _make_socket(path: Path) -> None:
    """A Unix socket file at ``path`` (bound from its folder: socket paths are limited to ~108 bytes)."""
    import contextlib
    import socket

    with contextlib.chdir(path.parent), socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path.name)  # the file stays when the socket closes


LATIN1_NAME = "caf\xe9.jpg".encode("latin-1")  # b"caf\xe9.jpg": a file name that is not UTF-8
LATIN1_FOLDER = "m\xfcnchen".encode("latin-1")


def write_odd_names(root: Path) -> Path:
    """``root/photos`` with ``good.jpg``, a Latin-1 named ``caf\\xe9.jpg``, and ``x.jpg`` inside a Latin-1
    named folder ``m\\xfcnchen``: the two odd ones each owe an error row, the good one a score."""
    photos = os.path.join(os.fsencode(root), b"photos")
    os.makedirs(os.path.join(photos, LATIN1_FOLDER))
    for seed, name in enumerate((b"good.jpg", LATIN1_NAME, os.path.join(LATIN1_FOLDER, b"x.jpg"))):
        with open(os.path.join(photos, name), "wb") as file:
            file.write(encode(photo(seed=seed), "JPEG", quality=90))
    return Path(os.fsdecode(photos))
