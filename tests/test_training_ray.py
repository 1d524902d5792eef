"""`--engine ray`: the same training as Ray Train DDP workers, on a real local Ray (2 CPUs, gloo)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.model.model_store import ModelStore
from training.config import TrainConfig
from training.resume_state import read_metrics_csv
from training.trainer import train

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Fractional CPUs: a worker asking for a whole CPU of the two would starve the other and Ray's own processes.
RAY_CONFIG = dict(epochs=2, explore_epochs=1, lr=1e-3, threads=1, loader_workers=0, cpus_per_worker=0.5)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def config(data: Path, name: str, **settings) -> TrainConfig:
    return TrainConfig(
        data=str(data / "labels.csv"), images=str(data / "images"), init="pico", name=name, **RAY_CONFIG, **settings
    )


def figures(history) -> list[tuple[float, ...]]:
    return [(r.train_loss, r.val_srcc, r.val_plcc, r.val_accuracy, r.val_emd, r.toward_share) for r in history]


def test_one_ray_worker_trains_exactly_like_the_plain_run(
    local_ray, synthetic_set: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    from training.ray_train import train_with_ray

    plain = train(config(synthetic_set, "plain", checkpoint_dir=str(tmp_path / "plain")), pico_store, progress=False)
    one_worker = config(synthetic_set, "on-ray", engine="ray", workers=1, checkpoint_dir=str(tmp_path / "ray"))
    on_ray = train_with_ray(one_worker, pico_store, progress=False)

    assert figures(on_ray.history) == figures(plain.history)
    assert on_ray.card.metrics == plain.card.metrics
    assert on_ray.card.sha256 == plain.card.sha256  # the same weights, bit for bit


def test_two_ray_workers_share_each_epoch_and_save_one_model(
    local_ray, synthetic_set: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    run_dir = tmp_path / "ddp"
    result = CliRunner().invoke(
        cli,
        [
            "train", "--engine", "ray", "--workers", "2", "--cpus-per-worker", "0.5",
            "--data", str(synthetic_set / "labels.csv"), "--images", str(synthetic_set / "images"),
            "--init", "pico", "--name", "ddp",
            "--epochs", "2", "--explore-epochs", "1", "--lr", "1e-3", "--threads", "1", "--loader-workers", "0",
            "--checkpoint-dir", str(run_dir), "--models-dir", str(pico_store.root), "--no-progress", "--json",
        ],  # fmt: skip
    )

    assert result.exit_code == 0, result.output
    # Ray relays its processes' own lines into stdout too; the command's JSON comes last.
    lines = result.stdout.splitlines()
    summary = json.loads("\n".join(lines[len(lines) - 1 - lines[::-1].index("{") :]))
    assert summary["model_id"] == pico_store.card("ddp").model_id and pico_store.card("ddp").trained
    assert summary["data"]["sizes"] == {"train": 36, "val": 2, "test": 2}
    # 36 training images: each of the two ranks trains on its 18 of every epoch's shuffle.
    assert [record.train_images for record in read_metrics_csv(run_dir)] == [36, 36]
    assert (run_dir / "last.pt").is_file() and (run_dir / "best.safetensors").is_file()
