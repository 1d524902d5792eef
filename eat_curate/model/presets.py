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
        """Rebuild a preset from ``to_dict`` output (JSON turns tuples into lists)."""
        fields = dict(data)
        for key, value in fields.items():
            if isinstance(value, list):
                fields[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return cls(**fields)


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
