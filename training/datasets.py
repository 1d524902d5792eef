"""Training data: clean a label set, split it, and serve decoded, augmented batches.

- **Clean up front**: images that are missing, empty, not regular files (a
  FIFO would block the loader), over the per-image byte cap or not
  recognisable as an image are left out and counted by reason (the paper
  drops AVA's missing images the same way). Full decoding happens in the loop, where a failure
  drops that one sample and is counted, never stopping the epoch.
- **One label per image**: one file named twice (``a.jpg`` and ``./a.jpg``, or
  through a link) with the same label is kept once and counted as a duplicate;
  with different labels it is refused, as the label file cannot say which holds.
- **Split**: official lists when given (test ids; training ids, from which a
  seeded 5% is held out for validation), the table's own ``split`` column,
  or a seeded 90/5/5 split. ``val_fraction`` changes the 5% held out.
- **Serve**: the project's decoder and preprocessing (squash to S x S,
  bicubic), a random horizontal flip and an optional resize-then-random-crop
  (TAD66K). Augmentation is drawn from (seed, epoch, index), so a sample
  looks the same whichever process decodes it and whether or not the run was
  resumed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from eat_curate.io.bounded_read import DEFAULT_MAX_BYTES, not_regular_reason
from eat_curate.io.decode import DecodeError, open_for_model
from eat_curate.io.resize import resize_for_model
from eat_curate.io.sources import SourceReadError, read_file
from eat_curate.model.training_images import image_identity
from training.labels import LabeledImage, LabelFileError, LabelSet, read_id_list, strip_image_suffix

SPLIT_FRACTIONS = (0.90, 0.05, 0.05)


@dataclass
class CleanedLabels:
    items: list[LabeledImage]
    dropped: Counter = field(default_factory=Counter)  # reason -> count


def _image_problem(item: LabeledImage) -> str | None:
    """Why an image cannot be used, from its file and header alone (no full decode)."""
    try:
        facts = item.path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    if not_regular_reason(facts.st_mode) is not None:
        return "unreadable"
    if facts.st_size == 0:
        return "empty"
    if facts.st_size > DEFAULT_MAX_BYTES:
        return "too-large"
    try:
        with Image.open(item.path):
            return None
    except Image.DecompressionBombError:
        return "too-large"
    except (UnidentifiedImageError, OSError, ValueError):
        return "not-an-image"


def clean(labels: LabelSet, progress: bool = True, threads: int = 8) -> CleanedLabels:
    """Keep the items whose image exists and looks like an image; count the others by reason."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = list(
            tqdm(
                pool.map(_image_problem, labels.items),
                total=len(labels.items),
                desc="checking images",
                unit="img",
                disable=not progress,
                leave=False,
            )
        )
    kept = [item for item, problem in zip(labels.items, problems) if problem is None]
    dropped = Counter(problem for problem in problems if problem is not None)
    kept, repeats = _one_per_image(kept, labels.source)
    if repeats:
        dropped["duplicate"] = repeats
    return CleanedLabels(kept, dropped)


def _label_of(item: LabeledImage) -> str:
    return f"votes {list(item.votes)}" if item.votes is not None else f"score {item.score:g}"


def _one_per_image(items: list[LabeledImage], source: object) -> tuple[list[LabeledImage], int]:
    """The items with each image file once, and how many repeats with the same label were left out."""
    first: dict[str, LabeledImage] = {}
    kept: list[LabeledImage] = []
    for item in items:
        identity = image_identity(item.path)
        earlier = first.setdefault(identity, item)
        if earlier is item:
            kept.append(item)
        elif (earlier.score, earlier.votes) != (item.score, item.votes):
            raise LabelFileError(
                f"{source}: {earlier.image_id!r} and {item.image_id!r} are the same image ({identity}), labelled "
                f"{_label_of(earlier)} and {_label_of(item)}; label each image once"
            )
    return kept, len(items) - len(kept)


@dataclass
class DataSplit:
    train: list[LabeledImage]
    val: list[LabeledImage]
    test: list[LabeledImage]
    method: str  # how the split was made, for the model card
    unassigned: int = 0  # images in no official list

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _seeded_order(items: Sequence[LabeledImage], seed: int) -> list[LabeledImage]:
    """A seeded shuffle that depends on the image ids only, not on the label file's order."""
    ordered = sorted(items, key=lambda item: item.image_id)
    return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]


def _hold_out(items: Sequence[LabeledImage], fraction: float, seed: int) -> tuple[list, list]:
    shuffled = _seeded_order(items, seed)
    count = max(1, round(len(shuffled) * fraction)) if len(shuffled) > 1 else 0
    return shuffled[count:], shuffled[:count]


