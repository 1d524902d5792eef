"""What a training run keeps in its folder to resume from and report: the checkpoint, the best weights, metrics.

``last.pt`` holds everything needed to continue exactly where the run
stopped: weights, optimizer and scheduler state, the RNG states, the best
epoch so far and the metrics history. It is written with ``torch.save`` of
plain tensors and containers and read back with ``weights_only=True``, so a
checkpoint can never carry code. Every file is written to a temporary name
and renamed into place: a crash mid-write leaves the previous one intact, and
a write that fails (a full disk) removes its temporary and raises the
``OSError`` itself, naming the file, whatever library serialised it; one the
disk is not to blame for (a folder in the way) is a ``CheckpointError``.
A folder where one of these files belongs is refused before the first epoch
(``refuse_folders_in_the_way``), not found by the write after it.

The best weights must always be those of the epoch the checkpoint names as
the best, whenever the process dies: a new best epoch's weights are staged
(``stage_best_weights``, the epoch in their metadata), the checkpoint naming
that epoch is written, and only then are they put in place
(``promote_best_weights``). A run that resumes settles what a stop between
the writes left (``settle_best_weights``): staged weights of the epoch the
checkpoint names are put in place, any others removed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from eat_curate.errors import EatCurateError, is_storage_error

CHECKPOINT_FILE = "last.pt"
BEST_WEIGHTS_FILE = "best.safetensors"
STAGED_BEST_WEIGHTS_FILE = "best.next.safetensors"  # a new best epoch's weights, until its checkpoint is written
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"  # written when a run finishes: best epoch, data, test metrics
# Every file a run writes, and what it is, for messages.
RUN_FILES = {
    CHECKPOINT_FILE: "checkpoint",
    BEST_WEIGHTS_FILE: "best weights",
    STAGED_BEST_WEIGHTS_FILE: "new best weights",
    METRICS_FILE: "metrics",
    SUMMARY_FILE: "summary",
}
STATE_FORMAT = 1
WEIGHTS_EPOCH_KEY = "epoch"  # the safetensors metadata entry of best weights: the epoch they are of (from 1)
# What every checkpoint of STATE_FORMAT holds (a run may add more, e.g. its data's fingerprint).
CHECKPOINT_KEYS = frozenset(
    {"epoch", "config", "model", "optimizer", "scheduler", "rng", "history", "best_epoch", "best_srcc"}
)


class CheckpointError(EatCurateError):
    """A run folder's checkpoint is missing, unreadable, from another configuration, or cannot be written."""


@dataclass
class EpochRecord:
    """One row of the metrics CSV."""

    epoch: int  # counted from 1
    phase: str  # explore | exploit
    lr: float  # at the epoch's last step
    train_loss: float
    train_images: int
    images_per_s: float
    decode_failures: int
    val_srcc: float
    val_plcc: float
    val_accuracy: float
    val_emd: float | None
    val_count: int
    toward_share: float | None  # share of sampling displacement heading into the interest quadrant
    seconds: float

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


