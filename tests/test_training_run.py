"""`eat-curate train` and `eat-curate evaluate`, end to end on real files with a real (small) EAT.

Runs are short (a small synthetic set, a few epochs of the pico preset on one
CPU thread); what they check is the machinery: the run folder, the model
card, bad data, crash and resume, the explore phase, and evaluation.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.model.card import ModelCard
from eat_curate.model.eat import EAT
from eat_curate.model.model_store import ModelStore
from eat_curate.model.presets import get_preset
from eat_curate.scoring.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
# Columns of metrics.csv that are timings, which differ between two identical runs.
TIMING_COLUMNS = {"images_per_s", "seconds"}


def train_args(data: Path, store: ModelStore, name: str, *extra: str) -> list[str]:
    return [
        "train",
        "--data", str(data / "labels.csv"),
        "--images", str(data / "images"),
        "--init", "pico",
        "--name", name,
        "--epochs", "3",
        "--explore-epochs", "1",
        "--lr", "1e-3",
        "--threads", "1",
        "--loader-workers", "0",
        "--models-dir", str(store.root),
        "--no-progress",
        *extra,
    ]  # fmt: skip


def run_cli(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout if stdout_only else result.output


def read_metrics(run_dir: Path, without_timings: bool = False) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if without_timings:
        rows = [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]
    return rows


def test_training_saves_the_best_epoch_with_a_complete_card(synthetic_set: Path, pico_store: ModelStore) -> None:
    code, output = run_cli(*train_args(synthetic_set, pico_store, "eat-synthetic"))

    assert code == 0, output
    card = pico_store.card("eat-synthetic")
    assert card.trained and card.preset == "pico"
    assert card.steering_mode == "scheduled"
    assert card.steering_schedule == {
        "explore_epochs": 1,
        "explore": {"toward": 0.25, "away": 1.0},
        "exploit": {"toward": 1.0, "away": 1.0},
    }
    assert "labels.csv" in card.training_data
    assert card.extra["split_sizes"] == {"train": 36, "val": 2, "test": 2}
    assert card.extra["split_seed"] == 0 and card.extra["epochs"] == 3
    assert card.extra["config"]["lr"] == 1e-3

    run_dir = pico_store.root.parent / "training" / "eat-synthetic"
    rows = read_metrics(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert [row["phase"] for row in rows] == ["explore", "exploit", "exploit"]
    assert all(int(row["train_images"]) == 36 for row in rows)
    # The best epoch is the exploit epoch with the highest validation SRCC (first on ties).
    exploit = rows[1:]
    best = max(exploit, key=lambda row: float(row["val_srcc"]))
    assert card.metrics["best_epoch"] == int(best["epoch"]) == card.extra["best_epoch"]
    assert card.metrics["val"]["srcc"] == pytest.approx(float(best["val_srcc"]))
    assert card.metrics["test"]["count"] == 2
    assert {"last.pt", "best.safetensors", "metrics.csv"} <= {p.name for p in run_dir.iterdir()}
    assert f"saved {card.model_id}" in output
    assert "epoch 3/3 [exploit]" in output  # a line of validation metrics per epoch

    # The stored model scores, with the exploit rule of its schedule.
    predictor = Predictor.from_store("eat-synthetic", pico_store, device="cpu", dtype="fp32")
    assert {block.steering.toward for block in predictor.model.deformable_blocks()} == {1.0}


def test_keep_epoch_last_saves_the_last_epoch_whatever_its_validation(
    synthetic_set: Path, pico_store: ModelStore
) -> None:
    code, output = run_cli(*train_args(synthetic_set, pico_store, "eat-last", "--keep-epoch", "last"))

    assert code == 0, output
    card = pico_store.card("eat-last")
    run_dir = pico_store.root.parent / "training" / "eat-last"
    last = read_metrics(run_dir)[-1]
    assert card.metrics["best_epoch"] == 3 == card.extra["best_epoch"]
    assert card.metrics["val"]["srcc"] == pytest.approx(float(last["val_srcc"]))
    assert card.extra["config"]["keep_epoch"] == "last"
    # The saved weights are the last checkpoint's.
    saved = Predictor.from_store("eat-last", pico_store, device="cpu", dtype="fp32").model.state_dict()
    final = torch.load(run_dir / "last.pt", weights_only=False, map_location="cpu")["model"]
    shared = saved.keys() & final.keys()
    assert shared and all(torch.equal(saved[key], final[key]) for key in shared)


def write_picks(folder: Path, count: int = 12) -> None:
    """``my_picks.csv``: ``count`` photos in ``picks/`` rated 1-5 stars, as a user's own ratings."""
    rows = ["path,rating"]
    for i in range(count):
        make_photo(folder / "picks" / f"pick_{i:02d}.jpg", seed=i, quality=90)
        rows.append(f"picks/pick_{i:02d}.jpg,{1 + i % 5}")
    (folder / "my_picks.csv").write_text("\n".join(rows) + "\n")


