"""The ``nano`` preset: the laptop-sized EAT the built-in model recipe trains (training/recipes/default_model.py)."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.model import EAT, get_preset

MAX_WHEEL_MEGABYTES = 30  # what a model shipped in the wheel may weigh (issue 7)


def test_nano_is_a_narrower_shallower_tiny():
    nano, tiny = get_preset("nano"), get_preset("tiny")
    assert nano.dims == tuple(d // 2 for d in tiny.dims)
    assert nano.image_size == 224 and nano.feature_sizes == (56, 28, 14, 7)
    assert nano.stage_specs[2].count("D") >= 1 and nano.stage_specs[3].count("D") == 1
    model = EAT("nano").eval()
    with torch.inference_mode():
        logits, points = model.forward_with_points(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 10)
    assert [p.positions.shape for p in points][-1] == (2, nano.groups[3], 7, 7, 2)
    weights = sum(value.numel() for value in model.state_dict().values())
    assert weights * 2 <= MAX_WHEEL_MEGABYTES * 1e6  # float16


def test_nano_is_in_the_timm_registry():
    model = timm.create_model("eat_nano")  # registered by importing eat_curate.model
    assert isinstance(model, EAT) and model.preset.name == "nano"


def test_bench_presets_times_nano_against_tiny_in_the_same_rounds():
    result = CliRunner().invoke(
        cli, ["bench", "presets", "--rounds", "1", "--batch-size", "1", "--dtype", "fp32", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["preset"], figures["baseline"]) == ("nano", "tiny")
    (row,) = figures["rows"]
    assert row["dtype"] == "fp32" and row["ratio"] == pytest.approx(row["preset_img_s"] / row["baseline_img_s"])
    assert figures["preset_weights_mb"] < figures["baseline_weights_mb"] / 4