class _RecordedWrites:
    """A file for a serialiser that hides I/O errors (torch.save turns ENOSPC into a RuntimeError):
    keeps the ``OSError`` of the write that failed, so it can be raised as itself."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def _temporary_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _replace_atomically(path: Path, write: Callable[[_RecordedWrites], object]) -> None:
    """Write through ``write(file)`` into a temporary, then rename it over ``path``."""
    temporary = _temporary_of(path)
    try:
        _write_then_rename(temporary, path, write)
    except OSError as error:
        raise _write_failure(error, path) from None


def _write_failure(error: OSError, path: Path) -> Exception:
    """What a failed write of the run file ``path`` is raised as."""
    if is_storage_error(error):  # the operator's matter (exit 4), named as the OSError it is
        return OSError(error.errno, error.strerror, str(path))
    return CheckpointError(f"cannot write {path}: {error.strerror or error}")


def _write_then_rename(temporary: Path, path: Path, write: Callable[[_RecordedWrites], object]) -> None:
    try:
        with open(temporary, "wb") as handle:
            recorded = _RecordedWrites(handle)
            try:
                write(recorded)
            except Exception:
                if recorded.error is None:
                    raise
                raise recorded.error from None
        os.replace(temporary, path)
    except BaseException:  # Ctrl-C included: never a partial file left behind
        if not temporary.is_dir():  # a folder of that name is not ours to remove
            temporary.unlink(missing_ok=True)  # a partial file would only take the space a retry needs
        raise


def write_metrics_csv(folder: Path, history: list[EpochRecord]) -> Path:
    path = folder / METRICS_FILE

    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=EpochRecord.columns())
    writer.writeheader()
    for record in history:
        writer.writerow(asdict(record))
    _replace_atomically(path, lambda handle: handle.write(text.getvalue().encode()))
    return path


def read_metrics_csv(folder: Path) -> list[EpochRecord]:
    """The metrics CSV back as records (empty cells are None)."""
    kinds = {f.name: f.type for f in fields(EpochRecord)}

    def parse(name: str, text: str) -> object:
        if text == "":
            return None
        if name == "phase":
            return text
        return int(text) if kinds[name] == "int" else float(text)

    with open(folder / METRICS_FILE, newline="") as handle:
        return [EpochRecord(**{k: parse(k, v) for k, v in row.items()}) for row in csv.DictReader(handle)]


def write_summary(folder: Path, summary: dict) -> Path:
    path = folder / SUMMARY_FILE
    _replace_atomically(path, lambda handle: handle.write((json.dumps(summary, indent=2) + "\n").encode()))
    return path


def read_summary(folder: Path) -> dict:
    path = folder / SUMMARY_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the run did not finish")
    return json.loads(path.read_text())


def stage_best_weights(folder: Path, state: dict[str, torch.Tensor], epoch: int) -> None:
    """Write epoch ``epoch``'s weights (from 1) beside the best ones, to be put in their place once the
    checkpoint that names ``epoch`` the best is written (``promote_best_weights``)."""
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in state.items()}
    encoded = safetensors_bytes(tensors, metadata={WEIGHTS_EPOCH_KEY: str(epoch)})
    _replace_atomically(folder / STAGED_BEST_WEIGHTS_FILE, lambda handle: handle.write(encoded))


def promote_best_weights(folder: Path) -> None:
    """Put the staged weights in the place of the best ones; call only once the checkpoint names their epoch."""
    path = folder / BEST_WEIGHTS_FILE
    try:
        os.replace(folder / STAGED_BEST_WEIGHTS_FILE, path)
    except OSError as error:
        raise _write_failure(error, path) from None


def settle_best_weights(folder: Path, best_epoch: int) -> None:
    """After a stop between the writes of an epoch: staged weights of ``best_epoch`` (the checkpoint's, 0 for
    none) were the next thing to put in place, so they are; staged weights of any other epoch belong to an
    epoch the checkpoint does not hold, and are removed."""
    staged = folder / STAGED_BEST_WEIGHTS_FILE
    if not staged.is_file():
        return
    try:
        epoch = _weights_epoch(staged)
    except CheckpointError:
        epoch = None  # unreadable: nothing the checkpoint can name
    if epoch is not None and epoch == best_epoch:
        promote_best_weights(folder)
        return
    try:
        staged.unlink()
    except OSError as error:
        raise _write_failure(error, staged) from None


def _weights_epoch(path: Path) -> int | None:
    """The epoch that best weights recorded they are of; None for the files of runs from before they did."""
    try:
        with safe_open(str(path), "pt") as weights:
            epoch = (weights.metadata() or {}).get(WEIGHTS_EPOCH_KEY)
        return int(epoch) if epoch is not None else None
    except (SafetensorError, OSError, ValueError):
        raise CheckpointError(f"{path} is damaged or not a weights file") from None


def load_best_weights(folder: Path, best_epoch: int) -> dict[str, torch.Tensor]:
    """The kept weights, which must be of ``best_epoch``, the epoch the checkpoint names the best."""
    path = folder / BEST_WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: no epoch of this run was eligible as the best")
    epoch = _weights_epoch(path)
    if epoch is not None and epoch != best_epoch:
        raise CheckpointError(
            f"{path} holds the weights of epoch {epoch}, but the run's checkpoint keeps epoch {best_epoch} as the "
            "best: the weights of that epoch are lost; start the run over with another --checkpoint-dir"
        )
    return load_file(str(path))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, state: dict) -> Path:
    path = folder / CHECKPOINT_FILE
    _replace_atomically(path, lambda handle: torch.save({"format": STATE_FORMAT, **state}, handle))
    return path


def refuse_folders_in_the_way(folder: Path) -> None:
    """Refuse a run folder that holds a folder where the run writes one of its files (or that file's temporary),
    before training rather than at the first write, an epoch or the whole run later."""
    for name, what in RUN_FILES.items():
        final = folder / name
        for path, role in ((final, f"keeps its {what}"), (_temporary_of(final), f"writes its {what} first")):
            if path.is_dir() and not path.is_symlink():  # a link is replaced, not written through
                raise CheckpointError(
                    f"{path} is a folder, where the run {role} as a file: move the folder away, "
                    "or give another --checkpoint-dir"
                )


def _not_a_checkpoint_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a checkpoint before opening it (a FIFO would block); None if it can."""
    if path.is_file():
        return None
    if path.is_symlink() and not path.exists():
        return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
    if not path.exists():
        return f"{path} does not exist (no epoch of this run finished)"
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint file"
    return f"{path} is not a regular file"


def load_checkpoint(folder: Path) -> dict:
    path = folder / CHECKPOINT_FILE
    problem = _not_a_checkpoint_file(path)
    if problem is not None:
        raise CheckpointError(f"cannot resume: {problem}")
    # torch's own reasons run to many lines; what matters is that the file cannot be used.
    start_over = "delete it to start the run over, or give another --checkpoint-dir"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError):
        raise CheckpointError(
            f"cannot resume: {path} is damaged (cut short by a crash or a full disk?) or not a checkpoint; {start_over}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not CHECKPOINT_KEYS <= state.keys():
        raise CheckpointError(
            f"cannot resume: {path} is not a checkpoint of this version of eat-curate; {start_over}"
        )
    return state


def has_checkpoint(folder: Path) -> bool:
    return os.path.isfile(folder / CHECKPOINT_FILE)  # False, not an error, for a name too long to look up


def history_to_state(history: list[EpochRecord]) -> list[dict]:
    return [asdict(record) for record in history]


def history_from_state(rows: list[dict]) -> list[EpochRecord]:
    return [EpochRecord(**row) for row in rows]
