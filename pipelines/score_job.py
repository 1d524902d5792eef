"""Cluster job entrypoint: score sources on the Ray cluster this job runs in.

Runs unchanged under ``ray job submit`` (and as a KubeRay RayJob entrypoint):

    ray job submit --address http://HEAD:8265 -- \\
        python -m pipelines.score_job --source s3://photos/incoming/ --db postgresql+psycopg://... --model eat-base

It is ``eat-curate score --engine ray`` with the cluster's address: the same
sources, sinks, incremental skipping and run record. Run nightly over the same
source, it scores only what is new (see pipelines/k8s/ for a CronJob). The
job's log gets a progress line a minute (``--progress-every``) and, at the
end, the run summary as JSON.
"""

from __future__ import annotations

import argparse
import sys

from eat_curate.cli import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.score_job", description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", required=True, help="folder, file, manifest or URL (repeatable)")
    parser.add_argument("--model", required=True, help="model name in the store, or a model folder on a shared path")
    parser.add_argument("--models-dir", help="model store folder (a path every node can read)")
    parser.add_argument("--out", help="Parquet output on a shared path")
    parser.add_argument("--db", help="SQL output URL")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--actors", type=int)
    parser.add_argument("--gpus-per-actor", type=float, default=1.0)
    parser.add_argument("--cpus-per-actor", type=float)
    parser.add_argument("--decode-cpus", type=float, default=1.0)
    parser.add_argument("--max-bytes", help="the most read for one image: 512M, 2G, ... (default 512 MiB)")
    parser.add_argument("--remote-tries", type=int, help="tries per remote read (default 3)")
    parser.add_argument("--remote-timeout", type=float, help="seconds one remote try may wait (default 30)")
    parser.add_argument("--db-retry-for", type=float,
                        help="seconds to keep retrying a database that is down or restarting (default 300)")
    parser.add_argument("--max-failed", help="fail the job when more images than N, or P%%, cannot be scored")
    parser.add_argument("--album-from", default="parent")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="leave out these names or paths inside source folders (repeat for several)")
    parser.add_argument("--rescore", action="store_true")
    parser.add_argument("--dry-run", action="store_true",
                        help="count what the job would score and skip (JSON); nothing is written, no actor started")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--address", default="auto", help="Ray address (default: the cluster running this job)")
    parser.add_argument("--progress-every", type=float, default=60.0, metavar="SECONDS",
                        help="seconds between the job log's progress lines (default 60)")
    return parser.parse_args(argv)


def score_arguments(args: argparse.Namespace) -> list[str]:
    """The `eat-curate score` command line equivalent to the job's arguments."""
    command = ["score", *args.source, "--engine", "ray", "--ray-address", args.address, "--model", args.model,
               "--batch-size", str(args.batch_size), "--gpus-per-actor", str(args.gpus_per_actor),
               "--decode-cpus", str(args.decode_cpus), "--album-from", args.album_from,
               "--progress", "lines", "--progress-every", str(args.progress_every)]  # a log, not a terminal
    for flag, value in (("--models-dir", args.models_dir), ("--out", args.out), ("--db", args.db),
                        ("--actors", args.actors), ("--cpus-per-actor", args.cpus_per_actor), ("--limit", args.limit),
                        ("--max-bytes", args.max_bytes), ("--remote-tries", args.remote_tries),
                        ("--remote-timeout", args.remote_timeout), ("--db-retry-for", args.db_retry_for),
                        ("--max-failed", args.max_failed)):
        if value is not None:
            command += [flag, str(value)]
    for pattern in args.exclude:
        command += ["--exclude", pattern]
    if args.rescore:
        command.append("--rescore")
    if args.dry_run:
        command.append("--dry-run")
    return command + ["--json"]


def main(argv: list[str] | None = None) -> None:
    """Run the job; exits with the command's status (errors print as one line)."""
    cli.main(args=score_arguments(parse_args(argv)), prog_name="pipelines.score_job")


if __name__ == "__main__":
    main(sys.argv[1:])
