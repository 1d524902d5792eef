"""The README runs as written.

Every line of every ```bash block in README.md, and in the built-in model's
card (eat_curate/model/builtin/culling-nano/README.md), is a test here. The
commands run in document order in one temporary folder, as a reader following
the document would run them: the folder holds the files the README names
(small and generated, see STAND_INS), HOME and EAT_CURATE_HOME point into it
(so `~/picks` and the model store stay inside), and each command sees what
the commands above it left behind.

How each kind of line is run:

- ``eat-curate ...``: through click's CliRunner (``eat_curate.cli.cli``), the
  words split as a shell would (shlex, then ``~`` and ``$VARS`` expanded). It
  must exit 0. Only these lines get the SUBSTITUTIONS below.
- ``./scripts/*.sh``: they build a venv and install packages (minutes, and the
  network), so here they must exist, be executable and parse (``bash -n``);
  CI runs scripts/test.sh itself.
- ``python -m MODULE ...``: ``python -m MODULE --help`` exits 0 and lists
  every option the line gives (these are the recipe and the cluster job:
  hours of training, or a cluster).
- ``ray job submit ... -- ENTRYPOINT``: ``ray job submit --help`` lists the
  line's options, and the entrypoint is checked as above (no cluster here).
- ``kubectl apply -f FILE``: FILE exists and is a Kubernetes manifest.

Any other line fails: a README command that no test can check is a defect.

Selecting one command (``-k``) first runs the fast ``eat-curate`` lines above
it that have not run yet, so it finds what a reader would. Slow lines (training,
Ray, benchmarks) and PostgreSQL lines are never replayed that way: nothing
below them in the README depends on what they write.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = (REPO / "README.md", REPO / "eat_curate" / "model" / "builtin" / "culling-nano" / "README.md")

# What runs here instead of what the README says: whole words replaced in `eat-curate` lines, nothing else.
# (README words, the words run here, why)
SUBSTITUTIONS = (
    (
        ("--preset", "base"),
        ("--preset", "nano"),
        "the stand-in checkpoints are nano-sized: importing, scoring with and fine-tuning a base-sized EAT "
        "(88M parameters) takes minutes on 2 CPU cores",
    ),
    (
        ("--config", "ava"),
        ("--config", "ava", "--epochs", "2", "--explore-epochs", "1"),
        "the paper's recipe runs 20 epochs; 2 (one explore, one exploit) take the same path through the trainer",
    ),
    (
        ("--epochs", "5"),
        ("--epochs", "2"),
        "the fine-tune: a trained --init has no explore phase and the step schedule first decays after epoch 5, "
        "so 2 epochs take the same path as 5 (each trains, validates and checkpoints; the best is kept)",
    ),
    (
        ("postgresql+psycopg://me@db/photos",),
        ("{pg_url}",),
        "a fresh database on the test server (127.0.0.1:5432), dropped afterwards",
    ),
)

# The files the README names, as the `reader` fixture makes them.
STAND_INS = {
    "photos/": "`eat-curate samples photos --scenes 1`: 10 generated photos, albums hiking and holiday",
    "photo.jpg": "a copy of one of those photos",
    "manifest.parquet": "4 more photos in shoot/: a `path` column relative to the manifest and an `event` column",
    "eat_ava.pth": "a published EAT state dict: the published module's key names (eat_curate.model.reference), "
    "random weights, nano-sized (see SUBSTITUTIONS)",
    "dat_base_in1k_224.pth": "a DAT ImageNet checkpoint: {'model': state dict without ref_point14 and with a "
    "1000-class head}, random weights, nano-sized",
    "AVA.txt": "AVA's format (index, id, 10 vote counts, 2 tags, challenge) for 12 synthetic images in ava/images "
    "(tests/synthetic_aesthetics.py)",
    "test_ids.txt": "3 of those ids",
    "Pictures/": "the reader's own copies of the 14 photos above, each with a darktable-style sidecar "
    "(NAME.jpg.xmp) holding the stars they gave it; `eat-curate ratings` makes my_picks.csv from them",
}

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@dataclass(frozen=True)
class Command:
    document: Path
    line: int
    words: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"

    @property
    def text(self) -> str:
        return shlex.join(self.words)

    @property
    def is_eat_curate(self) -> bool:
        return self.words[0] == "eat-curate"

    def option(self, name: str) -> str | None:
        return self.words[self.words.index(name) + 1] if name in self.words[:-1] else None

    @property
    def uses_ray(self) -> bool:
        return self.is_eat_curate and self.option("--engine") == "ray"

    @property
    def is_slow(self) -> bool:
        """Training, Ray and benchmarks: tens of seconds each on 2 cores."""
        if not self.is_eat_curate:
            return False
        return self.uses_ray or self.words[1] == "train" or (self.words[1] == "bench" and "--help" not in self.words)

    @property
    def needs_postgres(self) -> bool:
        return self.is_eat_curate and (
            any(word.startswith("postgresql") for word in self.words) or self.words[1:3] == ("bench", "sinks")
        )


def bash_commands(document: Path) -> list[Command]:
    """The command lines of the document's ```bash blocks (comments dropped, `\\` continuations joined)."""
    commands: list[Command] = []
    language: str | None = None  # None: outside a fence
    pending, start = "", 0
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence:
            language = fence.group(1) if language is None else None
            continue
        if language != "bash":
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            commands.append(Command(document, start, tuple(words)))
    return commands


