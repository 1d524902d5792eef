"""Exit codes a scheduler can act on, in one place (``score --help`` prints this table).

An error carries its code as an ``exit_code`` attribute (see
``eat_curate.sinks.faults``); :func:`exit_code_of` reads it, so the command
line needs no list of error classes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    code: int
    name: str  # what ``--json`` prints as "outcome"
    meaning: str  # for people, and for whoever writes the scheduler's policy


DONE = Outcome(0, "done", "everything was done; images that could not be read are error rows, and fine")
ERROR = Outcome(1, "error", "an unexpected error (a bug: run again with --debug for the traceback)")
REFUSED = Outcome(
    2, "refused", "refused: a bad source, option, model or output; fix the command, retrying will not help"
)
TOO_MANY_FAILED = Outcome(3, "too_many_failed", "the run finished, but more images failed than --max-failed allows")
INFRASTRUCTURE = Outcome(
    4, "infrastructure", "a database unreachable past --db-retry-for, a full or read-only disk; "
    "what was saved is kept: run again later to resume"
)
NOTHING_EXPORTED = Outcome(
    5, "nothing_exported", "export: not one file could be exported; ratings: not one rated image found"
)
SIDECARS_LEFT = Outcome(
    6, "sidecars_left", "xmp: some sidecars could not be read or written and were left as they were (listed); "
    "all the others were written"
)
INTERRUPTED = Outcome(
    130, "interrupted", "interrupted (Ctrl-C; for score, SIGTERM too): what was finished is kept; the same command "
    "resumes score (every saved batch), and with --resume train (every finished epoch)"
)
# 128 + SIGPIPE, what a shell reports for any Unix tool whose reader went away.
PIPE_CLOSED = Outcome(
    141, "pipe_closed", "what read the output stopped reading (| head): the rest was not printed; nothing else failed"
)

OUTCOMES = (
    DONE, ERROR, REFUSED, TOO_MANY_FAILED, INFRASTRUCTURE, NOTHING_EXPORTED, SIDECARS_LEFT, INTERRUPTED, PIPE_CLOSED
)
_BY_CODE = {outcome.code: outcome for outcome in OUTCOMES}


def outcome_of(code: int) -> Outcome:
    return _BY_CODE.get(code, ERROR)


def exit_code_of(error: BaseException, default: int = ERROR.code) -> int:
    """The code an error asks for (its ``exit_code`` attribute), else ``default``."""
    code = getattr(error, "exit_code", None)
    return code if isinstance(code, int) else default


def exit_code_table() -> str:
    """The codes as the lines of a help epilog."""
    return "\n".join(f"  {outcome.code:>3}  {outcome.meaning}" for outcome in OUTCOMES)
