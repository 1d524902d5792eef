"""Offset steering: EAT's explore/exploit constraint on deformable offsets.

Every deformable sampling offset is compared with the interest point it
starts from. An offset "heads into the interest point's quadrant" when both
of its components (y and x) have the same sign as the interest point's: it
moves further towards the part of the image the interest point leans to,
usually the salient foreground. A :class:`SteeringRule` scales such offsets
by ``toward`` and all others by ``away``.

- The paper's method: explore first (weaken offsets heading into the
  quadrant so attention visits the background), then exploit (no
  constraint). :class:`SteeringSchedule` says which rule holds at an epoch.
- The published code: one fixed rule at all times, ``toward=1, away=0.25``
  (:data:`PUBLISHED_RULE`); imported published checkpoints need it to
  reproduce their outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from eat_curate.model.modes import STEERING_MODES


@dataclass(frozen=True)
class SteeringRule:
    toward: float = 1.0
    away: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.toward == 1.0 and self.away == 1.0

    def to_dict(self) -> dict:
        return asdict(self)


NO_STEERING = SteeringRule(toward=1.0, away=1.0)
PUBLISHED_RULE = SteeringRule(toward=1.0, away=0.25)
DEFAULT_EXPLORE_RULE = SteeringRule(toward=0.25, away=1.0)


def heads_toward_interest(offset: torch.Tensor, interest: torch.Tensor) -> torch.Tensor:
    """True where both components of ``offset`` share the signs of ``interest``.

    A product of exactly zero does not count as sharing a sign, as in the
    published rule. Shapes broadcast; the last dimension holds (y, x).
    """
    return ((offset * interest) > 0).all(dim=-1)


def apply_steering(offset: torch.Tensor, interest: torch.Tensor, rule: SteeringRule) -> torch.Tensor:
    """Scale each 2-vector of ``offset`` by ``rule.toward`` or ``rule.away``."""
    if rule.is_identity:
        return offset
    toward = heads_toward_interest(offset, interest).unsqueeze(-1)
    # Python scalars keep it all on the offsets' device: no tensor built on the host.
    return offset * torch.where(toward, rule.toward, rule.away).to(offset.dtype)


@dataclass(frozen=True)
class SteeringSchedule:
    """Explore for the first ``explore_epochs`` epochs, exploit afterwards."""

    explore_epochs: int
    explore: SteeringRule = DEFAULT_EXPLORE_RULE
    exploit: SteeringRule = NO_STEERING

    def rule_at(self, epoch: int) -> SteeringRule:
        """The rule in force during ``epoch`` (counted from 0)."""
        return self.explore if epoch < self.explore_epochs else self.exploit

    def to_dict(self) -> dict:
        return {
            "explore_epochs": self.explore_epochs,
            "explore": self.explore.to_dict(),
            "exploit": self.exploit.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "SteeringSchedule":
        return cls(
            explore_epochs=int(data["explore_epochs"]),
            explore=SteeringRule(**data["explore"]),
            exploit=SteeringRule(**data["exploit"]),
        )


def inference_rule(mode: str, schedule: SteeringSchedule | None = None) -> SteeringRule:
    """The rule a model runs with when scoring, from its card's steering mode."""
    if mode == "published":
        return PUBLISHED_RULE
    if mode == "scheduled":
        if schedule is None:
            raise ValueError("steering mode 'scheduled' needs the schedule it was trained with")
        return schedule.exploit
    if mode == "none":
        return NO_STEERING
    raise ValueError(f"unknown steering mode {mode!r}; expected one of {', '.join(STEERING_MODES)}")
