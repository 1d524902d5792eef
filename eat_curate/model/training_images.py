"""The images a model was trained and validated on, kept beside its weights.

A trained model's folder holds ``training-images.txt.gz``: one line per
image, ``<split>\\t<path>``, the split being ``train`` (fitted on) or ``val``
(picked the kept epoch), the path resolved (absolute, symlinks followed) as
the trainer read it. The card names the file and counts it
(``extra.training_images``). ``evaluate`` reads it to tell when a label set
overlaps what the model has already seen, whatever label file lists them.

Paths identify images on the machine that trained the model; on another
machine, or after the photos moved, no overlap is found.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

TRAINING_IMAGES_FILE = "training-images.txt.gz"
SEEN_SPLITS = ("train", "val")


def image_identity(path: str | os.PathLike) -> str:
    """How an image is named in the record: its absolute path with symlinks resolved."""
    return os.path.realpath(path)


def encode_training_images(splits: Mapping[str, Iterable[str | os.PathLike]]) -> bytes:
    """The file's bytes for ``{"train": paths, "val": paths}``: sorted lines, gzip without a time stamp,
    so the same images give the same bytes."""
    lines = sorted(f"{split}\t{image_identity(path)}" for split in SEEN_SPLITS for path in splits.get(split, ()))
    text = "".join(f"{line}\n" for line in lines)
    return gzip.compress(text.encode("utf-8", errors="surrogateescape"), mtime=0)


def read_training_images(folder: Path) -> dict[str, set[str]] | None:
    """``{"train": paths, "val": paths}`` from a model folder; None when the model records none."""
    path = Path(folder) / TRAINING_IMAGES_FILE
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="surrogateescape")
    except (OSError, EOFError):  # missing, or damaged: the check is a courtesy, not a gate
        return None
    seen: dict[str, set[str]] = {split: set() for split in SEEN_SPLITS}
    for line in text.splitlines():
        split, _, image = line.partition("\t")
        if split in seen and image:
            seen[split].add(image)
    return seen
