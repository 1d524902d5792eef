"""The model store: named models in one folder, plus models built into the package.

Location: ``--models-dir``, else ``$EAT_CURATE_HOME/models``, else the
user's data folder (``~/.local/share/eat-curate/models`` on Linux). Each model
is a sub-folder ``<name>/`` holding ``model.safetensors`` and ``card.json``
(and, for a model trained here, the list of its training images:
``model.training_images``).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eat_curate.errors import is_storage_error
from eat_curate.model.card import (
    CARD_FILE,
    WEIGHTS_FILE,
    BrokenModelError,
    ModelCard,
    ModelError,
    read_card,
    validate_model_name,
)
from eat_curate.model.presets import EATPreset, get_preset
from eat_curate.model.training_images import TRAINING_IMAGES_FILE
from eat_curate.model.weights_file import read_weights_header

if TYPE_CHECKING:
    import torch

    from eat_curate.model.checkpoint import LoadedModel
    from eat_curate.model.eat import EAT

# Finding, listing and describing models reads cards only; torch is imported by what loads or writes weights.

HOME_ENV = "EAT_CURATE_HOME"
BUILTIN_DIR = Path(__file__).parent / "builtin"
UNTRAINED_SCOPE = "untrained: random weights for tests and benchmarks; its scores mean nothing"
# The files a model folder may hold: what `models remove` deletes, and nothing else.
MODEL_FILES = frozenset({CARD_FILE, WEIGHTS_FILE, TRAINING_IMAGES_FILE, "README.md"})


def default_home() -> Path:
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("eat-curate", appauthor=False))


def default_models_dir() -> Path:
    return default_home() / "models"


@dataclass(frozen=True)
class StoreEntry:
    """One model folder as `models list` shows it: its card, or the problem that makes it unusable."""

    name: str  # the folder's name: what --model takes
    folder: Path
    built_in: bool
    card: ModelCard | None
    problem: str | None  # None: card and weights file look whole (the weights' hash is checked on loading)


def _visible_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` that may be models: hidden ones are a save in progress (or left by a crash)."""
    try:
        return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:  # no store yet, or not a folder: no models in it
        return []


def _entry(folder: Path, built_in: bool) -> StoreEntry:
    try:
        card = read_card(folder)
    except BrokenModelError as error:
        problem = error.problem
        if not (folder / WEIGHTS_FILE).exists() and not (folder / CARD_FILE).exists():
            problem = f"no {CARD_FILE} and no {WEIGHTS_FILE} in it"
        return StoreEntry(folder.name, folder, built_in, None, problem)
    try:
        read_weights_header(folder)
    except BrokenModelError as error:
        return StoreEntry(folder.name, folder, built_in, card, error.problem)
    return StoreEntry(folder.name, folder, built_in, card, None)


def _broken(folder: Path) -> BrokenModelError:
    """Why ``folder``, in the store or named by path, is no usable model although it is there."""
    return BrokenModelError(folder, _entry(folder, built_in=False).problem or f"{CARD_FILE} is missing")


def _is_plain_name(ref: str) -> bool:
    try:
        validate_model_name(ref)
        return True
    except ModelError:
        return False


