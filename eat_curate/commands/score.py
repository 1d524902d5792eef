"""`eat-curate score`: the main job — images in, score distributions out to Parquet and/or SQL.

How a run ended is its exit code (``eat_curate.exit_codes``, listed by
``score --help``) and, with ``--json``, the summary's ``outcome``:
refused before anything was written (a bad source, option, model or output),
an infrastructure failure (a database unreachable past ``--db-retry-for``, a
full or read-only disk), more failed images than ``--max-failed``, or done.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from eat_curate import exit_codes
from eat_curate.commands.options import Number, exclude_option, model_store, models_dir_option
from eat_curate.commands.output import to_json
from eat_curate.commands.score_preview import print_dry_run, warn_if_no_images
from eat_curate.errors import EatCurateError
from eat_curate.exit_codes import Outcome
from eat_curate.io.exclusions import Exclusions
from eat_curate.runs import FailureLimit, RunInfo, RunSummary, new_run_id
from eat_curate.scoring.progress import PROGRESS_MODES
from eat_curate.sinks import DEFAULT_RETRY_FOR_S


def _describe_failures(summary: RunSummary) -> str:
    if not summary.failed:
        return "failed 0"
    kinds = ", ".join(f"{kind} {count}" for kind, count in summary.failed_by_kind.most_common())
    return f"failed {summary.failed} ({kinds})"


# Names a database or a table has: given to --out (Parquet), almost always meant for --db or another tool.
_NOT_PARQUET_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".duckdb", ".csv", ".json", ".jsonl")


def _refuse_database_name_as_out(out: str | None) -> None:
    """``--out photos.db`` would write a Parquet file named like a database; say which option was meant."""
    suffix = Path(out.rstrip("/")).suffix.lower() if out else ""
    if suffix in _NOT_PARQUET_SUFFIXES and not out.endswith("/"):
        hint = f"for SQLite, --db {out}" if suffix in (".db", ".sqlite", ".sqlite3") else "name it .parquet"
        raise click.UsageError(f"--out {out} writes Parquet, not {suffix}: {hint}")


def format_summary(summary: RunSummary, run: RunInfo, outputs: list[str]) -> str:
    images = "image" if summary.scored == 1 else "images"
    lines = [
        f"scored {summary.scored} {images} in {summary.seconds:.1f}s ({summary.images_per_s:.1f} img/s): "
        f"ok {summary.ok}, {_describe_failures(summary)}, skipped {summary.skipped} already scored",
        f"wrote {', '.join(outputs)} (run {run.run_id}, model {run.model_id})",
    ]
    if summary.failed:
        lines.append(
            f"eat-curate filter {shlex.quote(outputs[0])} --errors lists what failed, with the reasons; "
            "the next run tries those images again"
        )
    return "\n".join(lines)


class FailureLimitType(click.ParamType):
    """``--max-failed``: a number of images (``10``) or a share of the images scored (``2.5%``)."""

    name = "N|P%"

    def convert(self, value, param, ctx) -> FailureLimit:
        if isinstance(value, FailureLimit):
            return value
        try:
            return FailureLimit.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class RunEnded(click.ClickException):
    """A run that ended otherwise than done: one line on stderr, and its outcome's exit code."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.exit_code = outcome.code


def summary_json(
    outcome: Outcome, run: RunInfo | None, summary: RunSummary, error: str | None = None, excluded: dict | None = None
) -> dict:
    """What ``--json`` prints, however the run ended; ``excluded``: what ``--exclude`` left out, when given."""
    identity = {"run_id": run.run_id, "model_id": run.model_id} if run is not None else {}
    extra = {"excluded": excluded} if excluded is not None else {}
    return {**identity, **summary.to_dict(), **extra, "outcome": outcome.name, "exit_code": outcome.code,
            "error": error}