def save_stand_in(store: ModelStore, name: str, trained: bool) -> None:
    """A seeded nano EAT under ``name``; ``trained`` as the published EAT weights' card (True) or DAT's (False)."""
    torch.manual_seed(0)
    preset = get_preset("nano")
    card = ModelCard(name=name, preset="nano", architecture=preset.to_dict(), trained=trained,
                     source="test stand-in", scope="test stand-in")
    store.save(EAT(preset), card)


def test_the_fine_tune_example_of_train_s_help_runs_as_written(tmp_path: Path, run, monkeypatch) -> None:
    """A trained model explored when it was trained: fine-tuning it has no explore phase to fit into 5 epochs."""
    help_text = run("train", "--help").output
    examples = [shlex.split(line) for line in help_text.splitlines() if line.strip().startswith("eat-curate train")]
    starts = [(example, example[example.index("--init") + 1]) for example in examples if "--init" in example]
    args = next(example for example, init in starts if init == "eat-ava")
    assert "--explore-epochs" not in args
    monkeypatch.chdir(tmp_path)
    write_picks(tmp_path)
    store = ModelStore(tmp_path / "home" / "models")  # the store of the home `run` gives the command
    save_stand_in(store, "eat-ava", trained=True)

    output = run(*args[1:]).output

    card = store.card("mine")
    assert card.trained and f"saved {card.model_id}" in output
    assert card.steering_schedule["explore_epochs"] == 0 == card.extra["config"]["explore_epochs"]
    assert card.extra["config"]["lr"] == 1e-6 and card.extra["split_sizes"] == {"train": 10, "val": 1, "test": 1}
    rows = read_metrics(store.root.parent / "training" / "mine")
    assert [row["phase"] for row in rows] == ["exploit"] * 5