class ModelStore:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_models_dir()

    # --- reading ---------------------------------------------------------------

    def builtin_names(self) -> list[str]:
        if not BUILTIN_DIR.is_dir():
            return []
        return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / CARD_FILE).is_file())

    def names(self) -> list[str]:
        """The store's models that have a card (whether or not it reads)."""
        return [p.name for p in _visible_folders(self.root) if (p / CARD_FILE).is_file()]

    def list(self) -> list[StoreEntry]:
        """Every model folder of the store, broken ones with their problem, then the built-in models
        (a store model shadows a built-in of the same name)."""
        own = [_entry(folder, built_in=False) for folder in _visible_folders(self.root)]
        taken = {entry.name for entry in own}
        builtin = [_entry(BUILTIN_DIR / name, built_in=True) for name in self.builtin_names() if name not in taken]
        return sorted(own + builtin, key=lambda entry: entry.name)

    def default_name(self) -> str | None:
        """The model ``score`` uses without ``--model``: the first built-in, if the package ships one."""
        names = self.builtin_names()
        return names[0] if names else None

    def resolve(self, ref: str | Path) -> Path:
        """A model folder from a store name, a built-in name or a path to a model folder."""
        try:
            candidate = Path(ref).expanduser()
            if candidate.is_dir() and (candidate / CARD_FILE).is_file():
                return candidate
            if candidate.is_file() and candidate.parent.joinpath(CARD_FILE).is_file():
                return candidate.parent
            if candidate.is_dir() and candidate.joinpath(WEIGHTS_FILE).exists():  # a model whose card is broken
                raise _broken(candidate)
        except (OSError, ValueError):  # a name too long for a path, or holding a NUL: not a folder
            pass
        name = str(ref)
        if _is_plain_name(name):  # never a path out of the store ("../x")
            folder = self.root / name
            if (folder / CARD_FILE).is_file():
                return folder
            if folder.is_dir():
                raise _broken(folder)
            if (BUILTIN_DIR / name / CARD_FILE).is_file():
                return BUILTIN_DIR / name
        known = sorted(set(self.names()) | set(self.builtin_names()))
        hint = f"known models: {', '.join(known)}" if known else f"the store {self.root} is empty"
        shown = name if len(name) <= 80 else f"{name[:40]}... ({len(name)} characters)"
        raise ModelError(
            f"no model {shown!r}: not a model folder and not in the store ({hint}); "
            "create one with `eat-curate models init` or `eat-curate models import`"
        )

    def card(self, ref: str | Path) -> ModelCard:
        return read_card(self.resolve(ref))

    def entry(self, ref: str | Path) -> StoreEntry:
        """``ref``'s card and the problem of its weights, if any; BrokenModelError if its card does not read."""
        folder = self.resolve(ref)
        entry = _entry(folder, built_in=folder.parent == BUILTIN_DIR)
        if entry.card is None:
            read_card(folder)  # raises, saying what is wrong
        return entry

    def usable_card(self, ref: str | Path) -> ModelCard:
        """``ref``'s card once its card and weights file look whole, else BrokenModelError: what a run checks
        before it starts (Ray's actors would otherwise each find the weights broken)."""
        entry = self.entry(ref)
        if entry.problem:
            raise BrokenModelError(entry.folder, entry.problem)
        return entry.card

    def load(self, ref: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
        from eat_curate.model.checkpoint import load_model

        return load_model(self.resolve(ref), map_location)

    # --- writing ---------------------------------------------------------------

    def _target(self, name: str, overwrite: bool) -> Path:
        validate_model_name(name)
        folder = self.root / name
        if folder.exists() and not overwrite:
            raise ModelError(f"model {name!r} already exists in {self.root}; remove it first or pass --force")
        return folder

    def refuse_builtin_name(self, name: str) -> None:
        """ModelError when ``name`` is a built-in model's: a store model of that name would shadow it, and
        `score` without --model would use it."""
        if name in self.builtin_names():
            raise ModelError(f"{name!r} is the name of a model built into the package; choose another name")

    def save(
        self,
        model: EAT,
        card: ModelCard,
        overwrite: bool = False,
        weights_dtype: torch.dtype | None = None,
        attachments: Mapping[str, bytes] | None = None,
    ) -> ModelCard:
        """Write atomically: into a hidden sibling folder of its own, then renamed into place (``weights_dtype``:
        float32 unless given; ``attachments``: other files of the model, see ``checkpoint.save_model``).

        A failed write (full disk, Ctrl-C) leaves nothing behind; two saves of one name at once each
        write their own sibling, and the second to finish finds the name taken (unless ``overwrite``).
        """
        import torch

        from eat_curate.model.checkpoint import save_model

        weights_dtype = weights_dtype or torch.float32
        folder = self._target(card.name, overwrite)
        staging = self.root / f".{card.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as error:
            raise self._unwritable(error) from None
        try:
            card = save_model(model, card, staging, weights_dtype, attachments)
            self._move_into_place(staging, folder, overwrite)
        except OSError as error:
            raise self._unwritable(error) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved into place
        return card

    def _move_into_place(self, staging: Path, folder: Path, overwrite: bool) -> None:
        replaced = None
        if overwrite and folder.exists():
            replaced = staging.with_suffix(".replaced")
            folder.rename(replaced)
        try:
            staging.rename(folder)  # fails when a non-empty folder is there: another save got there first
        except OSError as error:
            if replaced is not None:
                replaced.rename(folder)
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise ModelError(
                    f"model {folder.name!r} was created in {self.root} by someone else meanwhile; nothing written"
                ) from None
            raise
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)

    def _unwritable(self, error: OSError) -> Exception:
        """What a failed write into the store says: a full or read-only disk keeps its OSError (exit 4)."""
        if is_storage_error(error):
            return error
        if error.errno in (errno.EEXIST, errno.ENOTDIR) and not self.root.is_dir():
            return ModelError(f"the model store {self.root} is not a folder (a file is in its way)")
        return ModelError(f"cannot write into the model store {self.root}: {error.strerror or error}")

    def init(self, preset: str | EATPreset, name: str, seed: int = 0, overwrite: bool = False) -> ModelCard:
        """An untrained model with seeded random weights, for tests and benchmarks."""
        import torch

        from eat_curate.model.eat import EAT

        spec = get_preset(preset) if isinstance(preset, str) else preset
        self._target(name, overwrite)
        self.refuse_builtin_name(name)
        torch.manual_seed(seed)
        model = EAT(spec)
        card = ModelCard(
            name=name,
            preset=spec.name,
            architecture=spec.to_dict(),
            trained=False,
            source=f"models init --preset {spec.name} --seed {seed}",
            scope=UNTRAINED_SCOPE,
        )
        return self.save(model, card, overwrite)

    def import_file(
        self, path: Path, preset: str, name: str, fmt: str = "auto", overwrite: bool = False
    ) -> tuple[ModelCard, list[str]]:
        """Import published EAT or DAT ImageNet weights; returns the card and the freshly initialised keys."""
        from eat_curate.model.importers import import_weights

        self._target(name, overwrite)
        self.refuse_builtin_name(name)
        imported = import_weights(Path(path), get_preset(preset), fmt)
        if imported.trained:
            scope = "published EAT weights (imported); see the publication for what they were trained on"
        else:
            scope = "DAT ImageNet backbone with a fresh aesthetics head: an initialisation for training, not a scorer"
        card = ModelCard(
            name=name,
            preset=preset,
            architecture=imported.model.preset.to_dict(),
            head_mode=imported.head_mode,
            steering_mode=imported.steering_mode,
            trained=imported.trained,
            source=f"imported from {Path(path).name} ({imported.format})",
            scope=scope,
            extra={"import_format": imported.format, "fresh_keys": imported.fresh_keys},
        )
        return self.save(imported.model, card, overwrite), imported.fresh_keys

    def removable(self, name: str) -> Path:
        """The store folder ``remove`` deletes; ModelError if it is no model of this store, or if it holds
        files that are not a model's (someone keeps something there: deleting it is not ours to do)."""
        validate_model_name(name)
        folder = self.root / name
        if folder.is_symlink():  # a model kept elsewhere and linked in: remove the link only
            return folder
        if not folder.is_dir():
            if name in self.builtin_names():
                raise ModelError(f"{name!r} is built into the package and cannot be removed")
            raise ModelError(f"no model {name!r} in {self.root}")
        held = {path.name for path in folder.iterdir()}
        if not held & {CARD_FILE, WEIGHTS_FILE}:
            raise ModelError(f"{folder} is not a model (no {CARD_FILE}, no {WEIGHTS_FILE}); nothing removed")
        others = sorted(held - MODEL_FILES)
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise ModelError(f"{folder} holds files that are not the model's ({shown}); "
                             "move them out and remove it again; nothing removed")
        return folder

    def remove(self, name: str) -> Path:
        """Delete store model ``name``, whether or not its card and weights still read (see ``removable``)."""
        folder = self.removable(name)
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
        return folder