@dataclass
class RunReport:
    """Says how a run ended — the summary, or JSON with --json — and exits with the outcome's code."""

    as_json: bool
    quiet: bool
    outputs: list[str]
    summary: RunSummary
    excluded: dict | None = None  # Exclusions.summary of a run that walked to its end

    def end(self, outcome: Outcome, run: RunInfo | None, error: str | None = None) -> None:
        if self.as_json:
            click.echo(to_json(summary_json(outcome, run, self.summary, error, self.excluded)))
        elif not self.quiet and run is not None and outcome in (exit_codes.DONE, exit_codes.TOO_MANY_FAILED):
            click.echo(format_summary(self.summary, run, self.outputs))
        if outcome != exit_codes.DONE:
            raise RunEnded(error or outcome.meaning, outcome)

    def failed(self, error: EatCurateError, default: Outcome, run: RunInfo | None) -> None:
        """End with the outcome ``error`` asks for (an infrastructure failure), else ``default``."""
        self.end(exit_codes.outcome_of(exit_codes.exit_code_of(error, default.code)), run, str(error))

    def crashed(self, run: RunInfo | None) -> None:
        """A bug ended the run: with --json, still print what was saved (the error follows)."""
        if self.as_json:
            click.echo(to_json(summary_json(exit_codes.ERROR, run, self.summary, "unexpected error")))


