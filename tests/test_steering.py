"""Offset steering, pinned down on hand-made tensors.

Offsets and interest points are (y, x) pairs. "Heading into the interest
point's quadrant" means both components share the interest point's signs.
"""

import pytest
import torch

from eat_curate.model.steering import (
    DEFAULT_EXPLORE_RULE,
    NO_STEERING,
    PUBLISHED_RULE,
    SteeringRule,
    SteeringSchedule,
    apply_steering,
    heads_toward_interest,
    inference_rule,
)

INTEREST = torch.tensor([[0.5, -0.5]])  # lower-left quadrant: y > 0, x < 0


def offsets(*pairs):
    return torch.tensor(pairs, dtype=torch.float32)


def test_heading_toward_needs_both_signs_to_match():
    cases = offsets([0.1, -0.1], [0.1, 0.1], [-0.1, -0.1], [-0.1, 0.1])
    assert heads_toward_interest(cases, INTEREST).tolist() == [True, False, False, False]


def test_a_zero_component_never_counts_as_heading_toward():
    cases = offsets([0.0, -0.1], [0.1, 0.0], [0.0, 0.0])
    assert heads_toward_interest(cases, INTEREST).tolist() == [False, False, False]
    zero_interest = torch.tensor([[0.0, -0.5]])
    assert heads_toward_interest(offsets([0.1, -0.1]), zero_interest).tolist() == [False]


def test_published_rule_keeps_offsets_into_the_quadrant_and_quarters_the_rest():
    cases = offsets([0.2, -0.4], [0.2, 0.4], [0.0, -0.4])
    steered = apply_steering(cases, INTEREST, PUBLISHED_RULE)
    expected = offsets([0.2, -0.4], [0.05, 0.1], [0.0, -0.1])
    assert torch.allclose(steered, expected)


def test_explore_rule_weakens_offsets_into_the_quadrant():
    cases = offsets([0.2, -0.4], [-0.2, -0.4])
    steered = apply_steering(cases, INTEREST, DEFAULT_EXPLORE_RULE)
    assert torch.allclose(steered, offsets([0.05, -0.1], [-0.2, -0.4]))


def test_custom_factors_can_strengthen_the_background():
    rule = SteeringRule(toward=0.5, away=1.5)
    steered = apply_steering(offsets([0.2, -0.4], [-0.2, 0.4]), INTEREST, rule)
    assert torch.allclose(steered, offsets([0.1, -0.2], [-0.3, 0.6]))


def test_identity_rule_returns_offsets_untouched():
    cases = offsets([0.2, -0.4], [-0.2, 0.4])
    assert apply_steering(cases, INTEREST, NO_STEERING) is cases


def test_rules_broadcast_over_batch_groups_and_positions():
    offset = torch.randn(4, 3, 5, 5, 2)
    interest = torch.randn(4, 3, 5, 5, 2)
    steered = apply_steering(offset, interest, PUBLISHED_RULE)
    kept = heads_toward_interest(offset, interest)
    assert torch.equal(steered[kept], offset[kept])
    assert torch.allclose(steered[~kept], offset[~kept] * 0.25)


def test_schedule_explores_then_exploits():
    schedule = SteeringSchedule(explore_epochs=3)
    assert [schedule.rule_at(epoch) for epoch in range(5)] == [DEFAULT_EXPLORE_RULE] * 3 + [NO_STEERING] * 2


def test_schedule_round_trips_through_its_card_form():
    schedule = SteeringSchedule(2, SteeringRule(0.1, 1.2), SteeringRule(1.0, 0.9))
    assert SteeringSchedule.from_dict(schedule.to_dict()) == schedule


def test_inference_rule_follows_the_card_mode():
    schedule = SteeringSchedule(2, exploit=SteeringRule(1.0, 0.8))
    assert inference_rule("published") == PUBLISHED_RULE
    assert inference_rule("none") == NO_STEERING
    assert inference_rule("scheduled", schedule) == SteeringRule(1.0, 0.8)
    with pytest.raises(ValueError, match="needs the schedule"):
        inference_rule("scheduled")
    with pytest.raises(ValueError, match="unknown steering mode"):
        inference_rule("sometimes")
