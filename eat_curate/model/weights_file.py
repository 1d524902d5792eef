"""A model's weights file checked by its header alone, without torch: what `models list` can say quickly.

A safetensors file is 8 bytes (little-endian length N), N bytes of JSON
naming each tensor's dtype, shape and byte range, then the data, which the
ranges must cover exactly. A file cut short by a full disk or a failed copy
fails these checks, so the store names it broken without reading, hashing
or loading the weights; ``checkpoint`` does all three before a model is used.
"""

from __future__ import annotations

import json
import math
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from eat_curate.model.card import WEIGHTS_FILE, BrokenModelError

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]


def read_weights_header(folder: Path) -> dict[str, TensorEntry]:
    """The tensors ``folder``'s weights file declares; BrokenModelError if the file is missing or its
    header does not describe exactly the bytes it holds."""
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    try:
        facts = path.stat()
        if not stat.S_ISREG(facts.st_mode):
            raise BrokenModelError(folder, f"{WEIGHTS_FILE} is not a regular file")
        if facts.st_size == 0:
            raise BrokenModelError(folder, f"{WEIGHTS_FILE} is empty (0 bytes)")
        with open(path, "rb") as handle:
            head = handle.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            if length is None or length > min(MAX_HEADER_BYTES, facts.st_size - 8):
                raise _damaged(folder, f"it holds {facts.st_size:,} bytes, fewer than its header claims (cut short)")
            header = handle.read(length)
    except FileNotFoundError:
        raise BrokenModelError(folder, f"{WEIGHTS_FILE} is missing") from None
    except OSError as error:
        raise BrokenModelError(folder, f"cannot read {WEIGHTS_FILE}: {error.strerror or error}") from None
    try:
        declared = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _damaged(folder, "its header is not JSON") from None
    if not isinstance(declared, dict):
        raise _damaged(folder, "its header is not a JSON object")
    return _entries(folder, declared, facts.st_size - 8 - length)


def _entries(folder: Path, declared: dict, data_bytes: int) -> dict[str, TensorEntry]:
    entries, ranges = {}, []
    for name, entry in declared.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            size = DTYPE_BYTES[dtype] * math.prod(shape)
            valid = all(isinstance(n, int) and n >= 0 for n in (*shape, begin, end)) and end - begin == size
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise _damaged(folder, f"its header describes tensor {name!r} wrongly")
        entries[name] = TensorEntry(dtype, tuple(shape))
        ranges.append((begin, end))
    covered = 0
    for begin, end in sorted(ranges):
        if begin != covered:
            raise _damaged(folder, "its header's tensors overlap or leave gaps")
        covered = end
    if covered != data_bytes:
        how = "cut short" if covered > data_bytes else "bytes its header does not describe"
        raise _damaged(folder, f"its header describes {covered:,} bytes of tensors, the file holds {data_bytes:,} "
                               f"({how})")
    return entries


def _damaged(folder: Path, detail: str) -> BrokenModelError:
    return BrokenModelError(folder, f"{WEIGHTS_FILE} is damaged or not safetensors: {detail}")