COMMANDS = [command for document in DOCUMENTS for command in bash_commands(document)]


def substituted(words: tuple[str, ...]) -> list[str]:
    """The words with every SUBSTITUTIONS entry applied (whole words, left to right)."""
    result = list(words)
    for old, new, _why in SUBSTITUTIONS:
        i = 0
        while i <= len(result) - len(old):
            if tuple(result[i : i + len(old)]) == old:
                result[i : i + len(old)] = new
                i += len(new)
            else:
                i += 1
    return result


def shell_expanded(word: str) -> str:
    """What a shell makes of a word: ``~`` and ``$VARS`` expanded (from the reader's environment)."""
    return os.path.expandvars(os.path.expanduser(word))


@dataclass
class Outcome:
    ok: bool
    report: str  # what to show when it failed


@dataclass
class Reader:
    """Someone following the documents in ``folder``: runs their commands, remembers each outcome."""

    folder: Path
    outcomes: dict[Command, Outcome] = field(default_factory=dict)

    def follow_up_to(self, command: Command, values: dict[str, str]) -> Outcome:
        if command.is_eat_curate:
            for earlier in COMMANDS[: COMMANDS.index(command)]:
                if (
                    earlier.document == command.document
                    and earlier.is_eat_curate
                    and not (earlier.is_slow or earlier.needs_postgres)
                    and earlier not in self.outcomes
                ):
                    self.outcomes[earlier] = self.run(earlier, {})
        if command not in self.outcomes:
            self.outcomes[command] = self.run(command, values)
        return self.outcomes[command]

    def run(self, command: Command, values: dict[str, str]) -> Outcome:
        if command.is_eat_curate:
            words = [shell_expanded(values.get(word, word)) for word in substituted(command.words)]
            return run_eat_curate(words[1:])
        words = [shell_expanded(word) for word in command.words]
        if words[0].startswith("./scripts/"):
            return check_script(REPO / words[0])
        if words[:2] == ["python", "-m"]:
            return check_module_entrypoint(words)
        if words[:3] == ["ray", "job", "submit"]:
            return check_ray_job_submit(words)
        if words[:3] == ["kubectl", "apply", "-f"]:
            return check_kubernetes_manifest(REPO / words[3])
        return Outcome(False, "no check for this kind of command: teach tests/test_readme.py to run it")


def run_eat_curate(args: list[str]) -> Outcome:
    from click.testing import CliRunner

    from eat_curate.cli import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    stop_ray_left_running()  # a command's own process would take its Ray down on exit
    report = f"exit code {result.exit_code}\n{result.output[-4000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        report += "\n" + "".join(traceback.format_exception(*result.exc_info))[-4000:]
    return Outcome(result.exit_code == 0, report)


def stop_ray_left_running() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def check_script(path: Path) -> Outcome:
    if not path.is_file():
        return Outcome(False, f"{path} does not exist")
    if not os.access(path, os.X_OK):
        return Outcome(False, f"{path} is not executable")
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    return Outcome(syntax.returncode == 0, syntax.stderr)


def check_options_listed(help_command: list[str], options: list[str]) -> Outcome:
    """``help_command`` exits 0 and its output names each of ``options``."""
    shown = subprocess.run(help_command, cwd=REPO, capture_output=True, text=True, timeout=300)
    if shown.returncode != 0:
        return Outcome(False, f"{shlex.join(help_command)} exited {shown.returncode}\n{shown.stderr[-4000:]}")
    missing = [
        name for name in options if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown.stdout)
    ]
    return Outcome(not missing, f"{shlex.join(help_command)} does not list {', '.join(missing)}\n{shown.stdout}")


