"""The model that ships inside the package: what `eat-curate score` uses when no --model is given."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from eat_curate.model.card import WEIGHTS_FILE
from eat_curate.model.model_store import BUILTIN_DIR, ModelStore
from eat_curate.samples import write_sample_photos

BUILTIN = "culling-nano"
MAX_WEIGHTS_BYTES = 30 * 1024 * 1024


def test_the_package_ships_a_small_trained_nano_model_as_the_default(tmp_path):
    store = ModelStore(tmp_path / "empty-store")
    assert store.default_name() == BUILTIN
    loaded = store.load(BUILTIN)  # checks the weights against the card's sha256
    assert loaded.card.trained and loaded.card.preset == "nano"
    assert (BUILTIN_DIR / BUILTIN / WEIGHTS_FILE).stat().st_size <= MAX_WEIGHTS_BYTES
    assert "not taste" in loaded.card.scope  # says what its score is not
    for section in ("description", "not_measured", "replace_with", "photographs", "recipe"):
        assert loaded.card.extra[section]
    assert loaded.card.metrics["held_out_defects"]["defects"].keys() >= {"gaussian_blur", "jpeg", "tilt"}


def test_models_list_shows_it_as_built_in_and_the_default(run):
    listed = {entry["name"]: entry for entry in json.loads(run("models", "list", "--json").output)}
    assert listed[BUILTIN]["built_in"] and listed[BUILTIN]["default"] and listed[BUILTIN]["trained"]


def test_score_without_a_model_uses_it_and_ranks_each_sharp_scene_above_its_blurred_copy(run, tmp_path):
    photos = write_sample_photos(tmp_path / "photos", scenes_per_album=2)
    out = tmp_path / "scores.parquet"
    output = run("score", tmp_path / "photos", "--out", out).output
    scope_lines = [line for line in output.splitlines() if line.startswith(f"model {BUILTIN}@")]
    assert len(scope_lines) == 1 and "catches focus blur" in scope_lines[0]  # its name and scope, once per run
    assert "untrained" not in output

    means = {Path(row["path"]).relative_to(tmp_path / "photos").as_posix(): row["mean"]
             for row in pq.read_table(out).to_pylist()}
    assert len(means) == len(photos) and all(row is not None for row in means.values())
    sharp = sorted(name for name in means if name.endswith("_sharp.jpg"))
    assert len(sharp) == 4
    for name in sharp:
        blurred = name.replace("_sharp", "_blurred")
        assert means[name] > means[blurred], (name, means[name], means[blurred])
