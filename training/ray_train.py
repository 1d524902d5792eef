"""The same training on many devices: Ray Train's ``TorchTrainer`` running the trainer as DDP ranks.

Every worker runs :func:`training.trainer.train` in a torch process group
(gloo on CPUs, NCCL on GPUs); DDP averages the gradients, each rank reads
its own share of every epoch's shuffle, and rank 0 alone writes the
checkpoints, the metrics CSV and the model. The batch size is per worker.

The run folder and the model store must be reachable at the same paths from
every worker: on one machine they are; on a cluster, put them on shared
storage.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

from eat_curate.model.model_store import ModelStore
from training import resume_state
from training.config import TrainConfig, config_from_dict
from training.errors import TrainingError
from training.resume_state import EpochRecord
from training.run_folders import default_run_dir, ensure_name_is_free
from training.trainer import TrainResult


def _worker_loop(arguments: dict) -> None:
    """One Ray Train worker: a DDP rank of the ordinary trainer."""
    import ray.train
    import ray.train.torch
    from tqdm import tqdm

    from training.distributed import DistributedContext
    from training.trainer import train

    def report(record: EpochRecord) -> None:
        ray.train.report({key: value for key, value in asdict(record).items() if value is not None})

    def log(message: str) -> None:
        # Ray relays a worker's stdout into the driver's, which holds the command's own output (--json).
        tqdm.write(message, file=sys.stderr)

    train(
        config_from_dict(arguments["config"]),
        ModelStore(arguments["store_root"]),
        context=DistributedContext.from_process_group(),
        device=ray.train.torch.get_device(),
        progress=arguments["progress"],
        log=log,
        on_epoch=report,
        overwrite=arguments["overwrite"],
    )


def _with_absolute_paths(config: TrainConfig, run_dir: Path) -> TrainConfig:
    """The config with every file it names absolute: workers need not share the driver's working directory."""
    paths = {"checkpoint_dir": str(run_dir)}
    for key in ("data", "images", "train_ids", "test_ids"):
        if getattr(config, key):
            paths[key] = str(Path(getattr(config, key)).resolve())
    if config.init and Path(config.init).exists():  # --init may name a model folder instead of a store model
        paths["init"] = str(Path(config.init).resolve())
    return config_from_dict({**config.to_dict(), **paths})


def train_with_ray(
    config: TrainConfig, store: ModelStore, progress: bool = True, overwrite: bool = False
) -> TrainResult:
    """Run ``config`` on ``config.workers`` Ray Train workers; returns what rank 0 saved."""
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise TrainingError("--engine ray needs Ray Train: pip install 'eat-curate[ray]'") from None

    from training.metrics import ScoreMetrics

    ensure_name_is_free(config, store, overwrite)
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"))
    use_gpu = config.gpus_per_worker > 0
    resources = {"CPU": config.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = config.gpus_per_worker
    run_dir = (Path(config.checkpoint_dir) if config.checkpoint_dir else default_run_dir(store, config.name)).resolve()
    config = _with_absolute_paths(config, run_dir)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "config": config.to_dict(),
            "store_root": str(store.root.resolve()),
            "progress": progress,
            "overwrite": overwrite,
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(name=f"train-{config.name}", storage_path=str((run_dir / "ray").resolve())),
    )
    try:
        trainer.fit()
    except Exception as exc:  # Ray wraps the worker's exception; show its message, not Ray's traceback
        cause = exc.__cause__ or exc
        raise TrainingError(f"Ray training failed: {type(cause).__name__}: {cause}") from exc
    # Rank 0 wrote the outcome into the run folder; Ray's own result holds only the last report.
    summary = resume_state.read_summary(run_dir)
    test = summary["test_metrics"]
    return TrainResult(
        card=store.card(config.name),
        best_epoch=summary["best_epoch"],
        history=resume_state.read_metrics_csv(run_dir),
        run_dir=run_dir,
        data=summary["data"],
        test_metrics=ScoreMetrics.from_dict(test) if test is not None else None,
    )