def options_of(words: list[str]) -> list[str]:
    return [word.split("=")[0] for word in words if word.startswith("--") and word not in ("--", "--help")]


def check_module_entrypoint(words: list[str]) -> Outcome:
    return check_options_listed([sys.executable, "-m", words[2], "--help"], options_of(words[3:]))


def check_ray_job_submit(words: list[str]) -> Outcome:
    if "--" not in words:
        return Outcome(False, "ray job submit without `--` before its entrypoint")
    split = words.index("--")
    ray_cli = Path(sys.executable).parent / "ray"
    submit = check_options_listed([str(ray_cli), "job", "submit", "--help"], options_of(words[3:split]))
    if not submit.ok:
        return submit
    entrypoint = words[split + 1 :]
    if entrypoint[:2] != ["python", "-m"]:
        return Outcome(False, f"no check for the entrypoint {shlex.join(entrypoint)}")
    return check_module_entrypoint(entrypoint)


def check_kubernetes_manifest(path: Path) -> Outcome:
    import yaml

    if not path.is_file():
        return Outcome(False, f"{path} does not exist")
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    malformed = [doc for doc in documents if not {"apiVersion", "kind"} <= set(doc)]
    return Outcome(bool(documents) and not malformed, f"{path}: not a Kubernetes manifest (apiVersion and kind)")


# --- the reader's folder ------------------------------------------------------------------------------------------


def write_published_eat(path: Path, preset_name: str) -> None:
    """A checkpoint as the EAT authors publish theirs: a plain state dict of their module's names."""
    import torch

    from eat_curate.model.reference import PublishedEAT

    torch.manual_seed(0)
    torch.save(PublishedEAT(preset_name).state_dict(), path)


def write_dat_imagenet(path: Path, preset_name: str) -> None:
    """A checkpoint as DAT publishes its ImageNet weights: {'model': ...}, no interest points, 1000 classes."""
    import torch

    from eat_curate.model.presets import PRESETS
    from eat_curate.model.reference import PublishedEAT

    torch.manual_seed(1)
    state = {k: v for k, v in PublishedEAT(preset_name).state_dict().items() if "ref_point14" not in k}
    width = PRESETS[preset_name].dims[3]
    state["cls_head.weight"], state["cls_head.bias"] = torch.randn(1000, width) * 0.02, torch.zeros(1000)
    torch.save({"model": state, "epoch": torch.tensor(300)}, path)


def write_ava(folder: Path, count: int) -> list[str]:
    """AVA.txt and ava/images/<id>.jpg for ``count`` synthetic images; returns the ids."""
    from synthetic_aesthetics import generate

    items = generate(folder / "ava", count, seed=1)
    ids = [item.file.removesuffix(".jpg") for item in items]
    with open(folder / "AVA.txt", "w", encoding="utf-8") as handle:
        for index, (image_id, item) in enumerate(zip(ids, items), start=1):
            handle.write(" ".join(map(str, [index, image_id, *item.votes, 0, 0, 1])) + "\n")
    return ids


def stars_for(path: Path) -> int:
    """The reader's own rating of a sample photo: the sharp ones best."""
    for word, stars in (("sharp", 5), ("tilted", 3), ("noisy", 3), ("dark", 2), ("blurred", 1)):
        if word in path.name:
            return stars
    return 4


