"""What training raises and warns: refusals, Ctrl-C, storage failures, results worth a second look."""

from __future__ import annotations

from eat_curate.errors import EatCurateError
from eat_curate.exit_codes import INFRASTRUCTURE, INTERRUPTED


class TrainingError(EatCurateError):
    """Training cannot start or continue; the message says why."""


class TrainingInterrupted(TrainingError):
    """Ctrl-C: what the run folder kept, and what running the command again does (the command line
    names the exact command: ``kept``, ``next_run`` and ``resume`` are its parts)."""

    exit_code = INTERRUPTED.code

    def __init__(self, kept: str, next_run: str | None, resume: bool) -> None:
        self.kept = kept  # "interrupted in epoch 2 of 3: <run folder> holds epoch 1"
        self.next_run = next_run  # what running again does ("go on from epoch 2"); None: nothing is left to do
        self.resume = resume  # whether that run needs --resume
        again = "the same command with --resume" if resume else "the same command"
        super().__init__(kept if next_run is None else f"{kept}; to {next_run}, run {again}")

    def __reduce__(self):  # pickled (Ray, multiprocessing): rebuilt from its parts, not from its message
        return type(self), (self.kept, self.next_run, self.resume)


class TrainingStorageFailure(TrainingError):
    """A run or model folder on a read-only or full disk: the operator's matter, as in ``score``."""

    exit_code = INFRASTRUCTURE.code


class TrainingWarning(UserWarning):
    """Training goes on, but its result deserves a second look (a tiny validation set, an undefined SRCC)."""
