"""The training loop: one process, or one rank of a DDP group (Ray Train runs the same code).

Per epoch: set the steering rule of the phase, train (a progress bar with
loss, lr and img/s), validate, append a row to ``metrics.csv``, keep the
best weights by validation SRCC (or the last epoch's: ``keep_epoch``), and
checkpoint (a new best epoch's weights replace the kept ones only once its
checkpoint is written, so they always are the checkpoint's best epoch's).
At the end the kept epoch is evaluated on the test split and saved to the
model store with its card (and, for label files, the list of images it was
trained and validated on: ``eat_curate.model.training_images``).

Small validation sets are warned about: SRCC on a handful of images cannot
tell epochs apart, and on fewer than two (or constant labels or predictions)
it is undefined (nan). An epoch whose SRCC is nan is never kept as the best;
while no epoch has a defined SRCC, the latest one is held, so a run where
none ever has keeps its last epoch, and says so.

Determinism: the data order and augmentation follow from (seed, epoch) and
the checkpoint restores weights, optimizer, scheduler and RNG state, so a run
resumed after a crash ends exactly where the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from eat_curate.model.card import ModelCard
from eat_curate.model.eat import EAT, score_moments
from eat_curate.model.model_store import ModelStore
from eat_curate.model.presets import get_preset
from eat_curate.model.training_images import TRAINING_IMAGES_FILE, encode_training_images
from eat_curate.scoring.predictor import resolve_device
from eat_curate.scoring.preprocess import normalize_batch
from training import resume_state
from training.config import ConfigError, TrainConfig, with_explore_default
from training.datasets import epoch_order, make_loader
from training.distributed import SINGLE_PROCESS, DistributedContext
from training.errors import TrainingError, TrainingInterrupted, TrainingWarning
from training.evaluation import Predictions, metrics_of, predict
from training.losses import emd_loss, pairwise_ranking_loss, score_mse_loss
from training.metrics import ScoreMetrics
from training.resume_state import EpochRecord
from training.run_folders import (
    check_model_name,
    ensure_name_is_free,
    ensure_writable,
    interrupted_outside_the_epochs,
    run_folder,
)
from training.schedule import make_scheduler
from training.training_data import MIN_RANKING_VALIDATION, TrainingSource, prepare_data


# Starts a fresh model's weights from its training set before the first step (a recipe's own start, e.g. a
# DCT patch embedding: training.recipes.dct_stem); returns what it did, for the card's source line.
FreshModelInit = Callable[[EAT, torch.utils.data.Dataset, torch.device], str]


@dataclass
class TrainResult:
    card: ModelCard | None  # None on every process but the main one
    best_epoch: int  # counted from 1
    history: list[EpochRecord]
    run_dir: Path
    data: dict
    test_metrics: ScoreMetrics | None = None


def build_model(config: TrainConfig, store: ModelStore) -> tuple[EAT, str]:
    """A fresh seeded EAT of the preset, or one started from a store model; and where it came from."""
    torch.manual_seed(config.seed)
    if config.init is None:
        return EAT(get_preset(config.preset or "tiny"), drop_path_rate=config.drop_path), "random init"
    loaded = store.load(config.init)
    card = loaded.card
    if config.preset is not None and config.preset != card.preset:
        raise ConfigError(f"--preset {config.preset} contradicts --init {config.init}, a {card.preset} model")
    model = EAT(card.preset_spec(), head_mode=card.head_mode, drop_path_rate=config.drop_path)
    model.load_state_dict(loaded.model.state_dict())
    return model, f"{card.name} ({card.model_id})"


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"device {name!r}: {exc}") from None


def _loss_kind(config: TrainConfig, target: str) -> str:
    kind = config.loss if config.loss != "auto" else ("emd" if target == "votes" else "mse")
    if kind == "emd" and target != "votes":
        raise ConfigError("--loss emd needs vote distributions; these labels are single scores (use mse)")
    return kind


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        store: ModelStore,
        data: TrainingSource,
        context: DistributedContext = SINGLE_PROCESS,
        device: torch.device | None = None,
        progress: bool = True,
        log: Callable[[str], None] = tqdm.write,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        overwrite: bool = False,
        init_fresh_model: FreshModelInit | None = None,
    ) -> None:
        check_model_name(config)
        if init_fresh_model is not None and config.init is not None:
            raise ConfigError(f"--init {config.init} already has weights; this run's own start needs a fresh model")
        config = with_explore_default(config, config.init is not None and store.card(config.init).trained)
        if config.explore_epochs >= config.epochs:
            raise ConfigError(
                f"the explore phase ({config.explore_epochs} epochs) must end before the last of "
                f"{config.epochs} epochs, so the model is validated as it will score (with the exploit rule)"
            )
        self.config = config
        self.store = store
        self.data = data
        self.context = context
        self.device = device or _device(config.device)
        self.progress = progress and context.is_main
        self.log = log if context.is_main else (lambda message: None)
        self.on_epoch = on_epoch
        self.overwrite = overwrite
        self.run_dir = run_folder(config, store)
        self.loss_kind = _loss_kind(config, data.target)
        self.schedule = config.steering_schedule

        self.module, self.init_source = build_model(config, store)
        self.module.to(self.device)
        self.network: torch.nn.Module = self.module
        if context.is_distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)
        sets = data.datasets(config, self.module.preset.image_size)
        self.train_set, self.val_set, self.test_set = sets.train, sets.val, sets.test
        if init_fresh_model is not None:
            self.init_source += ", " + init_fresh_model(self.module, self.train_set, self.device)
        share = epoch_order(len(self.train_set), 0, 0, context.rank, context.world)
        self.steps_per_epoch = math.ceil(len(share) / config.batch_size)
        optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_class(self.module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.history: list[EpochRecord] = []
        self.best_epoch = 0  # counted from 1; 0 = none yet
        self.best_srcc = -math.inf  # stays -inf while the kept epoch has no defined SRCC
        self.start_epoch = 0
        self.checkpointed_epochs = 0  # epochs the run folder's checkpoint holds
        self.saved: ModelCard | None = None  # the model, once it is in the store
        self._warned_nan = False
        self._warn_if_validation_is_small()

    def _warn(self, message: str) -> None:
        if self.context.is_main:
            warnings.warn(message, TrainingWarning, stacklevel=3)

    def _warn_if_validation_is_small(self) -> None:
        count = len(self.val_set)
        if self.config.keep_epoch != "best" or count >= MIN_RANKING_VALIDATION:
            return
        share = f"{100 * self.config.val_fraction:g}%" if self.config.val_fraction is not None else "5%"
        self._warn(
            f"the validation split has {count} image{'s' if count != 1 else ''}, too few to tell epochs apart by "
            f"SRCC ({MIN_RANKING_VALIDATION} or more wanted; below 2 it is undefined, and the last epoch is kept "
            f"instead). Give more labelled images, a larger --val-fraction (now {share}) or a split column with "
            f"val rows; or pass --keep-epoch last to keep the last epoch on purpose"
        )

    # --- checkpoints -------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        resume_state.refuse_folders_in_the_way(self.run_dir)
        if self.config.resume:
            self._restore(resume_state.load_checkpoint(self.run_dir))
        elif resume_state.has_checkpoint(self.run_dir):
            raise TrainingError(
                f"{self.run_dir} already holds a checkpoint of a run: pass --resume to continue it, "
                "or --checkpoint-dir for a new run"
            )
        elif self.context.is_main:
            ensure_writable(self.run_dir, "run folder")
        if self.context.is_main:  # a stop between an epoch's writes left its best weights staged: settle them
            resume_state.settle_best_weights(self.run_dir, self.best_epoch)

    def _restore(self, state: dict) -> None:
        cannot = f"cannot resume {self.run_dir}"
        conflicts = self.config.resume_conflicts(json.loads(state["config"]))
        if conflicts:
            changed = "; ".join(conflicts)
            raise resume_state.CheckpointError(f"{cannot}: settings changed ({changed})")
        saved_model = json.loads(state.get("architecture", "null"))
        if saved_model is not None and saved_model != _architecture(self.module):
            raise resume_state.CheckpointError(
                f"{cannot}: its checkpoint holds a {saved_model.get('name')} model and this run builds a "
                f"{self.module.preset.name} one (was --init {self.config.init} replaced since?)"
            )
        fingerprint = self._data_fingerprint()
        if state.get("data_fingerprint") not in (None, fingerprint):
            then, now = state.get("data_sizes"), self.data.summary().get("sizes")
            raise resume_state.CheckpointError(
                f"{cannot}: the training data changed since the run started (images or labels; split sizes "
                f"then {then}, now {now}); restore the data, or start a new run with another --checkpoint-dir"
            )
        try:
            self.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise resume_state.CheckpointError(
                f"{cannot}: its checkpoint does not fit this run's model ({first_line})"
            ) from None
        resume_state.restore_rng_state(state["rng"])
        self.history = resume_state.history_from_state(state["history"])
        self.best_epoch, self.best_srcc = state["best_epoch"], state["best_srcc"]
        self.start_epoch = self.checkpointed_epochs = state["epoch"]
        self.log(f"resuming {self.run_dir} after epoch {self.start_epoch} of {self.config.epochs}")

    def _checkpoint(self, epoch: int) -> None:
        if not self.context.is_main:
            return
        resume_state.save_checkpoint(
            self.run_dir,
            {
                "epoch": epoch + 1,
                "config": json.dumps(self.config.to_dict()),
                "model": self.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": resume_state.rng_state(),
                "history": resume_state.history_to_state(self.history),
                "best_epoch": self.best_epoch,
                "best_srcc": self.best_srcc,
                "architecture": json.dumps(_architecture(self.module)),
                **self._data_state(),
            },
        )
        self.checkpointed_epochs = epoch + 1

    def _data_fingerprint(self) -> str | None:
        fingerprint = getattr(self.data, "fingerprint", None)  # optional part of TrainingSource
        return fingerprint() if callable(fingerprint) else None

    def _data_state(self) -> dict:
        fingerprint = self._data_fingerprint()
        if fingerprint is None:
            return {}
        return {"data_fingerprint": fingerprint, "data_sizes": self.data.summary().get("sizes")}

    # --- one epoch ---------------------------------------------------------------

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """EMD (vote targets) or MSE (score targets), plus the weighted ranking loss within groups."""
        distribution = self.module.distribution(logits)
        mean, _ = score_moments(distribution)
        if self.loss_kind == "emd":
            loss = emd_loss(distribution, targets, self.config.emd)
        else:
            loss = score_mse_loss(mean, targets)
        loss = self.config.loss_weight * loss
        if self.config.ranking_weight > 0:
            target_mean = score_moments(targets)[0] if targets.dim() == 2 else targets
            ranking = pairwise_ranking_loss(
                mean, target_mean, groups, self.config.ranking_margin, tie_weight=self.config.ranking_tie_weight
            )
            loss = loss + self.config.ranking_weight * ranking
        return loss

    def _train_epoch(self, epoch: int) -> tuple[float, int, int, float]:
        """Mean loss, images, decode failures and img/s of one epoch (over all processes)."""
        config, context = self.config, self.context
        self.network.train()
        self.train_set.set_epoch(epoch)
        order = epoch_order(len(self.train_set), config.seed, epoch, context.rank, context.world)
        loader = make_loader(self.train_set, order, config.batch_size, config.loader_workers, config.seed + epoch)
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        loss_sum, images, failures = 0.0, 0, 0
        started = time.perf_counter()
        for batch in bar:
            failures += len(batch.failures)
            self.optimizer.zero_grad(set_to_none=True)
            if len(batch):
                pixels = normalize_batch(batch.pixels, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                    logits = self.network(pixels)
                loss = self._loss(logits, batch.targets.to(self.device), batch.indices.to(self.device))
            else:
                # Every sample of this batch failed to decode. Under DDP every process must
                # still take the step, so take it with zero gradients.
                loss = sum(p.sum() for p in self.module.parameters()) * 0.0
            loss.backward()
            if config.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), config.clip_grad)
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.item() * len(batch)
            images += len(batch)
            rate = images * context.world / (time.perf_counter() - started)  # all processes, roughly
            lr = self.scheduler.get_last_lr()[0]
            bar.set_postfix(loss=f"{loss_sum / max(images, 1):.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}")
        seconds = time.perf_counter() - started
        total_images = int(context.sum(images))
        total_loss = context.sum(loss_sum)
        total_failures = int(context.sum(failures))
        if total_images == 0:  # every process knows the sums: all stop together
            raise TrainingError(
                f"not one training image could be decoded in epoch {epoch + 1} ({total_failures} failed): "
                "the files are damaged or in a format eat-curate cannot read"
            )
        return total_loss / total_images, total_images, total_failures, total_images / seconds

    def _validate(self, epoch: int) -> tuple[ScoreMetrics, float | None, int]:
        context = self.context
        order = list(range(len(self.val_set)))[context.rank :: context.world]
        mine = predict(
            self.module,
            self.val_set,
            order,
            self.device,
            self.config.precision,
            batch_size=max(self.config.batch_size, 32),
            workers=self.config.loader_workers,
            progress=self.progress,
            description=f"validating {epoch + 1}",
        )
        predictions = Predictions.merge(context.gather(mine))
        if len(predictions.mean) == 0:
            raise TrainingError("no validation image could be decoded")
        return metrics_of(predictions, self.val_set), predictions.toward_share, sum(predictions.failures.values())

    def _is_eligible(self, epoch: int) -> bool:
        # Explore epochs ran with another steering rule than the model will score with.
        return epoch >= self.config.explore_epochs

    def _keeps(self, srcc: float) -> bool:
        """Whether an eligible epoch with validation ``srcc`` replaces the kept one.

        An undefined (nan) SRCC never beats a defined one; while no kept epoch has a defined
        SRCC, the latest epoch is held instead, so such a run ends keeping its last epoch.
        """
        if self.config.keep_epoch == "last":
            return True
        if math.isnan(srcc):
            return self.best_srcc == -math.inf
        return srcc > self.best_srcc

    def _warn_if_undefined(self, record: EpochRecord) -> None:
        if not math.isnan(record.val_srcc) or self._warned_nan:
            return
        self._warned_nan = True
        why = (
            f"only {record.val_count} validation image{'s' if record.val_count != 1 else ''} decoded"
            if record.val_count < 2
            else f"the predictions, or the labels, of all {record.val_count} validation images are equal"
        )
        self._warn(
            f"validation SRCC is undefined (nan) at epoch {record.epoch}: {why}; "
            "an epoch without a defined SRCC is never kept as the best one"
        )

    # --- the run -----------------------------------------------------------------

    def run(self) -> TrainResult:
        try:
            return self._run()
        except KeyboardInterrupt:
            raise self._interrupted() from None

    def _interrupted(self) -> TrainingInterrupted:
        """What Ctrl-C leaves: the checkpoint of the last finished epoch, if one finished; or the saved model."""
        done, epochs = self.checkpointed_epochs, self.config.epochs
        if self.saved is not None:  # only the summary was left to write
            return TrainingInterrupted(
                f"interrupted after the model was saved as {self.saved.model_id}: the run is done, "
                f"though {self.run_dir / resume_state.SUMMARY_FILE} was not written",
                None,
                False,
            )
        if done == 0:
            return interrupted_outside_the_epochs(self.run_dir)
        kept = "epoch 1" if done == 1 else f"epochs 1-{done}"
        if done == epochs:
            return TrainingInterrupted(
                f"interrupted after the last epoch, before the model was saved: {self.run_dir} holds {kept}",
                "save the model",
                True,
            )
        return TrainingInterrupted(
            f"interrupted in epoch {done + 1} of {epochs}: {self.run_dir} holds {kept}",
            f"go on from epoch {done + 1}",
            True,
        )

    def _run(self) -> TrainResult:
        config = self.config
        self._prepare_run_dir()
        self.context.barrier()
        for epoch in range(self.start_epoch, config.epochs):
            started = time.perf_counter()
            rule = self.schedule.rule_at(epoch)
            self.module.set_steering(rule)
            loss, images, failures, rate = self._train_epoch(epoch)
            metrics, toward_share, val_failures = self._validate(epoch)
            record = EpochRecord(
                epoch=epoch + 1,
                phase="explore" if epoch < self.schedule.explore_epochs else "exploit",
                lr=self.scheduler.get_last_lr()[0],
                train_loss=loss,
                train_images=images,
                images_per_s=rate,
                decode_failures=failures + val_failures,
                val_srcc=metrics.srcc,
                val_plcc=metrics.plcc,
                val_accuracy=metrics.accuracy,
                val_emd=metrics.mean_emd,
                val_count=metrics.count,
                toward_share=toward_share,
                seconds=time.perf_counter() - started,
            )
            self.history.append(record)
            self._warn_if_undefined(record)
            new_best = self._is_eligible(epoch) and self._keeps(metrics.srcc)
            if new_best:
                self.best_epoch = epoch + 1
                self.best_srcc = metrics.srcc if not math.isnan(metrics.srcc) else -math.inf
                if self.context.is_main:  # staged: the kept weights stay the checkpoint's best until it names these
                    resume_state.stage_best_weights(self.run_dir, self.module.state_dict(), self.best_epoch)
            if self.context.is_main:
                resume_state.write_metrics_csv(self.run_dir, self.history)
            self._checkpoint(epoch)
            if new_best and self.context.is_main:
                resume_state.promote_best_weights(self.run_dir)
            self.log(_epoch_line(record, config.epochs, self.best_epoch == epoch + 1))
            if self.on_epoch is not None:
                self.on_epoch(record)
        return self._finish()

    def _kept_by(self) -> str:
        """How the kept epoch was chosen, for the card and the log."""
        if self.config.keep_epoch == "last":
            return "last epoch, as --keep-epoch last asks"
        if self.best_srcc == -math.inf:
            return "last epoch; no epoch had a defined validation SRCC"
        return "best validation SRCC"

    def _finish(self) -> TrainResult:
        if self.config.keep_epoch == "best" and self.best_srcc == -math.inf:
            self._warn(
                f"no epoch had a defined validation SRCC: kept epoch {self.best_epoch}, the last one, "
                "rather than a best one"
            )
        self.context.barrier()  # the best weights are on disk before anyone reads them
        self.module.load_state_dict(resume_state.load_best_weights(self.run_dir, self.best_epoch))
        self.module.set_steering(self.schedule.exploit)
        test_metrics = None
        if self.test_set.items:
            order = list(range(len(self.test_set)))[self.context.rank :: self.context.world]
            precision, workers = self.config.precision, self.config.loader_workers
            mine = predict(self.module, self.test_set, order, self.device, precision, workers=workers)
            test_metrics = metrics_of(Predictions.merge(self.context.gather(mine)), self.test_set)
        result = TrainResult(None, self.best_epoch, self.history, self.run_dir, self.data.summary(), test_metrics)
        if self.context.is_main:
            seen = self._seen_images()
            attachments = {TRAINING_IMAGES_FILE: encode_training_images(seen)} if seen else None
            card = self._card(test_metrics, seen)
            result.card = self.store.save(self.module.cpu(), card, overwrite=self.overwrite, attachments=attachments)
            self.saved = result.card
            resume_state.write_summary(
                self.run_dir,
                {
                    "model_id": result.card.model_id,
                    "best_epoch": self.best_epoch,
                    "data": result.data,
                    "test_metrics": test_metrics.to_dict() if test_metrics else None,
                },
            )
            kept = f"epoch {self.best_epoch}, {self._kept_by()}"
            self.log(f"saved {result.card.model_id} ({kept}) to {self.store.root}")
        return result

    def _seen_images(self) -> dict[str, list[Path]] | None:
        seen_images = getattr(self.data, "seen_images", None)  # optional part of TrainingSource
        return seen_images() if callable(seen_images) else None

    def _card(self, test_metrics: ScoreMetrics | None, seen: dict[str, list[Path]] | None = None) -> ModelCard:
        config, best = self.config, self.history[self.best_epoch - 1]
        metrics = {
            "best_epoch": self.best_epoch,
            "val": {
                "srcc": best.val_srcc,
                "plcc": best.val_plcc,
                "accuracy": best.val_accuracy,
                "mean_emd": best.val_emd,
                "count": best.val_count,
            },
        }
        if test_metrics is not None:
            metrics["test"] = test_metrics.summary()
        summary = self.data.summary()
        return ModelCard(
            name=config.name,
            preset=self.module.preset.name,
            architecture=self.module.preset.to_dict(),
            steering_mode="scheduled",
            steering_schedule=self.schedule.to_dict(),
            trained=True,
            source=f"eat-curate train from {self.init_source}",
            training_data=self.data.describe(),
            metrics=metrics,
            scope="trained by eat-curate; see metrics and training_data for what it was trained and validated on",
            extra={
                "split": summary["split"],
                "split_seed": config.seed,
                "split_sizes": summary["sizes"],
                "dropped_images": summary["dropped"],
                "epochs": config.epochs,
                "best_epoch": self.best_epoch,
                "kept_by": self._kept_by(),
                "loss": self._loss_description(),
                "config": config.to_dict(),
                **_training_images_entry(seen),
            },
        )

    def _loss_description(self) -> str:
        config = self.config
        loss = self.loss_kind if self.loss_kind == "mse" else f"emd ({config.emd})"
        if config.loss_weight != 1:
            loss = f"{config.loss_weight} x {loss}"
        if config.ranking_weight > 0:
            loss += f" + {config.ranking_weight} x pairwise ranking (margin {config.ranking_margin} x target gap"
            loss += f", ties x {config.ranking_tie_weight}" if config.ranking_tie_weight else ""
            loss += ")"
        return loss


def _architecture(model: EAT) -> dict:
    """What decides the shapes of a model's weights (its preset, less the stochastic-depth rate), as JSON has it."""
    architecture = json.loads(json.dumps(model.preset.to_dict()))
    architecture.pop("drop_path_rate", None)
    return architecture


