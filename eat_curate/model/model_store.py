"""The model store: named models in one folder, plus models built into the package.

Location: ``--models-dir``, else ``$EAT_CURATE_HOME/models``, else the
user's data folder (``~/.local/share/eat-curate/models`` on Linux). Each model
is a sub-folder ``<name>/`` holding ``model.safetensors`` and ``card.json``
(and, for a model trained here, the list of its training images:
``model.training_images``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from eat_curate.model.card import CARD_FILE, ModelCard, ModelError, read_card, validate_model_name
from eat_curate.model.presets import EATPreset, get_preset

if TYPE_CHECKING:
    import torch

    from eat_curate.model.checkpoint import LoadedModel
    from eat_curate.model.eat import EAT

# Finding, listing and describing models reads cards only; torch is imported by what loads or writes weights.

HOME_ENV = "EAT_CURATE_HOME"
BUILTIN_DIR = Path(__file__).parent / "builtin"
UNTRAINED_SCOPE = "untrained: random weights for tests and benchmarks; its scores mean nothing"


def default_home() -> Path:
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("eat-curate", appauthor=False))


def default_models_dir() -> Path:
    return default_home() / "models"


class ModelStore:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_models_dir()

    # --- reading ---------------------------------------------------------------

    def builtin_names(self) -> list[str]:
        if not BUILTIN_DIR.is_dir():
            return []
        return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / CARD_FILE).is_file())

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CARD_FILE).is_file())

    def list(self) -> list[tuple[ModelCard, bool]]:
        """Every model as (card, built_in); a store model shadows a built-in of the same name."""
        own = {name: read_card(self.root / name) for name in self.names()}
        builtin = {name: read_card(BUILTIN_DIR / name) for name in self.builtin_names() if name not in own}
        entries = [(card, False) for card in own.values()] + [(card, True) for card in builtin.values()]
        return sorted(entries, key=lambda entry: entry[0].name)

    def default_name(self) -> str | None:
        """The model ``score`` uses without ``--model``: the first built-in, if the package ships one."""
        names = self.builtin_names()
        return names[0] if names else None

    def resolve(self, ref: str | Path) -> Path:
        """A model folder from a store name, a built-in name or a path to a model folder."""
        candidate = Path(ref).expanduser()
        if candidate.is_dir() and (candidate / CARD_FILE).is_file():
            return candidate
        if candidate.is_file() and candidate.parent.joinpath(CARD_FILE).is_file():
            return candidate.parent
        name = str(ref)
        if (self.root / name / CARD_FILE).is_file():
            return self.root / name
        if (BUILTIN_DIR / name / CARD_FILE).is_file():
            return BUILTIN_DIR / name
        known = sorted(set(self.names()) | set(self.builtin_names()))
        hint = f"known models: {', '.join(known)}" if known else f"the store {self.root} is empty"
        raise ModelError(
            f"no model {name!r}: not a model folder and not in the store ({hint}); "
            "create one with `eat-curate models init` or `eat-curate models import`"
        )

    def card(self, ref: str | Path) -> ModelCard:
        return read_card(self.resolve(ref))

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

    def save(
        self,
        model: EAT,
        card: ModelCard,
        overwrite: bool = False,
        weights_dtype: torch.dtype | None = None,
        attachments: Mapping[str, bytes] | None = None,
    ) -> ModelCard:
        """Write atomically: into a temporary sibling folder, then renamed into place (``weights_dtype``:
        float32 unless given; ``attachments``: other files of the model, see ``checkpoint.save_model``)."""
        import torch

        from eat_curate.model.checkpoint import save_model

        weights_dtype = weights_dtype or torch.float32
        folder = self._target(card.name, overwrite)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{card.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        card = save_model(model, card, staging, weights_dtype, attachments)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
        return card

    def init(self, preset: str | EATPreset, name: str, seed: int = 0, overwrite: bool = False) -> ModelCard:
        """An untrained model with seeded random weights, for tests and benchmarks."""
        import torch

        from eat_curate.model.eat import EAT

        spec = get_preset(preset) if isinstance(preset, str) else preset
        self._target(name, overwrite)
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

    def remove(self, name: str) -> Path:
        validate_model_name(name)
        folder = self.root / name
        if not (folder / CARD_FILE).is_file():
            if name in self.builtin_names():
                raise ModelError(f"{name!r} is built into the package and cannot be removed")
            raise ModelError(f"no model {name!r} in {self.root}")
        shutil.rmtree(folder)
        return folder
