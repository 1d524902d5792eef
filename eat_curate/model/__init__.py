"""The EAT network, its presets, steering rules and weights.

Names are imported on first use (``eat_curate.lazy_exports``), so reading a
preset does not import torch. Importing ``eat_curate.model.eat`` registers the
presets with timm (``timm.create_model("eat_tiny")``).
"""

from eat_curate.lazy_exports import lazy_exports

_MODULES = {
    "EAT": "eat_curate.model.eat",
    "DeformablePoints": "eat_curate.model.eat",
    "checkpoint_filter_fn": "eat_curate.model.eat",
    "score_moments": "eat_curate.model.eat",
    "PRESETS": "eat_curate.model.presets",
    "EATPreset": "eat_curate.model.presets",
    "get_preset": "eat_curate.model.presets",
    "NO_STEERING": "eat_curate.model.steering",
    "PUBLISHED_RULE": "eat_curate.model.steering",
    "SteeringRule": "eat_curate.model.steering",
    "SteeringSchedule": "eat_curate.model.steering",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
