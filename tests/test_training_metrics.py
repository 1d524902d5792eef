"""Losses, the paper's metrics, learning-rate schedules and training configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from training.config import ConfigError, TrainConfig, build_config
from training.losses import emd_loss, emd_per_sample, pairwise_ranking_loss, score_mse_loss
from training.metrics import binary_accuracy, calibration_by_decile, groups_by_label, mean_emd, score_metrics
from training.schedule import lr_factor


def one_hot(bin_number: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(bin_number - 1), 10).float()


def test_emd_of_point_masses_grows_with_the_distance_between_them() -> None:
    # CDFs of bins 3 and 5 differ by 1 on bins 3 and 4: sqrt(2 / 10).
    assert emd_per_sample(one_hot(3)[None], one_hot(5)[None]).item() == pytest.approx(math.sqrt(0.2))
    assert emd_per_sample(one_hot(3)[None], one_hot(8)[None]).item() == pytest.approx(math.sqrt(0.5))
    assert emd_per_sample(one_hot(4)[None], one_hot(4)[None]).item() == 0.0


def test_per_sample_emd_averages_distances_and_published_emd_takes_one_root_of_the_batch() -> None:
    predicted = torch.stack([one_hot(3), one_hot(3)])
    target = torch.stack([one_hot(3), one_hot(8)])  # distances 0 and sqrt(0.5)

    per_sample = emd_loss(predicted, target, "per-sample").item()
    published = emd_loss(predicted, target, "published").item()

    assert per_sample == pytest.approx(math.sqrt(0.5) / 2)
    assert published == pytest.approx(math.sqrt(0.5 / 2))  # root of the mean of squared CDF gaps
    assert published > per_sample  # the published reduction weighs the badly predicted image more


def test_score_mse_compares_scores_divided_by_ten() -> None:
    loss = score_mse_loss(torch.tensor([5.0, 7.0]), torch.tensor([6.0, 7.0]))
    assert loss.item() == pytest.approx((0.1**2 + 0) / 2)


def test_ranking_loss_asks_for_score_gaps_in_proportion_to_the_target_gaps() -> None:
    target = torch.tensor([8.0, 5.0, 8.0, 3.0])  # gaps: 3 in group 0, 5 in group 1
    groups = torch.tensor([0, 0, 1, 1])
    spread = torch.tensor([8.0, 6.0, 7.0, 4.0])  # leads of 2 and 3: at least half of each target gap
    assert pairwise_ranking_loss(spread, target, groups, margin=0.5).item() == 0.0
    # Group 0 leads by only 1 (needs 1.5), group 1 is reversed (needs 2.5, has -1); across groups nothing counts.
    short = torch.tensor([7.0, 6.0, 4.0, 5.0], requires_grad=True)
    loss = pairwise_ranking_loss(short, target, groups, margin=0.5)
    assert loss.item() == pytest.approx((0.5 + 3.5) / 2)
    loss.backward()
    assert short.grad.tolist() == [-0.5, 0.5, -0.5, 0.5]
    alone = pairwise_ranking_loss(spread, target, torch.arange(4))
    assert alone.item() == 0.0 and alone.requires_grad is False


def test_ranking_loss_can_pull_same_target_pictures_together() -> None:
    target = torch.tensor([8.0, 8.0, 5.0])  # a photo, its mirror image, a degraded copy
    groups = torch.zeros(3, dtype=torch.long)
    predicted = torch.tensor([7.0, 6.0, 4.0])
    assert pairwise_ranking_loss(predicted, target, groups, margin=0.5).item() == 0.0
    assert pairwise_ranking_loss(predicted, target, groups, margin=0.5, tie_weight=2.0).item() == pytest.approx(2.0)


def test_metrics_follow_the_published_protocol() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(2, 8, 200)
    predicted = true + rng.normal(0, 0.8, 200)

    metrics = score_metrics(predicted, true)

    assert metrics.srcc == pytest.approx(spearmanr(predicted, true)[0])
    assert metrics.plcc == pytest.approx(pearsonr(predicted, true)[0])
    assert metrics.accuracy == pytest.approx(np.mean((predicted > 5) == (true > 5)))
    assert metrics.mean_emd is None  # no distributions given
    assert metrics.count == 200


def test_a_score_of_exactly_five_is_in_the_low_class() -> None:
    assert binary_accuracy(np.array([5.0, 5.01]), np.array([4.0, 6.0])) == 1.0
    assert binary_accuracy(np.array([5.0]), np.array([5.5])) == 0.0


def test_mean_emd_is_the_mean_of_per_image_distances() -> None:
    predicted = np.stack([one_hot(3).numpy(), one_hot(3).numpy()])
    true = np.stack([one_hot(5).numpy(), one_hot(3).numpy()])
    assert mean_emd(predicted, true) == pytest.approx(math.sqrt(0.2) / 2)


def test_calibration_groups_images_by_decile_of_the_prediction() -> None:
    predicted = np.arange(100, dtype=float) / 10  # 0.0 .. 9.9
    true = predicted + 1.0  # the model scores one point too low everywhere

    bins = calibration_by_decile(predicted, true)

    assert [row.decile for row in bins] == list(range(1, 11))
    assert all(row.count == 10 for row in bins)
    assert bins[0].predicted_low == 0.0 and bins[0].predicted_high == pytest.approx(0.9)
    assert all(row.true_mean - row.predicted_mean == pytest.approx(1.0) for row in bins)


def test_few_distinct_labels_get_what_the_model_predicted_for_each() -> None:
    true = np.array([10.0, 1.0, 5.5, 10.0, 1.0, 5.5])  # three star levels, two photos each
    predicted = np.array([8.0, 3.0, 6.0, 7.0, 4.0, 5.0])

    groups = groups_by_label(predicted, true)

    assert [(g.label, g.count, g.predicted_low, g.predicted_high, g.predicted_mean) for g in groups] == [
        (1.0, 2, 3.0, 4.0, 3.5), (5.5, 2, 5.0, 6.0, 5.5), (10.0, 2, 7.0, 8.0, 7.5)]
    assert groups_by_label(np.arange(11.0), np.arange(11.0)) == []  # 11 labels: vote means, not stars
    assert score_metrics(predicted, true).by_label == groups


def test_correlations_of_a_constant_prediction_are_undefined_not_an_error() -> None:
    metrics = score_metrics(np.full(5, 5.5), np.array([1.0, 2, 3, 4, 5]))
    assert math.isnan(metrics.srcc) and math.isnan(metrics.plcc)


def test_step_schedule_is_the_papers_decay_per_five_epochs() -> None:
    factor = lr_factor(TrainConfig(schedule="step", step_epochs=5, step_gamma=0.1), steps_per_epoch=10)
    assert [factor(step) for step in (0, 49, 50, 99, 100)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    factor = lr_factor(TrainConfig(schedule="cosine", epochs=10, warmup_epochs=1, explore_epochs=0), steps_per_epoch=10)
    assert [factor(step) for step in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(10 + 45) == pytest.approx(0.5)  # halfway through the cosine
    assert factor(99) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert all(factor(s) >= factor(s + 1) for s in range(10, 99))


def test_a_config_file_is_overridden_by_the_flags_given(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-4\nbatch-size: 32\nschedule: cosine\nexplore_epochs: 2\n")

    config = build_config(path, lr=3e-4, epochs=None)

    assert config.lr == 3e-4  # the flag wins
    assert config.batch_size == 32 and config.schedule == "cosine"  # from the file
    assert config.epochs == 20  # the paper's default: --epochs was not given


def test_the_bundled_ava_config_is_the_papers_recipe() -> None:
    config = build_config("ava")
    assert (config.lr, config.batch_size, config.epochs, config.schedule) == (1e-5, 16, 20, "step")
    assert (config.step_epochs, config.step_gamma, config.loss, config.flip) == (5, 0.1, "emd", True)
    assert build_config("tad66k").crop_from == 256
    assert build_config("finetune").lr == 1e-6


@pytest.mark.parametrize(
    "content, message",
    [
        ("learning_rate: 0.1\n", "unknown settings learning_rate"),
        ("lr: fast\n", "setting lr: 'fast' is not a valid float"),
        ("schedule: linear\n", "schedule 'linear' is not one of step, cosine, constant"),
        ("epochs: 0\n", "epochs must be at least 1"),
        ("keep_epoch: first\n", "keep_epoch 'first' is not one of best, last"),
        ("- lr\n", "must hold a mapping"),
        ("lr: [1\n", "not valid YAML"),
        ("lr: .nan\n", "setting lr: nan is not a finite number"),
        ("weight_decay: .inf\n", "setting weight_decay: inf is not a finite number"),
        ("# r\xe9glages\nlr: 1e-5\n", r"is not UTF-8 text \(byte 0xe9 at offset 3\)"),
    ],
)
def test_a_bad_config_file_is_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match=message):
        build_config(path)


def test_resuming_may_change_where_a_run_runs_but_not_what_it_computes() -> None:
    saved = TrainConfig(lr=1e-4, epochs=5).to_dict()

    assert TrainConfig(lr=1e-4, epochs=8, threads=2, loader_workers=0).resume_conflicts(saved) == []
    assert TrainConfig(lr=2e-4, epochs=5).resume_conflicts(saved) == ["lr: 0.0001 -> 0.0002"]
    cosine = TrainConfig(lr=1e-4, epochs=5, schedule="cosine").to_dict()
    assert "stretch the cosine" in TrainConfig(lr=1e-4, epochs=8, schedule="cosine").resume_conflicts(cosine)[0]


def test_a_checkpoint_older_than_a_setting_resumes_as_if_it_had_the_default() -> None:
    saved = TrainConfig(lr=1e-4).to_dict()
    del saved["keep_epoch"]  # written before the setting existed: the best epoch was kept

    assert TrainConfig(lr=1e-4).resume_conflicts(saved) == []
    assert TrainConfig(lr=1e-4, keep_epoch="last").resume_conflicts(saved) == ["keep_epoch: 'best' -> 'last'"]
