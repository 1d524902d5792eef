"""Before a run trains: its model's name, its run folder, and folders proven writable, so that what would
fail at the end (a taken name, a read-only store) is refused up front; and what Ctrl-C leaves outside the
epochs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from eat_curate.errors import is_storage_error
from eat_curate.model.card import validate_model_name
from eat_curate.model.model_store import ModelStore
from training import resume_state
from training.config import ConfigError, TrainConfig
from training.errors import TrainingError, TrainingInterrupted, TrainingStorageFailure


def default_run_dir(store: ModelStore, name: str) -> Path:
    """Checkpoints live beside the model store: ``<store>/../training/<name>``."""
    return store.root.parent / "training" / name


def run_folder(config: TrainConfig, store: ModelStore) -> Path:
    """Where the run keeps its checkpoint: ``--checkpoint-dir``, else the default beside the store."""
    return Path(config.checkpoint_dir) if config.checkpoint_dir else default_run_dir(store, config.name)


def interrupted_outside_the_epochs(run_dir: Path | None) -> TrainingInterrupted:
    """What Ctrl-C leaves where this process finished no epoch (before the first began, while resuming, in
    Ray's driver): what the run folder's checkpoint holds, if it has one (from an earlier run, or Ray's workers).
    ``run_dir`` None: the run has no folder yet (no name to give it one)."""
    if run_dir is not None and resume_state.has_checkpoint(run_dir):
        return TrainingInterrupted(
            f"interrupted: {run_dir} holds the checkpoint of the run's last finished epoch", "go on from it", True
        )
    return TrainingInterrupted(
        "interrupted before the first epoch finished: nothing was kept", "start the run over", False
    )

def check_model_name(config: TrainConfig) -> str:
    """The name the model will be saved under; checked before anything is written, as it also names the
    default run folder (``..`` or ``a/b`` would put that folder outside ``training/``)."""
    if not config.name:
        raise ConfigError("give the trained model a name (--name)")
    return validate_model_name(config.name)


def ensure_writable(folder: Path, what: str) -> None:
    """Make ``folder`` (and its parents) and prove a file can be created in it, or refuse, saying why."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        refusal = TrainingStorageFailure if is_storage_error(error) else TrainingError
        raise refusal(f"cannot write the {what} {folder}: {error.strerror or error}") from None


def ensure_name_is_free(config: TrainConfig, store: ModelStore, overwrite: bool) -> None:
    """Refuse up front, not after hours of training, what would fail at the end: a name the store cannot
    take, an existing model (without ``overwrite``), a model store that cannot be written."""
    check_model_name(config)
    if not overwrite and config.name in store.names():
        raise TrainingError(
            f"model {config.name!r} already exists in {store.root}; choose another --name or pass --force"
        )
    ensure_writable(store.root, "model store")