def split_items(
    items: Sequence[LabeledImage],
    seed: int,
    train_ids: set[str] | None = None,
    test_ids: set[str] | None = None,
    val_fraction: float | None = None,
) -> DataSplit:
    """Train/val/test from official ids, the table's split column, or a seeded 90/5/5.

    ``val_fraction``: the share held out for validation, of all images (seeded split) or of
    the training images (id lists, a split column without val rows); None: 5% of all.
    """
    held_out = val_fraction if val_fraction is not None else SPLIT_FRACTIONS[1] / sum(SPLIT_FRACTIONS[:2])
    if train_ids is not None or test_ids is not None:
        test_ids = test_ids or set()
        test = [item for item in items if strip_image_suffix(item.image_id) in test_ids]
        rest = [item for item in items if strip_image_suffix(item.image_id) not in test_ids]
        if train_ids is not None:
            train_pool = [item for item in rest if strip_image_suffix(item.image_id) in train_ids]
        else:
            train_pool = rest
        train, val = _hold_out(train_pool, held_out, seed)
        return DataSplit(train, val, test, "official id lists, val held out from train", len(rest) - len(train_pool))
    marked = [item.split for item in items]
    if any(marked):
        if not all(marked):
            raise LabelFileError(f"{marked.count(None)} rows have no split while others do; give every row one")
        train = [item for item in items if item.split == "train"]
        val = [item for item in items if item.split == "val"]
        test = [item for item in items if item.split == "test"]
        if not val:
            train, val = _hold_out(train, held_out, seed)
            return DataSplit(train, val, test, "split column, val held out from train")
        return DataSplit(train, val, test, "split column")
    shuffled = _seeded_order(items, seed)
    val_share = SPLIT_FRACTIONS[1] if val_fraction is None else val_fraction
    # As _hold_out: at least one validation image where there are two, rather than none to train with.
    val_count = max(1, round(len(shuffled) * val_share)) if len(shuffled) > 1 else 0
    test_count = round(len(shuffled) * SPLIT_FRACTIONS[2])
    val, test = shuffled[:val_count], shuffled[val_count : val_count + test_count]
    train_share = 1 - val_share - SPLIT_FRACTIONS[2]
    shares = "90/5/5" if val_fraction is None else f"{100 * train_share:g}/{100 * val_share:g}/5"
    return DataSplit(shuffled[val_count + test_count :], val, test, f"seeded {shares} (seed {seed})")


def load_id_lists(train_ids: str | None, test_ids: str | None) -> tuple[set[str] | None, set[str] | None]:
    return (read_id_list(train_ids) if train_ids else None, read_id_list(test_ids) if test_ids else None)


@dataclass(frozen=True)
class Augmentation:
    flip: bool = False
    crop_from: int | None = None  # resize to this size, then a random crop to the model's input

    @property
    def is_identity(self) -> bool:
        return not self.flip and self.crop_from is None


NO_AUGMENTATION = Augmentation()


class ScoredImages(torch.utils.data.Dataset):
    """Labelled images as (uint8 (S, S, 3) pixels, target) samples; a decode failure yields an error sample."""

    def __init__(
        self,
        items: Sequence[LabeledImage],
        target: str,
        image_size: int,
        augmentation: Augmentation = NO_AUGMENTATION,
        seed: int = 0,
    ) -> None:
        self.items = list(items)
        self.target = target
        self.image_size = image_size
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def target_of(self, item: LabeledImage) -> torch.Tensor:
        if self.target == "votes":
            return torch.from_numpy(item.distribution().astype(np.float32))
        return torch.tensor(item.score, dtype=torch.float32)

    def pixels(self, image: Image.Image, index: int) -> np.ndarray:
        augmentation = self.augmentation
        if augmentation.is_identity:
            return resize_for_model(image, self.image_size)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if augmentation.crop_from:
            pixels = resize_for_model(image, augmentation.crop_from)
            top, left = rng.integers(0, augmentation.crop_from - self.image_size + 1, size=2)
            pixels = pixels[top : top + self.image_size, left : left + self.image_size]
        else:
            pixels = resize_for_model(image, self.image_size)
        if augmentation.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return np.ascontiguousarray(pixels)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        try:
            # The same (reduced-scale where possible) decode as scoring, so trained-on pixels match scored ones.
            image = open_for_model(read_file(str(item.path)), self.augmentation.crop_from or self.image_size)
        except (DecodeError, SourceReadError) as error:
            return {"index": index, "error": error.kind}
        return {"index": index, "pixels": torch.from_numpy(self.pixels(image, index)), "target": self.target_of(item)}


@dataclass
class Batch:
    pixels: torch.Tensor  # (B, S, S, 3) uint8
    targets: torch.Tensor  # (B, 10) distributions or (B,) scores
    indices: torch.Tensor  # (B,) positions in the dataset (shared by the members of a group)
    failures: list[str]  # decode error kinds of the samples dropped from this batch

    def __len__(self) -> int:
        return len(self.indices)


def collate(samples: list[dict | list[dict]]) -> Batch:
    """Stack the decoded samples; dropped ones leave only their error kind.

    A dataset item may also be a *group*: a list of samples that must share a
    batch (a photo and its degraded versions). Its members are flattened into
    the batch and keep the item's index, which is how the loss finds them.
    """
    samples = [member for sample in samples for member in (sample if isinstance(sample, list) else [sample])]
    good = [sample for sample in samples if "error" not in sample]
    failures = [sample["error"] for sample in samples if "error" in sample]
    if not good:
        return Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0), torch.empty(0, dtype=torch.long), failures)
    return Batch(
        torch.stack([sample["pixels"] for sample in good]),
        torch.stack([sample["target"] for sample in good]),
        torch.tensor([sample["index"] for sample in good], dtype=torch.long),
        failures,
    )


def epoch_order(size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """This process's share of a seeded per-epoch shuffle.

    With several processes the shuffle is cut to a multiple of ``world`` so
    each runs the same number of steps (DDP needs every process at every
    step); one process sees the whole shuffle.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(size, generator=generator).tolist()
    usable = size - size % world
    return order[:usable][rank::world]


def make_loader(
    dataset: ScoredImages, order: Sequence[int], batch_size: int, workers: int, seed: int
) -> torch.utils.data.DataLoader:
    """Batches in exactly ``order``; worker processes only decode."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order),
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),  # keeps the global RNG untouched
        persistent_workers=False,
    )