class ByteCount(click.ParamType):
    """``--max-bytes``: a number of bytes, or one with a binary unit: ``512M``, ``2G``, ``300k``."""

    name = "SIZE"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        number, unit = (text[:-1], text[-1]) if text[-1:] in self._UNITS else (text, "")
        try:
            count = int(float(number) * self._UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a size: give bytes, or a number with K, M or G (512M)", param, ctx)
        if count < 1:
            self.fail("must be at least 1 byte", param, ctx)
        return count


def _end_on_sigterm_as_on_ctrl_c() -> None:
    """SIGTERM (a scheduler stopping the job, a pod evicted) ends the run as Ctrl-C does, for this command.

    Without it the process dies at once: the saved batches stay, but the run
    record says "running" until its heartbeat goes stale. With it the run ends
    interrupted, with its counts, and the exit code says so.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set signal handlers (a library caller in a thread keeps its own)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    if previous is not None:  # None: a handler set outside Python, which cannot be put back
        click.get_current_context().call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


def _recorded_source(source: str) -> str:
    """A source as the run record keeps it: a local path made absolute (it outlives the working directory,
    and `db prune` reads it to tell an unmounted disk from deleted photos), a URL without its password,
    both as valid UTF-8."""
    from eat_curate.io.items import printable_path
    from eat_curate.io.remote import hide_url_password, is_remote

    return hide_url_password(printable_path(source if is_remote(source) else os.path.abspath(source)))


def _warn_of_passwords_in(sources: tuple[str, ...]) -> None:
    """A URL's password goes into the path of each of its images, and from there into every result, export and
    report made of them: say so, and where it belongs instead."""
    from urllib.parse import urlsplit

    from eat_curate.io.remote import hide_url_password

    for source in sources:
        shown = hide_url_password(source)
        if shown != source:
            parts = urlsplit(source)
            click.echo(
                f"warning: the password of {shown} is stored in the path of each of its images, in the results "
                f"and in what is made of them; put it in ~/.netrc instead (machine {parts.hostname} login "
                f"{parts.username} password ...) and give the URL without it",
                err=True,
            )


def _cuda_here(device: str) -> bool:
    """Whether this process would score on a CUDA device (``auto``: when one is present; asks torch only then)."""
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def _engine_choice(engine: str | None, ray_address: str | None) -> str:
    """``--engine`` if given; else Ray when an address is given or RAY_ADDRESS is set, else local."""
    if engine:
        return engine
    return "ray" if ray_address or os.environ.get("RAY_ADDRESS") else "local"


@click.command(epilog="\b\nExit codes (--json prints the same as \"outcome\" and \"exit_code\"):\n"
                       + exit_codes.exit_code_table())
@click.argument("sources", nargs=-1, required=True)
@click.option("--model", "model_ref", default=None, metavar="NAME|PATH",
              help="Model from the store (see `models list`) or a model folder. Default: the built-in model.")
@click.option("--out", type=str, default=None, metavar="FILE.parquet",
              help="Parquet output (one row per image). A folder (ending in '/') keeps a dataset of parts.")
@click.option("--db", type=str, default=None, metavar="URL",
              help="SQL output: a SQLite file path or an SQLAlchemy URL (sqlite:///x.db, postgresql+psycopg://...).")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Images per model call. Default: 256 when the model runs on a CUDA device, 16 on a CPU.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 on GPUs and on CPUs with fast bf16 (AVX512-BF16/AMX), else fp32.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Decode threads (0: one per core).")
@click.option("--album-from", default="parent", show_default=True, metavar="parent|relative|COLUMN",
              help="Album of each image: the name of the folder holding it, whichever folder above it is given "
                   "(parent); its folder's path under the folder given (relative); or a manifest column. "
                   "`db albums` moves a database scored by an older eat-curate to the parent rule.")
@exclude_option("Leave out what matches inside source folders (repeat for several): a glob on names at any "
                "depth (@eaDir, '*.png', 'Lightroom Previews*'), or with a '/' on the path under the folder "
                "(2023/exports); a trailing '/' matches folders only. Case is ignored; an excluded folder is "
                "not entered.")
@click.option("--rescore", is_flag=True, help="Score again what the outputs already hold for this model.")
@click.option("--max-bytes", type=ByteCount(), default=None, metavar="SIZE",
              help="Read at most this much of one image (512M, 2G, or bytes); a larger file is a too-large "
                   "row, refused from its size without reading it. Default: 512 MiB.")
@click.option("--remote-tries", type=click.IntRange(1), default=3, show_default=True,
              help="URLs (http, s3, ...): tries in all for one read or listing when it times out or gets a 5xx "
                   "answer (waits of about 0.5 s, 1 s, 2 s ... between them); other failures are not retried.")
@click.option("--remote-timeout", type=Number(0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="URLs: the longest one try waits to connect, for the answer to begin, and for each MiB of "
              "it over HTTP (a server that trickles is cut off).")
@click.option("--duplicates", type=click.Choice(["refuse", "keep"]), default="refuse", show_default=True,
              help="A manifest naming a path or an id twice: refuse it (naming the rows), or keep every row "
                   "(a later row gets '#<row>' appended to its path key or id).")
@click.option("--dry-run", is_flag=True,
              help="List the images a run would score (stdout, one per line: new, changed or failed before) "
              "and count those it would skip; nothing is decoded, scored or written. With --json: the counts only.")
@click.option("--limit", type=click.IntRange(0), default=None, help="Score at most N images (for a first look).")
@click.option("--no-draft", is_flag=True, help="Decode JPEGs at full resolution (slower; see README).")
@click.option("--gpu-decode", is_flag=True,
              help="Decode JPEGs on the GPU (nvJPEG), in batches; other formats still decode on the CPU.")
@click.option("--compile/--no-compile", "compile_model", default=None,
              help="torch.compile the model at the batch size (the first batch waits while it compiles). "
                   "Default: on a CUDA device; a CPU runs fused oneDNN kernels instead.")
@click.option("--cuda-graphs", is_flag=True,
              help="Also replay the compiled model as CUDA graphs (less launch overhead; a CUDA device only).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
              help="local: this process. ray: a Ray cluster (default when --ray-address or RAY_ADDRESS is set).")
@click.option("--ray-address", default=None, help="auto, HOST:PORT or ray://HOST:PORT (implies --engine ray).")
@click.option("--actors", type=click.IntRange(1), default=None, help="Ray: scoring actors (default: one per GPU).")
@click.option("--gpus-per-actor", type=Number(0), default=1.0, show_default=True, help="Ray: GPUs held by each actor.")
@click.option("--cpus-per-actor", type=Number(0), default=None,
              help="Ray: CPUs each actor reserves (default 1; may be fractional).")
@click.option("--actor-threads", type=click.IntRange(1), default=None, help="Ray: torch threads per CPU actor.")
@click.option("--decode-cpus", type=Number(0), default=1.0, show_default=True,
              help="Ray: CPUs each decode task reserves.")
@click.option("--db-retry-for", type=Number(0), default=DEFAULT_RETRY_FOR_S, show_default=True,
              metavar="SECONDS",
              help="Wait this long for a database that is restarting, failing over or locked (0: fail at once).")
@click.option("--max-failed", type=FailureLimitType(), default=None,
              help="Exit with code 3 when more images than this fail: a number (10) or a share of those scored (2%).")
@models_dir_option
@click.option("--progress", "progress_mode", type=click.Choice(PROGRESS_MODES), default="auto", show_default=True,
              help="How progress shows on stderr: a bar that redraws itself; a line every --progress-every "
              "seconds, for logs (cron, `ray job logs`); or none. auto: a bar on a terminal, lines otherwise, "
              "none with --quiet or --json.")
@click.option("--progress-every", type=Number(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="With lines: seconds between progress lines.")
@click.option("--no-progress", is_flag=True, help="The same as --progress none, as on train, evaluate and ratings.")
@click.option("--quiet", "-q", is_flag=True, help="No progress (unless --progress says) and no summary (errors still print).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def score(
    sources: tuple[str, ...],
    model_ref: str | None,
    out: str | None,
    db: str | None,
    batch_size: int | None,
    device: str,
    dtype: str,
    workers: int,
    album_from: str,
    exclusions: Exclusions,
    rescore: bool,
    max_bytes: int | None,
    remote_tries: int,
    remote_timeout: float,
    duplicates: str,
    limit: int | None,
    dry_run: bool,
    no_draft: bool,
    gpu_decode: bool,
    compile_model: bool | None,
    cuda_graphs: bool,
    engine: str | None,
    ray_address: str | None,
    actors: int | None,
    gpus_per_actor: float,
    cpus_per_actor: float | None,
    actor_threads: int | None,
    decode_cpus: float,
    db_retry_for: float,
    max_failed: FailureLimit | None,
    models_dir: Path | None,
    progress_mode: str,
    no_progress: bool,
    progress_every: float,
    quiet: bool,
    as_json: bool,
) -> None:
    """Score the images in SOURCES with EAT.

    SOURCES are folders (searched recursively), image files, Parquet
    manifests (a `path`/`uri` column or an `image` bytes column; optional
    `album`, `id`) or URLs (file://, http(s)://, s3://; a server's login
    from ~/.netrc). Every image gives one row: its 10-bin score
    distribution, mean (1-10) and std — or the reason it could not be scored.

    Re-running the same command skips what is already scored by the same
    model (unchanged path, size and time), so an interrupted run resumes and
    a nightly run scores only what is new.

    \b
    Examples:
      eat-curate score ./photos --out scores.parquet
      eat-curate score ./photos --db photos.db --model my-eat
      eat-curate score manifest.parquet --album-from event --db postgresql+psycopg://me@db/photos
    """
    _end_on_sigterm_as_on_ctrl_c()
    # torch and the model code load only once a run is certain: a refusal or a --dry-run answers without them.
    from eat_curate.io import remote_retry
    from eat_curate.io.sources import iter_items
    from eat_curate.scoring.progress import progress_for
    from eat_curate.sinks import RetryPolicy, open_sinks, without_password

    if not out and not db:
        raise click.UsageError("say where scores go: --out FILE.parquet and/or --db URL")
    _refuse_database_name_as_out(out)
    chosen_engine = _engine_choice(engine, ray_address)
    if gpu_decode and chosen_engine == "local" and not _cuda_here(device):
        raise click.UsageError("--gpu-decode needs a CUDA device (--device cuda)")
    if (compile_model or cuda_graphs) and not _cuda_here(device):
        raise click.UsageError("--compile and --cuda-graphs need a CUDA device (--device cuda)")
    if cuda_graphs and compile_model is False:
        raise click.UsageError("--cuda-graphs replays the compiled model: it cannot go with --no-compile")
    outputs = [value for value in (out, db and without_password(db)) if value]  # as printed and recorded
    report = RunReport(as_json, quiet, outputs, RunSummary())
    if no_progress and progress_mode not in ("auto", "none"):
        raise click.UsageError(f"--no-progress and --progress {progress_mode} say opposite things: give one")
    if no_progress or (progress_mode == "auto" and (quiet or as_json)):
        progress_mode = "none"
    progress = progress_for(progress_mode, every_s=progress_every)

    remote_retry.use_policy(remote_retry.RetryPolicy(attempts=remote_tries, timeout_s=remote_timeout))

    # Check everything that can be wrong before anything is written: what fails here is refused
    # (or, for a database still unreachable after --db-retry-for, an infrastructure failure).
    sinks = []
    try:
        store = model_store(models_dir)
        model_ref = model_ref or store.default_name()
        if not model_ref:
            raise EatCurateError(
                "no --model given and no default model is installed; create one with "
                "`eat-curate models init` or import weights with `eat-curate models import`"
            )
        items = iter_items(list(sources), album_from=album_from, limit=limit, duplicates=duplicates,
                           exclusions=exclusions)
        _warn_of_passwords_in(sources)
        card = store.usable_card(model_ref)  # a broken weights file too, before any photo or actor
        if dry_run:
            progress.close()
            print_dry_run(items, out, db, card.model_id, rescore, exclusions, limit, as_json=as_json, quiet=quiet)
            return
        from eat_curate.scoring.engine import EngineOptions, LocalEngine, default_batch_size
        from eat_curate.scoring.predictor import Predictor, warn_if_untrained

        batch_size = batch_size or default_batch_size("cuda" if _cuda_here(device) else "cpu")
        sinks = open_sinks(out=out, db=db, retry=RetryPolicy(limit_s=db_retry_for), on_wait=progress.waiting)
        run = RunInfo(
            run_id=new_run_id(),
            model_id=card.model_id,
            model_name=card.name,
            model_sha256=card.sha256,
            sources=[_recorded_source(source) for source in sources],
            engine=chosen_engine,
            options={"batch_size": batch_size, "device": device, "dtype": dtype, "workers": workers,
                     "album_from": album_from, "exclude": list(exclusions.given), "rescore": rescore,
                     "limit": limit, "draft": not no_draft,
                     "gpu_decode": gpu_decode, "db_retry_for": db_retry_for, "max_bytes": max_bytes,
                     "compile": compile_model, "cuda_graphs": cuda_graphs,
                     "duplicates": duplicates,
                     "max_failed": str(max_failed) if max_failed else None},
        )
        if not quiet and not as_json:
            click.echo(f"model {card.model_id}: {card.scope or 'no scope given in its card'}", err=True)
        options = EngineOptions(batch_size=batch_size, workers=workers, rescore=rescore, draft=not no_draft,
                                gpu_decode=gpu_decode, max_bytes=max_bytes)
        if chosen_engine == "ray":
            from pipelines.ray_engine import RayEngine, RayOptions

            warn_if_untrained(card)  # the actors build their predictors quietly
            runner = RayEngine(
                store.resolve(model_ref),
                options,
                RayOptions(address=ray_address, actors=actors, gpus_per_actor=gpus_per_actor,
                           cpus_per_actor=cpus_per_actor, actor_threads=actor_threads, decode_cpus=decode_cpus,
                           device=device, dtype=dtype, compile=compile_model, cuda_graphs=cuda_graphs),
            )
        else:
            runner = LocalEngine(Predictor(store.load(model_ref), device=device, dtype=dtype, compile=compile_model,
                                           cuda_graphs=cuda_graphs), options)
    except BaseException as error:
        for sink in sinks:
            sink.close()
        progress.close()
        if isinstance(error, KeyboardInterrupt):  # e.g. while waiting for the database
            report.end(exit_codes.INTERRUPTED, None, "interrupted before anything was written")
        if isinstance(error, EatCurateError):
            report.failed(error, exit_codes.REFUSED, run=None)
        raise

    from eat_curate.scoring.execute import execute_run

    try:
        # stdout is for the summary and --json: what a library prints while the run works goes to stderr
        # (Ray's driver prints its raylet's messages, a retried task say, on stdout).
        with contextlib.redirect_stdout(sys.stderr):
            execute_run(runner, items, sinks, run, card, progress, outputs, summary=report.summary)
    except KeyboardInterrupt:
        report.end(exit_codes.INTERRUPTED, run,
                   "interrupted: finished batches are saved; run the same command again to resume")
    except EatCurateError as error:
        report.failed(error, exit_codes.REFUSED, run)
    except Exception:
        report.crashed(run)
        raise
    if exclusions:
        report.excluded = exclusions.summary(walks_finished=limit is None)
    summary = report.summary
    if not quiet and not as_json:
        for line in exclusions.report(walks_finished=limit is None):
            click.echo(line, err=True)
        warn_if_no_images(summary.scored + summary.skipped, limit)
    if max_failed is not None and max_failed.exceeded(summary):
        report.end(exit_codes.TOO_MANY_FAILED, run,
                   f"{summary.failed} of {summary.scored} images failed, more than --max-failed {max_failed}")
    report.end(exit_codes.DONE, run)
