"""`eat-curate models ...` and `bench model`, driven through click's CliRunner against a real store."""

import json

import pytest
import torch

from eat_curate.model.reference import PublishedEAT


def test_init_list_info_remove(run, tmp_path):
    assert "created untrained model mini@" in run("models", "init", "--preset", "tiny", "--name", "mini", "--seed", "3").output
    listed = json.loads(run("models", "list", "--json").output)
    own = [(m["name"], m["preset"], m["trained"], m["built_in"]) for m in listed if not m["built_in"]]
    assert own == [("mini", "tiny", False, False)]  # beside the model the package ships
    assert (tmp_path / "home" / "models" / "mini" / "card.json").is_file()

    info = json.loads(run("models", "info", "mini", "--json").output)
    assert info["source"] == "models init --preset tiny --seed 3" and info["input_size"] == 224

    table = run("models", "list").output.splitlines()
    assert table[0].split()[:3] == ["name", "preset", "trained"] and any(row.startswith("mini") for row in table[2:])

    assert "removed" in run("models", "remove", "mini", "--yes").output
    assert "mini" not in [m["name"] for m in json.loads(run("models", "list", "--json").output)]


def test_info_prints_the_facts_whole_and_cuts_deep_sections_short():
    from eat_curate.commands.card_view import card_lines

    card = {
        "name": "mine", "preset": "tiny", "trained": True, "scope": "sharpness " * 40,
        "architecture": {"dims": [64, 128]},
        "metrics": {"val": {"srcc": 0.712345, "by_defect": {"blur": {"srcc": 0.9}, "noise": {"srcc": 0.5}}},
                    "test": {"photos": [f"p{n}" for n in range(20)], "count": 92}},
        "extra": {"description": "word " * 100},
    }
    lines = card_lines(card, "mine@0123456789ab")
    assert lines[:4] == ["model_id      mine@0123456789ab", "name          mine", "preset        tiny",
                         "trained       true"]
    assert lines[4] == "scope         " + "sharpness " * 40  # a fact is never cut
    assert lines[5] == 'architecture  {"dims": [64, 128]}'
    assert lines[6:] == [
        "metrics",  # the figures before the rest
        "  test",
        "    count: 92",
        "    photos: [20 items]",
        "  val",
        "    by_defect",
        "      blur: {1 entry: srcc}",
        "      noise: {1 entry: srcc}",
        "    srcc: 0.7123",
        "extra",
        "  description: " + ("word " * 32).strip() + " ... (500 characters)",
    ]


def test_models_dir_option_overrides_the_home(run, tmp_path):
    run("models", "init", "--name", "elsewhere", "--models-dir", str(tmp_path / "other"))
    assert (tmp_path / "other" / "elsewhere" / "model.safetensors").is_file()
    assert "elsewhere" not in run("models", "list").output  # the home's store knows nothing of it


def test_import_published_checkpoint_via_cli(run, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "eat_tiny_ava.pth"
    torch.save(PublishedEAT("tiny").state_dict(), path)
    output = run("models", "import", str(path), "--preset", "tiny", "--name", "ava").output
    assert "published-eat" in output and "head published" in output
    info = json.loads(run("models", "info", "ava", "--json").output)
    assert info["trained"] is True and info["steering_mode"] == "published"


def test_errors_are_one_line_and_nonzero(run, tmp_path):
    result = run("models", "info", "ghost", expect_ok=False)
    assert result.exit_code == 2
    assert result.output.startswith("Error: no model 'ghost'") and result.output.count("\n") == 1

    run("models", "init", "--name", "twice")
    result = run("models", "init", "--name", "twice", expect_ok=False)
    assert result.exit_code == 2 and "already exists" in result.output

    evil = tmp_path / "evil.pth"
    torch.save({"x": object()}, evil)
    result = run("models", "import", str(evil), "--preset", "tiny", "--name", "evil", expect_ok=False)
    assert result.exit_code == 2 and "pickle payload" in result.output
    assert "evil" not in run("models", "list").output


def test_help_explains_commands(run):
    text = run("models", "import", "--help").output
    assert "published-eat" in text and "dat-imagenet" in text and "--preset" in text
    assert "UNTRAINED" in run("models", "init", "--help").output


@pytest.mark.slow
def test_bench_model_reports_rates_and_identical_outputs(run):
    result = json.loads(run("bench", "model", "--preset", "tiny", "--batch-size", "2", "--rounds", "1", "--json").output)
    assert result["published_fp32_img_s"] > 0 and result["ours_fp32_img_s"] > 0 and result["ours_bf16_img_s"] > 0
    assert result["fp32_ratio"] == pytest.approx(result["ours_fp32_img_s"] / result["published_fp32_img_s"])
    assert result["max_abs_logit_diff_fp32"] < 1e-5
