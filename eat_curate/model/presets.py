"""EAT presets as data: one frozen record per named architecture.

The numbers are those of the published DAT/EAT configurations (see
docs EAT-MODEL.md). A preset never subclasses the network; ``EAT(preset)``
reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class EATPreset:
    name: str
    dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    groups: tuple[int, int, int, int]  # deformable groups; stages 1-2 have none (0)
    drop_path_rate: float
    image_size: int = 224
    patch_size: int = 4
    window_size: int = 7
    mlp_ratio: int = 4
    offset_range_factor: float = 2.0
    offset_kernel_sizes: tuple[int, int, int, int] = (9, 7, 5, 3)
    num_bins: int = 10
    # Block kinds per stage: L local window, S shifted window, D deformable.
    stage_specs: tuple[tuple[str, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.stage_specs:
            specs = (
                ("L", "S") * (self.depths[0] // 2),
                ("L", "S") * (self.depths[1] // 2),
                ("L", "D") * (self.depths[2] // 2),
                ("L", "D") * (self.depths[3] // 2),
            )
            object.__setattr__(self, "stage_specs", specs)
        for stage, (spec, depth) in enumerate(zip(self.stage_specs, self.depths)):
            if len(spec) != depth:
                raise ValueError(f"preset {self.name}: stage {stage} has {depth} blocks but spec {spec}")
        for size in self.feature_sizes:
            if size % self.window_size:
                raise ValueError(
                    f"preset {self.name}: feature size {size} is not a multiple of window {self.window_size}"
                )

    @property
    def feature_sizes(self) -> tuple[int, int, int, int]:
        first = self.image_size // self.patch_size
        return (first, first // 2, first // 4, first // 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EATPreset":
        """Rebuild a preset from ``to_dict`` output (JSON turns tuples into lists).

        ``data`` comes from a file (a model's card): every field is checked, so a hand-edited or damaged
        architecture is a ValueError naming the field, never a TypeError deep inside the network.
        """
        if not isinstance(data, dict):
            raise ValueError(f"not a mapping of fields but {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known, key=str)
        if unknown:
            raise ValueError(f"unknown fields {', '.join(map(str, unknown))}")
        missing = sorted(name for name in ("name", "dims", "depths", "heads", "groups", "drop_path_rate")
                         if name not in data)
        if missing:
            raise ValueError(f"missing fields {', '.join(missing)}")
        fields = {key: _checked_field(key, value) for key, value in data.items()}
        return cls(**fields)


# What a preset read from a file may hold. The upper bounds are far above any real EAT and keep a
# damaged or hostile card from asking for a network of terabytes before its weights are compared.
_FOUR_COUNTS = {"dims": (1, 16384), "depths": (0, 256), "heads": (1, 1024), "groups": (0, 1024),
                "offset_kernel_sizes": (1, 63)}
_COUNTS = {"image_size": (1, 8192), "patch_size": (1, 64), "window_size": (1, 512), "mlp_ratio": (1, 64),
           "num_bins": (1, 1000)}
_RATES = {"drop_path_rate": (0.0, 1.0), "offset_range_factor": (0.0, 64.0)}
_BLOCK_KINDS = ("L", "S", "D")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_field(key: str, value: object) -> object:
    if key == "name":
        if not isinstance(value, str):
            raise ValueError(f"name must be text, not {value!r}")
        return value
    if key in _FOUR_COUNTS:
        low, high = _FOUR_COUNTS[key]
        if not (isinstance(value, (list, tuple)) and len(value) == 4
                and all(_is_int(v) and low <= v <= high for v in value)):
            raise ValueError(f"{key} must be 4 whole numbers from {low} to {high}, not {value!r}")
        return tuple(value)
    if key in _COUNTS:
        low, high = _COUNTS[key]
        if not (_is_int(value) and low <= value <= high):
            raise ValueError(f"{key} must be a whole number from {low} to {high}, not {value!r}")
        return value
    if key in _RATES:
        low, high = _RATES[key]
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high):
            raise ValueError(f"{key} must be a number from {low} to {high}, not {value!r}")  # NaN fails too
        return float(value)
    # stage_specs: one list of block kinds per stage
    if not (isinstance(value, (list, tuple)) and len(value) in (0, 4)
            and all(isinstance(spec, (list, tuple)) and all(kind in _BLOCK_KINDS for kind in spec)
                    for spec in value)):
        raise ValueError(f"stage_specs must be 4 lists of block kinds {'/'.join(_BLOCK_KINDS)}, not {value!r}")
    return tuple(tuple(spec) for spec in value)


PRESETS: dict[str, EATPreset] = {
    preset.name: preset
    for preset in (
        EATPreset(
            name="tiny",
            dims=(96, 192, 384, 768),
            depths=(2, 2, 6, 2),
            heads=(3, 6, 12, 24),
            groups=(0, 0, 3, 6),
            drop_path_rate=0.2,
        ),
        EATPreset(
            name="small",
            dims=(96, 192, 384, 768),
            depths=(2, 2, 18, 2),
            heads=(3, 6, 12, 24),
            groups=(0, 0, 3, 6),
            drop_path_rate=0.3,
        ),
        EATPreset(
            name="base",
            dims=(128, 256, 512, 1024),
            depths=(2, 2, 18, 2),
            heads=(4, 8, 16, 32),
            groups=(0, 0, 4, 8),
            drop_path_rate=0.5,
        ),
        # Not a published configuration: the laptop preset of the built-in model. Half
        # of tiny's widths, one local and one deformable block in stages 3 and 4, and
        # fewer, wider heads (48 channels each): scores ~4x faster than tiny on a CPU.
        EATPreset(
            name="nano",
            dims=(48, 96, 192, 384),
            depths=(2, 2, 2, 2),
            heads=(1, 2, 4, 8),
            groups=(0, 0, 2, 4),
            drop_path_rate=0.1,
        ),
        # 384 input gives feature sizes 96/48/24/12, so the published
        # configuration uses 12x12 windows.
        EATPreset(
            name="base-384",
            dims=(128, 256, 512, 1024),
            depths=(2, 2, 18, 2),
            heads=(4, 8, 16, 32),
            groups=(0, 0, 4, 8),
            drop_path_rate=0.5,
            image_size=384,
            window_size=12,
        ),
    )
}


def get_preset(name: str) -> EATPreset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown preset {name!r}; known presets: {known}") from None