def furnish(folder: Path) -> None:
    """The files the README names (STAND_INS), in ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import make_photo

    from eat_curate.library.xmp import XMP, XmpPacket

    samples = run_eat_curate(["samples", "photos", "--scenes", "1"])
    assert samples.ok, samples.report
    shutil.copy(folder / "photos" / "holiday" / "scene1_sharp.jpg", folder / "photo.jpg")
    shoot = [make_photo(folder / "shoot" / f"dsc_{i:04d}.jpg", seed=20 + i, quality=90) for i in range(4)]
    pq.write_table(
        pa.table({"path": [f"shoot/{p.name}" for p in shoot], "event": ["wedding", "wedding", "party", "party"]}),
        folder / "manifest.parquet",
    )
    write_published_eat(folder / "eat_ava.pth", "nano")
    write_dat_imagenet(folder / "dat_base_in1k_224.pth", "nano")
    ids = write_ava(folder, 12)  # the fewest a 90/5/5 split leaves a validation image of: 11
    (folder / "test_ids.txt").write_text("\n".join(ids[-3:]) + "\n", encoding="utf-8")
    for photo in sorted((folder / "photos").rglob("*.jpg")) + shoot:
        copy = folder / "Pictures" / photo.relative_to(folder)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, copy)
        rated = XmpPacket()
        rated.set(XMP, "Rating", str(stars_for(photo)))
        copy.with_name(copy.name + ".xmp").write_bytes(rated.to_bytes())


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("reader")
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    carry_ray_token_into(folder)
    with pytest.MonkeyPatch.context() as env:
        env.chdir(folder)
        for name, value in {
            "HOME": str(folder),
            "PWD": str(folder),
            "EAT_CURATE_HOME": str(folder / ".eat-curate"),
            "RAY_TMPDIR": ray_tmp,
            **RAY_ENV,
        }.items():
            env.setenv(name, value)
        env.delenv("RAY_ADDRESS", raising=False)
        furnish(folder)
        yield Reader(folder)
        stop_ray_left_running()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def carry_ray_token_into(home: Path) -> None:
    """Give the README's home the Ray token this process already uses, if any.

    A local ``ray.init()`` turns token authentication on for the whole process
    (RAY_AUTH_MODE=token) and keeps the token it made under ``~/.ray``; the Ray
    processes started later look for it under $HOME. Without this, a local Ray
    started after an earlier test's (with HOME moved here) has a GCS that
    exits at once and ``ray.init`` times out waiting for it.
    """
    token = Path.home() / ".ray" / "auth_token"
    if token.is_file():
        (home / ".ray").mkdir(exist_ok=True)
        shutil.copy2(token, home / ".ray" / "auth_token")


def as_param(command: Command):
    marks = []
    if command.is_slow:
        marks.append(pytest.mark.slow)
    if command.uses_ray:
        marks.append(pytest.mark.ray)
    if command.needs_postgres:
        marks.append(pytest.mark.postgres)
    document = "README" if command.document == DOCUMENTS[0] else "card"
    return pytest.param(command, marks=marks, id=f"{document}:{command.line} {command.text[:70]}")


# --- the tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [as_param(command) for command in COMMANDS])
def test_the_command_runs_as_written(command: Command, reader: Reader, request: pytest.FixtureRequest) -> None:
    values = {}
    if command.is_eat_curate and "{pg_url}" in substituted(command.words):
        values["{pg_url}"] = request.getfixturevalue("pg_url")
    outcome = reader.follow_up_to(command, values)
    if not outcome.ok:
        pytest.fail(f"{command.where}: `{command.text}` failed:\n{outcome.report}", pytrace=False)


def test_the_documents_have_commands_in_every_bash_block() -> None:
    readme = [command for command in COMMANDS if command.document == DOCUMENTS[0]]
    assert {"./scripts/quickstart.sh", "./scripts/test.sh"} <= {command.words[0] for command in readme}
    verbs = {command.words[1] for command in readme if command.is_eat_curate}
    assert {"score", "albums", "rank", "export", "models", "train", "evaluate", "bench"} <= verbs
    assert any(command.document == DOCUMENTS[1] for command in COMMANDS)  # the recipe's command, in the card


def test_every_substitution_and_stand_in_is_used() -> None:
    """A substitution that matches nothing, or a stand-in the README no longer names, is out of date."""
    for old, _new, _why in SUBSTITUTIONS:
        assert any(c.is_eat_curate and _contains(c.words, old) for c in COMMANDS), old
    readme = DOCUMENTS[0].read_text(encoding="utf-8")
    for name in STAND_INS:
        assert name.rstrip("/") in readme, name


def _contains(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


def test_a_failing_command_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself can fail: a command that exits non-zero is reported with its output."""
    monkeypatch.chdir(tmp_path)
    outcome = run_eat_curate(["albums", "--db", "missing.db"])
    assert not outcome.ok and "exit code" in outcome.report
    assert not Reader(tmp_path).run(Command(DOCUMENTS[0], 0, ("rm", "-rf", "photos")), {}).ok


def test_the_readme_is_short() -> None:
    """For people who use the tool: 250 lines at most (the lab notebook lives in training/recipes/README.md)."""
    assert len(DOCUMENTS[0].read_text(encoding="utf-8").splitlines()) <= 250
