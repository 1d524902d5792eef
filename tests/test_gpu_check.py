"""scripts/gpu_check.py runs on a CUDA machine; here: it loads, says what it does, and its logic dry-runs on the CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_names_every_step():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for step in ("forward", "engine", "scores", "ray", "stages", "training"):
        assert step in result.stdout


def test_the_issue_figures_come_first_and_the_long_ones_are_opt_in(gpu_check):
    assert gpu_check.DEFAULT_STEPS[:3] == ("forward", "engine", "scores")
    assert "training" not in gpu_check.DEFAULT_STEPS
    args = gpu_check.parse_args(["--with", "training", "--cuda-graphs"])
    assert args.extra == ["training"] and args.cuda_graphs and args.batch == 256


def test_the_forward_step_dry_runs_on_the_cpu(gpu_check, tmp_path):
    gpu_check.main(["--device", "cpu", "--preset", "nano", "--batch", "2", "--only", "forward", "--out", str(tmp_path)])
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert figures["forward_eat_nano_random_init_bf16_batch2_eager_img_s"] > 0
    assert figures["forward_eat_nano_random_init_bf16_batch2_compiled"] == "not on a CPU"
    assert "forward_error" not in figures
