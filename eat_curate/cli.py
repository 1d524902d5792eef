"""The ``eat-curate`` command line: one click group, commands named as verbs.

Commands live in ``eat_curate.commands`` (one module per family) and only
wrap the library. This module and those commands are the only code that
reaches into ``pipelines/`` and ``training/``, always lazily.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import warnings

import click

from eat_curate import __version__
from eat_curate.errors import EatCurateError, is_storage_error
from eat_curate.exit_codes import ERROR, INFRASTRUCTURE, INTERRUPTED, PIPE_CLOSED, REFUSED, exit_code_of

DEBUG_KEY = "eat_curate.debug"


class EatCurateGroup(click.Group):
    """Every failure is one line: an expected one (``EatCurateError``) with the exit code it asks for
    (``eat_curate.exit_codes``; refused, 2, unless it says otherwise), a bug (1) with a hint to run again
    with ``--debug`` for its traceback. A reader that closes stdout early (``| head``) is no failure: the
    command ends quietly with 141, as a shell reports any tool stopped by SIGPIPE."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EatCurateError as error:
            failure = click.ClickException(str(error))
            failure.exit_code = exit_code_of(error, default=REFUSED.code)  # 1 is kept for bugs
            raise failure from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            # Click's own answer is "Aborted!" and 1, the code of a bug; a scheduler must tell the two apart.
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED.code) from None
        except Exception as error:
            if isinstance(error, BrokenPipeError) and stdout_reader_gone():  # not a socket's broken pipe, say
                # Quiet, as any Unix tool whose reader went away; Python's flush of stdout at exit would fail again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise click.exceptions.Exit(PIPE_CLOSED.code) from None
            if ctx.meta.get(DEBUG_KEY):
                raise
            raise _one_line_failure(error) from None


def _one_line_failure(error: Exception) -> click.ClickException:
    """What an error no command caught says, and its exit code: a bug, unless the file system explains it."""
    if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:  # a name given (or made from one)
        failure = click.ClickException(f"a file name is longer than the file system takes (255 bytes): {error}")
        failure.exit_code = REFUSED.code
    elif is_storage_error(error):  # a full, read-only or failing disk, wherever a command wrote
        failure = click.ClickException(f"the disk refused a write: {error}")
        failure.exit_code = INFRASTRUCTURE.code
    else:
        failure = click.ClickException(
            f"unexpected {type(error).__name__}: {error} (a bug in eat-curate; run again with --debug for the traceback)"
        )
        failure.exit_code = ERROR.code
    return failure


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``eat-curate filter ... | head`` has its lines).

    Polling the write end of a pipe without a reader reports an error; any
    other stdout (a terminal, a file, a pipe still read) does not.
    """
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll on this platform, or stdout is no file (CliRunner)
        return False


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


@click.group(cls=EatCurateGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="eat-curate")
@click.option("--debug", is_flag=True, envvar="EAT_CURATE_DEBUG", help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Score, rank and curate photos with EAT, an aesthetics transformer.

    \b
    First steps:
      eat-curate models list                       models you can score with
      eat-curate score ./photos --out scores.parquet
      eat-curate rank scores.parquet --top 3       each album's best 3
      eat-curate score ./photos --db photos.db     then: albums photos.db, filter, export, ...

    Every command explains itself with --help.

    \b
    Shell completion: add this line to ~/.bashrc (zsh: zsh_source, in ~/.zshrc)
      eval "$(_EAT_CURATE_COMPLETE=bash_source eat-curate)"
    """
    warnings.showwarning = _show_warning
    ctx.meta[DEBUG_KEY] = debug


def _register() -> None:
    from eat_curate.commands.bench import bench
    from eat_curate.commands.db import db, runs
    from eat_curate.commands.models import models
    from eat_curate.commands.samples import samples
    from eat_curate.commands.score import score

    for command in (score, models, samples, bench, db, runs):
        cli.add_command(command)

    from eat_curate.commands.explain import explain
    from eat_curate.commands.dupes import dupes
    from eat_curate.commands.export import export
    from eat_curate.commands.read import albums, filter_, rank
    from eat_curate.commands.report import report
    from eat_curate.commands.xmp import xmp

    for command in (albums, rank, filter_, export, dupes, report, xmp, explain):
        cli.add_command(command)

    from eat_curate.commands.ratings import ratings
    from eat_curate.commands.train import evaluate, train

    for command in (train, evaluate, ratings):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="eat-curate")


if __name__ == "__main__":
    sys.exit(main())
