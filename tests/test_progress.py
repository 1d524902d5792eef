"""How a scoring run shows its progress: a bar on a terminal, a line every so often in a log."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.scoring.progress import BarProgress, LineProgress, Progress, progress_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scored(ok: int, failed: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(ok=True)] * ok + [SimpleNamespace(ok=False)] * failed


def test_a_log_gets_a_line_every_interval_with_the_counts_and_the_rate_since_the_last_line(capsys):
    clock = FakeClock()
    progress = LineProgress(every_s=30, clock=clock)

    progress.skip(500)  # already scored: counted, but not in the rate
    progress.advance(scored(90, failed=10))
    clock.now += 29
    progress.advance(scored(100))
    assert capsys.readouterr().err == ""  # not due yet

    clock.now += 1
    progress.note(actors=4)
    progress.advance(scored(100))
    clock.now += 45
    progress.advance(scored(450))

    assert capsys.readouterr().err.splitlines() == [
        "scoring: 800 images in 0:00:30 (ok 290, failed 10, skipped 500, actors 4); 10.0 img/s over the last 30 s",
        "scoring: 1,250 images in 0:01:15 (ok 740, failed 10, skipped 500, actors 4); 10.0 img/s over the last 45 s",
    ]


def test_the_first_rate_leaves_out_the_start_before_the_first_report(capsys):
    clock = FakeClock()
    progress = LineProgress(every_s=30, clock=clock)
    clock.now += 20  # the model loads
    progress.advance(scored(100))
    clock.now += 30
    progress.advance(scored(300))

    assert capsys.readouterr().err.splitlines() == [
        "scoring: 400 images in 0:00:50 (ok 400, failed 0, skipped 0); 10.0 img/s over the last 30 s",
    ]


def test_a_first_report_that_comes_late_gets_its_line_with_the_rate_since_the_start(capsys):
    clock = FakeClock()
    progress = LineProgress(every_s=30, clock=clock)
    clock.now += 40  # a slow start: the first batch arrives after the first line is due
    progress.advance(scored(80))

    assert capsys.readouterr().err.splitlines() == [
        "scoring: 80 images in 0:00:40 (ok 80, failed 0, skipped 0); 2.0 img/s over the last 40 s",
    ]


def test_a_run_shorter_than_the_interval_prints_no_line_its_summary_says_it_all(capsys):
    clock = FakeClock()
    progress = LineProgress(every_s=30, clock=clock)
    for _ in range(10):
        clock.now += 2.9
        progress.advance(scored(8))
    progress.close()
    assert capsys.readouterr().err == ""
    assert (progress.ok, progress.failed) == (80, 0)


def test_waits_print_as_they_come_and_the_end_of_a_wait_once(capsys):
    progress = LineProgress(every_s=30, clock=FakeClock())
    progress.waiting(None)  # a call that needed no retry says nothing
    progress.waiting("postgresql: connection refused; retrying in 1.0 s (0 s of 300 s)")
    progress.waiting("postgresql: connection refused; retrying in 2.0 s (1 s of 300 s)")
    progress.waiting(None)
    progress.waiting(None)

    assert capsys.readouterr().err.splitlines() == [
        "scoring: postgresql: connection refused; retrying in 1.0 s (0 s of 300 s)",
        "scoring: postgresql: connection refused; retrying in 2.0 s (1 s of 300 s)",
        "scoring: going on",
    ]


class Stderr(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(("terminal", "kind"), [(True, BarProgress), (False, LineProgress)])
def test_auto_is_a_bar_on_a_terminal_and_lines_in_a_log(monkeypatch, terminal, kind):
    monkeypatch.setattr("sys.stderr", Stderr(terminal))
    assert type(progress_for("auto")) is kind


def test_each_mode_can_be_asked_for_and_lines_take_their_interval():
    assert type(progress_for("bar")) is BarProgress
    assert type(progress_for("none")) is Progress
    assert progress_for("lines", every_s=5).every_s == 5
    with pytest.raises(ValueError, match="unknown progress mode 'dots'"):
        progress_for("dots")
    with pytest.raises(ValueError, match="above 0"):
        LineProgress(every_s=0)


def test_score_writes_progress_lines_not_bar_redraws_into_a_log(micro_model_path, photo_folder, tmp_path):
    def score(*options: str):
        result = CliRunner().invoke(cli, ["score", str(photo_folder), "--out", str(tmp_path / f"{len(options)}.parquet"),
                                          "--model", str(micro_model_path), "--batch-size", "1", *options])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    # CliRunner's stderr is not a terminal: auto gives lines, and this run is shorter than 30 s.
    assert "\r" not in score().stderr
    every_batch = score("--progress", "lines", "--progress-every", "0.000001").stderr
    lines = [line for line in every_batch.splitlines() if line.startswith("scoring: ")]
    assert len(lines) >= 2 and "\r" not in every_batch  # a line per report of the engine, here
    assert lines[-1].startswith("scoring: 5 images in 0:00:0") and "(ok 5, failed 0, skipped 0)" in lines[-1]
    assert "scoring:" not in score("--progress", "lines", "--progress-every", "0.000001", "--json").stdout


def test_score_takes_no_progress_like_the_other_commands(micro_model_path, photo_folder, tmp_path):
    def score(*options: str):
        return CliRunner().invoke(cli, ["score", str(photo_folder), "--out", str(tmp_path / "s.parquet"), "--rescore",
                                        "--model", str(micro_model_path), "--batch-size", "1", *options])

    every_batch = ("--progress-every", "0.000001")
    assert "scoring: " in score("--progress", "lines", *every_batch).stderr  # the check below can fail
    quiet = score("--no-progress", *every_batch)
    assert quiet.exit_code == 0 and "scoring: " not in quiet.stderr and "scored 5 images" in quiet.stdout
    contradiction = score("--no-progress", "--progress", "lines")
    assert contradiction.exit_code == 2 and "--no-progress and --progress lines say opposite things" in contradiction.output


@pytest.mark.parametrize(("terminal", "no_progress", "bars"), [(True, False, True), (True, True, False),
                                                               (False, False, False), (False, True, False)])
def test_train_and_evaluate_draw_bars_only_on_a_terminal(monkeypatch, terminal, no_progress, bars):
    from eat_curate.commands.options import bars_wanted

    monkeypatch.setattr("sys.stderr", Stderr(terminal))
    assert bars_wanted(no_progress) is bars  # their epoch and result lines print either way