def test_a_fresh_start_explores_by_default_and_a_given_explore_phase_is_kept(tmp_path: Path, run, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_picks(tmp_path)
    store = ModelStore(tmp_path / "home" / "models")
    save_stand_in(store, "dat-nano", trained=False)  # an ImageNet backbone has not explored
    save_stand_in(store, "eat-ava", trained=True)
    too_long = "the explore phase (5 epochs) must end before the last of 5 epochs"

    fresh = run("train", "--data", "my_picks.csv", "--init", "dat-nano", "--epochs", "5", "--name", "a",
                expect_ok=False)
    given = run("train", "--data", "my_picks.csv", "--init", "eat-ava", "--epochs", "5", "--explore-epochs", "5",
                "--name", "b", expect_ok=False)

    assert fresh.exit_code == given.exit_code == 2
    assert too_long in fresh.output and too_long in given.output


def test_missing_and_broken_images_are_left_out_and_counted(
    tmp_path: Path, synthetic_set: Path, pico_store: ModelStore
) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for image in (synthetic_set / "images").iterdir():
        (data / "images" / image.name).write_bytes(image.read_bytes())
    (data / "images" / "text.jpg").write_text("this is not a picture")
    make_photo(data / "images" / "cut.jpg", seed=4, quality=90)
    whole = (data / "images" / "cut.jpg").read_bytes()
    (data / "images" / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # passes the header check, fails to decode
    with open(synthetic_set / "labels.csv", newline="") as handle:
        rows = [[row["path"], *(row[f"votes_{i}"] for i in range(1, 11))] for row in csv.DictReader(handle)]
    good = [",".join([*row, "val" if n < 6 else "train"]) for n, row in enumerate(rows)]
    bad = [",".join([name, *rows[0][1:], "train"]) for name in ("missing.jpg", "text.jpg", "cut.jpg")]
    header = "path," + ",".join(f"votes_{i}" for i in range(1, 11)) + ",split"
    (data / "labels.csv").write_text("\n".join([header, *good, *bad]) + "\n")

    code, output = run_cli(*train_args(data, pico_store, "with-bad-data", "--epochs", "2", "--json"), stdout_only=True)

    assert code == 0, output
    summary = json.loads(output)
    assert summary["data"]["labelled"] == 43
    assert summary["data"]["dropped"] == {"missing": 1, "not-an-image": 1}
    assert summary["data"]["sizes"] == {"train": 35, "val": 6, "test": 0}  # the cut image is still in
    rows = read_metrics(Path(summary["run_dir"]))
    assert [int(row["decode_failures"]) for row in rows] == [1, 1]  # dropped at decoding, each epoch
    assert [int(row["train_images"]) for row in rows] == [34, 34]


def test_a_malformed_label_file_stops_before_training_with_its_line_number(
    tmp_path: Path, pico_store: ModelStore
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("path,score\na.jpg,5\nb.jpg,high\n")

    code, output = run_cli(*train_args(tmp_path, pico_store, "never"))

    assert code == 2
    assert output.strip().splitlines()[-1].endswith("labels.csv:3: score 'high' is not a number")
    assert "never" not in pico_store.names()


def test_an_existing_model_or_run_is_never_overwritten_by_accident(synthetic_set: Path, pico_store: ModelStore) -> None:
    code, output = run_cli(*train_args(synthetic_set, pico_store, "pico"))
    assert code == 2 and "model 'pico' already exists" in output

    code, _ = run_cli(*train_args(synthetic_set, pico_store, "first", "--epochs", "2"))
    assert code == 0
    pico_store.remove("first")
    code, output = run_cli(*train_args(synthetic_set, pico_store, "first", "--epochs", "2"))
    assert code == 2 and "already holds a checkpoint" in output and "--resume" in output

    code, output = run_cli(*train_args(synthetic_set, pico_store, "other", "--resume"))
    assert code == 2 and "cannot resume" in output and "does not exist" in output


def test_resuming_with_other_settings_is_refused(synthetic_set: Path, pico_store: ModelStore, tmp_path: Path) -> None:
    first_run = train_args(synthetic_set, pico_store, "a", "--epochs", "2", "--checkpoint-dir", str(tmp_path / "run"))
    assert run_cli(*first_run)[0] == 0

    code, output = run_cli(*first_run, "--resume", "--lr", "5e-4", "--force")

    assert code == 2 and "settings changed (lr: 0.001 -> 0.0005)" in output


def _wait_for_checkpoint(process: subprocess.Popen, run_dir: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "last.pt").exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended before its first checkpoint: {process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no checkpoint within the timeout")
        time.sleep(0.02)


def test_a_run_killed_mid_training_resumes_to_exactly_the_uninterrupted_result(
    synthetic_set: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    crashed_dir, clean_dir = tmp_path / "crashed", tmp_path / "clean"
    args = ["--schedule", "cosine", "--warmup-epochs", "0.5", "--drop-path", "0.1", "--explore-epochs", "1"]
    crashing = train_args(synthetic_set, pico_store, "resumed", "--checkpoint-dir", str(crashed_dir), *args)

    process = subprocess.Popen(
        [sys.executable, "-m", "eat_curate.cli", *crashing],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    _wait_for_checkpoint(process, crashed_dir)
    process.send_signal(signal.SIGKILL)  # a crash: no clean-up of any kind
    process.wait()
    epochs_done = torch.load(crashed_dir / "last.pt", weights_only=True)["epoch"]
    assert process.returncode == -signal.SIGKILL
    assert epochs_done < 3 and "resumed" not in pico_store.names()

    code, output = run_cli(*crashing, "--resume")
    assert code == 0, output
    assert f"resuming {crashed_dir} after epoch {epochs_done} of 3" in output
    uninterrupted = train_args(synthetic_set, pico_store, "uninterrupted", "--checkpoint-dir", str(clean_dir), *args)
    code, output = run_cli(*uninterrupted)
    assert code == 0, output

    assert pico_store.card("resumed").sha256 == pico_store.card("uninterrupted").sha256
    assert read_metrics(crashed_dir, without_timings=True) == read_metrics(clean_dir, without_timings=True)


def test_ctrl_c_during_training_says_how_to_go_on(
    synthetic_set: Path, pico_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("training.trainer.train", pressed_ctrl_c)
    code, output = run_cli(*train_args(synthetic_set, pico_store, "stopped"))
    # Ctrl-C before any epoch: nothing in the run folder to resume from
    assert code == 130 and "interrupted" in output and "nothing was kept; to start the run over, run: " in output


def test_the_explore_phase_weakens_offsets_heading_into_the_interest_quadrant(
    synthetic_set: Path, pico_store: ModelStore
) -> None:
    """toward_share: the share of sampling displacement heading into the interest point's quadrant."""
    steered = ["--epochs", "2", "--explore-epochs", "1", "--explore-toward", "0.25", "--explore-away", "1"]
    unsteered = ["--epochs", "2", "--explore-epochs", "1", "--explore-toward", "1", "--explore-away", "1"]
    assert run_cli(*train_args(synthetic_set, pico_store, "steered", *steered))[0] == 0
    assert run_cli(*train_args(synthetic_set, pico_store, "unsteered", *unsteered))[0] == 0

    runs = pico_store.root.parent / "training"
    with_steering = [float(row["toward_share"]) for row in read_metrics(runs / "steered")]
    without = [float(row["toward_share"]) for row in read_metrics(runs / "unsteered")]

    shares = f"steered {with_steering}, unsteered {without}"
    assert with_steering[0] < 0.6 * without[0], shares  # explore: offsets into the quadrant weakened
    assert with_steering[1] > 1.5 * with_steering[0], shares  # exploit: the constraint is lifted


def test_bf16_clipping_published_emd_and_decoding_workers_train_together(
    synthetic_set: Path, pico_store: ModelStore
) -> None:
    code, output = run_cli(
        *train_args(synthetic_set, pico_store, "variant", "--epochs", "2", "--precision", "bf16", "--clip-grad", "1.0",
                    "--emd", "published", "--optimizer", "adamw", "--weight-decay", "0.05", "--loader-workers", "1")
    )  # fmt: skip
    assert code == 0, output
    card = pico_store.card("variant")
    assert card.extra["loss"] == "emd (published)"
    assert card.extra["config"]["precision"] == "bf16"


def test_single_scores_train_with_mse_and_random_crops(
    tmp_path: Path, synthetic_set: Path, pico_store: ModelStore
) -> None:
    with open(synthetic_set / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    scores = "".join(f"{row['path']},{float(row['true_score']):.2f}\n" for row in rows)
    (tmp_path / "scores.csv").write_text("image,score\n" + scores)
    data = ["--data", str(tmp_path / "scores.csv"), "--format", "tad66k"]

    code, output = run_cli(
        *train_args(synthetic_set, pico_store, "tad-style", "--epochs", "2", "--crop-from", "256"), *data
    )

    assert code == 0, output
    card = pico_store.card("tad-style")
    assert card.extra["loss"] == "mse"
    assert card.metrics["val"]["mean_emd"] is None  # single scores have no distribution to compare
    code, output = run_cli(*train_args(synthetic_set, pico_store, "wrong-loss", "--loss", "emd"), *data)
    assert code == 2 and "--loss emd needs vote distributions" in output


def test_evaluate_reports_the_papers_metrics_and_a_calibration_table(
    synthetic_set: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    assert run_cli(*train_args(synthetic_set, pico_store, "to-evaluate", "--epochs", "2"))[0] == 0
    data = ["--data", str(synthetic_set / "labels.csv"), "--images", str(synthetic_set / "images")]
    common = ["--models-dir", str(pico_store.root), "--loader-workers", "0", "--no-progress"]

    code, output = run_cli("evaluate", "--model", "to-evaluate", *data, *common)
    assert code == 0, output
    assert "40 images, 0 left out" in output
    assert "srcc" in output and "accuracy@5" in output and "mean_emd" in output
    assert "calibration (by decile of the predicted score)" in output

    code, output = run_cli("evaluate", "--model", "to-evaluate", *data, *common, "--json", stdout_only=True)
    report = json.loads(output)
    assert report["count"] == 40 and report["threshold"] == 5.0
    assert -1.0 <= report["srcc"] <= 1.0 and 0.0 <= report["accuracy"] <= 1.0 and report["mean_emd"] > 0
    assert [row["decile"] for row in report["calibration"]] == list(range(1, 11))
    assert sum(row["count"] for row in report["calibration"]) == 40
    assert report["by_label"] == [] and "by label" not in run_cli("evaluate", "--model", "to-evaluate", *data,
                                                                   *common)[1]  # vote means take many values

    stars = tmp_path / "stars.csv"  # a photographer's 1-5 stars
    images = sorted((synthetic_set / "images").iterdir())
    stars.write_text("path,rating\n" + "".join(f"{image},{1 + n % 5}\n" for n, image in enumerate(images)))
    code, output = run_cli("evaluate", "--model", "to-evaluate", "--data", str(stars), *common)
    assert code == 0, output
    header = output.split("by label (the scores the model gave each label's images):\n", 1)[1].splitlines()[0]
    assert header.split() == ["stars", "label", "count", "predicted", "predicted_mean"]
    report = json.loads(run_cli("evaluate", "--model", "to-evaluate", "--data", str(stars), *common, "--json",
                                stdout_only=True)[1])
    assert [(row["label"], row["count"]) for row in report["by_label"]] == [
        (1.0, 8), (3.25, 8), (5.5, 8), (7.75, 8), (10.0, 8)]


def test_every_training_command_explains_itself() -> None:
    for command in (["train"], ["evaluate"], ["bench", "train"]):
        code, output = run_cli(*command, "--help")
        assert code == 0 and "Usage:" in output
    assert "--explore-epochs" in run_cli("train", "--help")[1]
