"""Commands that need no model start without torch, timm or Ray.

Each command runs in a fresh Python process, as a user's shell would start it,
and reports which of the heavy libraries it imported. Reading a database,
exporting a selection or listing runs needs none of them; `--help` neither.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "timm", "ray")

# Runs the real command line, then names the heavy modules the process imported.
DRIVER = f"""
import sys
from eat_curate.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="eat-curate")
    code = 0
except SystemExit as exit:
    code = exit.code
print("HEAVY:" + ",".join(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def heavy_imports_of(*arguments: str | Path) -> list[str]:
    """Run ``eat-curate ARGUMENTS`` in a new process; fail on a non-zero exit; the heavy modules it imported."""
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, arguments)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    marker = [line for line in result.stderr.splitlines() if line.startswith("HEAVY:")]
    return [name for name in marker[-1].removeprefix("HEAVY:").split(",") if name]


@pytest.fixture(scope="module")
def scored_db(library, micro_model_path, tmp_path_factory) -> Path:
    from read_library import score_into

    db = tmp_path_factory.mktemp("startup") / "photos.db"
    score_into(str(db), library.root, model_path=micro_model_path)
    return db


def test_help_imports_no_heavy_library():
    assert heavy_imports_of("--help") == []


@pytest.mark.parametrize(
    "command",
    [
        ["albums"],
        ["rank", "--top", "2"],
        ["filter", "--min-score", "1"],
        ["dupes"],
        ["runs"],
        ["export", "--to", "{tmp}/picks", "--dry-run"],
    ],
    ids=lambda command: command[0],
)
def test_read_commands_import_no_heavy_library(scored_db, tmp_path, command):
    arguments = [part.replace("{tmp}", str(tmp_path)) for part in command]
    assert heavy_imports_of(*arguments, "--db", scored_db) == []


def test_db_commands_import_no_heavy_library(tmp_path):
    assert heavy_imports_of("db", "init", "--db", tmp_path / "new.db") == []
    assert heavy_imports_of("db", "ddl", "--dialect", "postgresql") == []


def test_a_dry_run_and_a_refused_score_load_no_model(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    assert heavy_imports_of("score", photos, "--out", tmp_path / "s.parquet", "--dry-run") == []
    refused = subprocess.run([sys.executable, "-c", DRIVER, "score", str(photos)], capture_output=True, text=True)
    assert refused.returncode == 2 and "HEAVY:\n" in refused.stderr  # "say where scores go", before any import


def test_listing_and_describing_models_read_their_cards_only(tmp_path):
    assert heavy_imports_of("models", "list") == []
    assert heavy_imports_of("models", "info", "culling-nano") == []


def test_the_check_sees_torch_when_a_command_writes_a_model(tmp_path):
    # The checks above can fail: making a model's weights needs torch.
    made = heavy_imports_of("models", "init", "--preset", "nano", "--name", "x", "--models-dir", tmp_path)
    assert "torch" in made


def completions(*words: str) -> list[str]:
    """What bash completion offers for the last of ``words`` (click's ``type,value`` lines)."""
    env = {**os.environ, "COMP_WORDS": " ".join(["eat-curate", *words]), "COMP_CWORD": str(len(words)),
           "_EAT_CURATE_COMPLETE": "bash_complete"}
    done = subprocess.run([sys.executable, "-m", "eat_curate.cli"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_shell_completes_commands_options_and_the_scores_file():
    assert {"plain,rank", "plain,ratings"} <= set(completions("ra"))
    assert "plain,--top" in completions("rank", "--to")
    assert completions("rank", "sco") == ["file,sco"]  # bash lists the files: the scores to read
    script = subprocess.run([sys.executable, "-m", "eat_curate.cli"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "_EAT_CURATE_COMPLETE": "bash_source"}).stdout
    assert "complete -o nosort -F" in script and "eat-curate" in script