def _training_images_entry(seen: dict[str, list[Path]] | None) -> dict:
    """The card's note of the training-images file: its name and how many images of each split it lists."""
    if not seen:
        return {}
    return {"training_images": {"file": TRAINING_IMAGES_FILE, **{split: len(paths) for split, paths in seen.items()}}}


def _epoch_line(record: EpochRecord, epochs: int, best: bool) -> str:
    emd = f" emd {record.val_emd:.4f}" if record.val_emd is not None else ""
    share = f" toward {record.toward_share:.3f}" if record.toward_share is not None else ""
    failures = f" decode failures {record.decode_failures}" if record.decode_failures else ""
    return (
        f"epoch {record.epoch}/{epochs} [{record.phase}] loss {record.train_loss:.4f} lr {record.lr:.2e} "
        f"{record.images_per_s:.1f} img/s | val srcc {record.val_srcc:.4f} plcc {record.val_plcc:.4f} "
        f"acc {record.val_accuracy:.3f}{emd}{share}{failures}{' *best' if best else ''}"
    )


def train(
    config: TrainConfig,
    store: ModelStore,
    context: DistributedContext = SINGLE_PROCESS,
    device: torch.device | None = None,
    progress: bool = True,
    log: Callable[[str], None] = tqdm.write,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train EAT as ``config`` says and save the best epoch to ``store`` under ``config.name``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    if context.is_main:
        ensure_name_is_free(config, store, overwrite)
    data = prepare_data(config, progress=progress and context.is_main)
    trainer = Trainer(config, store, data, context, device, progress, log, on_epoch, overwrite)
    return trainer.run()
