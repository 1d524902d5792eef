"""`score` ends with an exit code a scheduler can act on, and --json says the same (eat_curate/exit_codes.py).

0 done (images that failed to decode are error rows, and fine), 2 refused
(fix the command), 3 more failures than --max-failed, 4 infrastructure (try
again later), 1 a bug. The other commands use the same codes.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import make_photo
from eat_curate import exit_codes
from eat_curate.benchmarks.read_parquet import write_synthetic_result
from eat_curate.cli import cli
from eat_curate.commands.options import Number
from eat_curate.runs import FailureLimit, RunSummary


@pytest.fixture
def score(micro_model_path):
    def invoke(*args):
        return CliRunner().invoke(cli, ["score", *map(str, args), "--model", str(micro_model_path), "--workers", "1"])

    return invoke


@pytest.fixture
def two_of_five_broken(tmp_path) -> Path:
    folder = tmp_path / "photos"
    for i in range(3):
        make_photo(folder / f"good{i}.jpg", size=(64, 48), seed=i)
    for name in ("broken0.jpg", "broken1.jpg"):
        (folder / name).write_bytes(b"not an image at all")
    return folder


def outcome(result) -> tuple[int, str]:
    return result.exit_code, json.loads(result.stdout)["outcome"]


def test_the_codes_are_distinct_and_score_help_lists_them_all(run):
    codes = [outcome.code for outcome in exit_codes.OUTCOMES]
    names = [outcome.name for outcome in exit_codes.OUTCOMES]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)

    help_text = " ".join(run("score", "--help").output.split())
    for listed in exit_codes.OUTCOMES:
        assert f"{listed.code} {' '.join(listed.meaning.split())}" in help_text


def test_every_command_exits_2_on_what_the_user_can_fix_and_1_only_on_a_bug(tmp_path, monkeypatch):
    refused = CliRunner().invoke(cli, ["rank", "--db", str(tmp_path / "typo.db")])
    assert refused.exit_code == exit_codes.REFUSED.code and "typo.db (no such file)" in refused.output

    def a_bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("eat_curate.samples.write_sample_photos", a_bug)
    crashed = CliRunner().invoke(cli, ["samples", str(tmp_path / "photos")])
    assert crashed.exit_code == exit_codes.ERROR.code
    assert "unexpected ZeroDivisionError" in crashed.output and "--debug" in crashed.output


def _float_options(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Option]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _float_options(command, f"{prefix}{name} ")
        for param in command.params:
            if isinstance(param.type, click.types.FloatParamType):
                yield f"{prefix}{name} {param.opts[0]}", param


def test_no_number_option_takes_nan_which_every_range_check_lets_through(tmp_path):
    options = dict(_float_options(cli))
    assert "filter --max-std" in options and "train --lr" in options and "score --cpus-per-actor" in options
    assert [name for name, option in options.items() if not isinstance(option.type, Number)] == []

    refused = CliRunner().invoke(cli, ["filter", str(tmp_path / "scores.parquet"), "--min-score", "nan"])
    assert refused.exit_code == exit_codes.REFUSED.code and "'nan' is not a number" in refused.output
    negative = CliRunner().invoke(cli, ["score", str(tmp_path), "--engine", "ray", "--cpus-per-actor", "-1"])
    assert negative.exit_code == exit_codes.REFUSED.code and "not in the range x>=0" in negative.output


def test_a_name_longer_than_the_file_system_takes_is_refused_wherever_it_is_given(tmp_path, monkeypatch):
    results = tmp_path / "scores.parquet"
    write_synthetic_result(results, rows=20, albums=2)
    too_long = "x" * 300
    monkeypatch.chdir(tmp_path)
    for command in (["filter", str(results), "--manifest", f"{too_long}.parquet"],
                    ["report", str(results), "--out", f"{too_long}.html"],
                    ["export", str(results), "--to", too_long],
                    ["score", str(tmp_path), "--out", f"{too_long}.parquet"]):
        refused = CliRunner().invoke(cli, command)
        assert refused.exit_code == exit_codes.REFUSED.code, (command, refused.output)
        assert "File name too long" in refused.output and "a bug" not in refused.output, refused.output


def test_a_disk_that_refuses_a_write_no_command_expected_is_infrastructure_not_a_bug(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("eat_curate.samples.write_sample_photos", full_disk)
    failed = CliRunner().invoke(cli, ["samples", str(tmp_path / "photos")])
    assert failed.exit_code == exit_codes.INFRASTRUCTURE.code
    assert "the disk refused a write" in failed.output and "a bug" not in failed.output


def test_a_reader_that_stops_reading_ends_the_command_quietly_as_sigpipe_would(tmp_path):
    result = write_synthetic_result(tmp_path / "scores.parquet", rows=20_000, albums=4)  # far more than a pipe holds
    command = [sys.executable, "-m", "eat_curate.cli", "filter", str(result), "--csv"]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline().startswith(b"model_id,album,rank")
    reader.stdout.close()  # `| head -1` has its line
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == exit_codes.PIPE_CLOSED.code
    assert "Error" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    whole = subprocess.run(command, capture_output=True, check=True)  # a reader that reads it all gets it all
    assert whole.stdout.count(b"\n") == 20_001


def test_a_broken_pipe_that_is_not_stdout_is_still_a_failure(tmp_path, monkeypatch):
    def a_socket_gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("eat_curate.samples.write_sample_photos", a_socket_gone)
    crashed = CliRunner().invoke(cli, ["samples", str(tmp_path / "photos")])
    assert crashed.exit_code == exit_codes.ERROR.code and "unexpected BrokenPipeError" in crashed.output


def test_ctrl_c_in_any_command_is_an_interruption_not_a_bug(tmp_path, monkeypatch):
    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("eat_curate.samples.write_sample_photos", pressed_ctrl_c)
    stopped = CliRunner().invoke(cli, ["samples", str(tmp_path / "photos")])
    assert stopped.exit_code == exit_codes.INTERRUPTED.code and stopped.output == "interrupted\n"


def test_images_that_fail_to_decode_are_rows_and_the_run_is_done(score, two_of_five_broken, tmp_path):
    result = score(two_of_five_broken, "--out", tmp_path / "scores.parquet", "--json")
    assert outcome(result) == (0, "done")
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["failed"], summary["exit_code"], summary["error"]) == (3, 2, 0, None)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("2", (0, "done")), ("1", (3, "too_many_failed")), ("40%", (0, "done")), ("39.5%", (3, "too_many_failed"))],
)
def test_max_failed_counts_images_or_a_share_of_those_scored(score, two_of_five_broken, tmp_path, limit, expected):
    result = score(two_of_five_broken, "--out", tmp_path / "scores.parquet", "--max-failed", limit, "--json")
    assert outcome(result) == expected
    assert len(json.loads(result.stdout)["run_id"]) > 0  # the run completed and was recorded either way


def test_too_many_failures_still_print_the_summary_then_one_line(score, two_of_five_broken, tmp_path):
    result = score(two_of_five_broken, "--out", tmp_path / "scores.parquet", "--max-failed", "1")
    assert result.exit_code == exit_codes.TOO_MANY_FAILED.code
    assert "ok 3, failed 2" in result.stdout
    assert "Error: 2 of 5 images failed, more than --max-failed 1" in result.stderr


@pytest.mark.parametrize("limit", ["many", "-1", "101%", "2.5"])
def test_a_malformed_max_failed_is_a_usage_error(score, two_of_five_broken, tmp_path, limit):
    result = score(two_of_five_broken, "--out", tmp_path / "scores.parquet", "--max-failed", limit)
    assert result.exit_code == exit_codes.REFUSED.code and "--max-failed" in result.output


def test_a_missing_source_is_refused_and_json_says_so(score, tmp_path):
    result = score(tmp_path / "nowhere", "--out", tmp_path / "scores.parquet", "--json")
    assert outcome(result) == (2, "refused")
    assert "nowhere" in json.loads(result.stdout)["error"]
    assert not (tmp_path / "scores.parquet").exists()


def test_a_database_unreachable_past_the_limit_is_an_infrastructure_failure(score, two_of_five_broken):
    started = time.monotonic()
    result = score(two_of_five_broken, "--db", "postgresql+psycopg://postgres@127.0.0.1:1/photos",
                   "--db-retry-for", "1.5", "--json")
    assert outcome(result) == (4, "infrastructure")
    assert time.monotonic() - started >= 1.5  # it waited for the database first
    error = json.loads(result.stdout)["error"]
    assert "Connection refused" in error and "limit 1.5 s" in error


@pytest.mark.parametrize(
    ("text", "summary", "exceeded"),
    [
        ("0", RunSummary(ok=10, failed=0), False),
        ("0", RunSummary(ok=10, failed=1), True),
        ("10%", RunSummary(ok=9, failed=1, skipped=90), False),  # skipped images are not the base
        ("10%", RunSummary(ok=8, failed=2), True),
        ("0%", RunSummary(), False),  # nothing scored: nothing failed
    ],
)
def test_a_failure_limit_is_a_count_or_a_share_of_the_images_scored(text, summary, exceeded):
    assert FailureLimit.parse(text).exceeded(summary) is exceeded
    assert str(FailureLimit.parse(text)) == text
