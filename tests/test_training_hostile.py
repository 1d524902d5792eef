"""`eat-curate train` and `evaluate` on the mistakes real users make: one clear line, or a run that goes on.

Each test does one careless or hostile thing through the command line and checks the answer: a refusal
is one line and exit 2 (4 for a full or read-only disk, 130 for Ctrl-C), given before any training where
the problem can be seen up front; a broken image is left out and counted, never a crash at the end.

- label files: ``/dev/null``, a FIFO or a folder given as one; one that is empty or holds only a header;
- label tables: images missing, empty, a folder or a FIFO; one file named twice with two labels, labels that are all equal, too few rows for a
  validation image, images named by URL, a folder of nothing usable, images that never decode;
- the model's name: ``..`` or ``a/b`` (which named the run folder before anything checked them);
- where it is written: a read-only model store, a disk that fills up while checkpointing, a folder where
  the run folder's checkpoint (or another of its files) belongs;
- resuming: from a damaged checkpoint, a folder or a dangling link in its place, one of another preset's
  model, or after the labels changed;
- Ctrl-C at any point (reading the labels, resuming, in an epoch, writing the checkpoint, after the model
  was saved): what the message says is kept, the exact command that goes on, and that it does;
- ``evaluate`` on a label table whose images are all broken.

Runs are tiny: the pico preset, a few synthetic images, one CPU thread, one or two epochs.
"""

from __future__ import annotations

import csv
import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.model.model_store import ModelStore
from bounded_call import fifo_unblocker
from small_disk import mounted_tmpfs, remount

IMAGES = 12  # enough for a 2-image validation split at --val-fraction 0.2


def eat_curate(*args: object) -> tuple[int, str]:
    """``eat-curate ARGS``: its exit code and everything it printed; an exception that escaped is a bug."""
    result = CliRunner().invoke(cli, [str(arg) for arg in args], prog_name="eat-curate")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def error_line(output: str) -> str:
    """The one line of a refusal (progress lines on stdout may come before or after it)."""
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    return line


@pytest.fixture
def photos(synthetic_set: Path, tmp_path: Path) -> Path:
    """A folder of our own: ``images/`` (copies of a few synthetic photos) and ``labels.csv`` (path, score)."""
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    with open(synthetic_set / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:IMAGES]
    for row in rows:
        shutil.copy(synthetic_set / "images" / row["path"], folder / "images" / row["path"])
    write_labels(folder / "labels.csv", [(row["path"], f"{float(row['true_score']):.2f}") for row in rows])
    return folder


def write_labels(path: Path, rows: list[tuple[str, object]]) -> Path:
    path.write_text("path,score\n" + "".join(f"{name},{score}\n" for name, score in rows))
    return path


def train(photos: Path, store: ModelStore, name: str, *extra: object, labels: str = "labels.csv") -> tuple[int, str]:
    return eat_curate(
        "train", "--data", photos / labels, "--images", photos / "images", "--init", "pico", "--name", name,
        "--epochs", 2, "--explore-epochs", 1, "--lr", "1e-3", "--val-fraction", "0.2", "--threads", 1,
        "--loader-workers", 0, "--models-dir", store.root, "--no-progress", *extra,
    )  # fmt: skip


# --- label files ----------------------------------------------------------------------------------------

EXPECTED_LABEL_FILE = "expected a label file: a CSV or Parquet table, or AVA's AVA.txt (see --format)"


def make_fifo(folder: Path) -> Path:
    os.mkfifo(folder / "labels.csv")  # as `--data <(...)` gives: opening it waits for a writer
    return folder / "labels.csv"


def make_folder(folder: Path) -> Path:
    (folder / "labels.csv").mkdir()
    return folder / "labels.csv"


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda folder: Path("/dev/null"), "is not a regular file (character device)"),
        (make_fifo, "is not a regular file (FIFO)"),
        (make_folder, "is a folder, not a file"),
    ],
    ids=["/dev/null", "a FIFO", "a folder"],
)
def test_a_label_file_that_is_no_file_says_what_it_is_and_what_is_expected(
    photos: Path, pico_store: ModelStore, tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    given = make(tmp_path)

    with fifo_unblocker([tmp_path / "labels.csv"]) as guard:
        code, output = eat_curate(
            "train", "--data", given, "--images", photos / "images", "--init", "pico", "--name", "nofile",
            "--models-dir", pico_store.root, "--no-progress",
        )  # fmt: skip

    assert not guard.unblocked  # refused from its type, never opened
    assert code == 2  # was "label file /dev/null does not exist"; a folder: click's "File '...' is a directory."
    assert output == f"Error: label file {given} {reason}; {EXPECTED_LABEL_FILE}\n"


def test_an_id_list_that_is_no_file_says_what_it_is_and_what_is_expected(
    photos: Path, pico_store: ModelStore
) -> None:
    code, output = train(photos, pico_store, "noids", "--train-ids", "/dev/null")

    assert code == 2  # was "id list /dev/null does not exist"
    assert error_line(output) == (
        "Error: id list /dev/null is not a regular file (character device); expected a file of one image id per "
        "line, or a CSV whose first column holds them"
    )


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("AVA.txt", "", "a line per image: index, image id, 10 vote counts, 2 tags, challenge id"),
        ("AVA.txt", "\r\n \r\n", "a line per image: index, image id, 10 vote counts, 2 tags, challenge id"),
        (
            "header-only.csv",
            "\ufeffpath,score\r\n",  # as Excel saves a table of no rows
            "a header line naming the columns (path, and votes_1..votes_10, score or rating), then a line per image",
        ),
    ],
    ids=["empty AVA.txt", "blank AVA.txt", "a header only"],
)
def test_a_label_file_of_no_labels_says_what_it_should_hold(
    photos: Path, pico_store: ModelStore, name: str, content: str, expected: str
) -> None:
    (photos / name).write_text(content, newline="")

    code, output = train(photos, pico_store, "nolabels", labels=name)

    assert code == 2  # was "... holds no labelled images", and no more
    assert error_line(output) == f"Error: {photos / name} holds no labelled images; expected {expected}"


# --- label tables ---------------------------------------------------------------------------------------


def test_images_missing_empty_a_folder_or_a_fifo_are_left_out_and_training_goes_on(
    photos: Path, pico_store: ModelStore
) -> None:
    images = photos / "images"
    (images / "empty.jpg").write_bytes(b"")
    (images / "folder.jpg").mkdir()
    os.mkfifo(images / "pipe.jpg")  # opening it would block the loader for ever
    rows = [line.split(",") for line in (photos / "labels.csv").read_text().splitlines()[1:]]
    broken = [(name, 5) for name in ("missing.jpg", "empty.jpg", "folder.jpg", "pipe.jpg")]
    write_labels(photos / "labels.csv", [*rows, *broken])

    code, output = train(photos, pico_store, "goes-on")

    assert code == 0, output
    assert f"data: {IMAGES + 4} labelled, left out: 1 empty, 1 missing, 2 unreadable;" in output


def test_one_image_named_twice_with_two_scores_is_refused_naming_both(photos: Path, pico_store: ModelStore) -> None:
    rows = [line.split(",") for line in (photos / "labels.csv").read_text().splitlines()[1:]]
    write_labels(photos / "twice.csv", [*rows, (f"./{rows[0][0]}", "9.5")])

    code, output = train(photos, pico_store, "twice", labels="twice.csv")

    assert code == 2
    assert error_line(output).endswith(
        f"'{rows[0][0]}' and './{rows[0][0]}' are the same image ({photos / 'images' / rows[0][0]}), "
        f"labelled score {float(rows[0][1]):g} and score 9.5; label each image once"
    )
    assert "twice" not in pico_store.names()


def test_one_image_named_twice_with_the_same_score_is_kept_once_and_counted(
    photos: Path, pico_store: ModelStore
) -> None:
    rows = [line.split(",") for line in (photos / "labels.csv").read_text().splitlines()[1:]]
    write_labels(photos / "twice.csv", [*rows, (f"./{rows[0][0]}", rows[0][1])])

    code, output = train(photos, pico_store, "once", labels="twice.csv")

    assert code == 0, output
    assert f"data: {IMAGES + 1} labelled, left out: 1 duplicate;" in output


def test_labels_that_are_all_equal_are_refused_before_training(photos: Path, pico_store: ModelStore) -> None:
    names = [path.name for path in sorted((photos / "images").iterdir())]
    write_labels(photos / "fives.csv", [(name, 5) for name in names])

    code, output = train(photos, pico_store, "fives", labels="fives.csv")

    assert code == 2
    assert error_line(output) == (
        f"Error: all {IMAGES} usable images have the same label (mean score 5): there is nothing to learn "
        "from; the labels must tell better images from worse"
    )
    assert not (pico_store.root.parent / "training" / "fives").exists()


def test_a_few_rows_still_hold_one_image_out_for_validation(photos: Path, pico_store: ModelStore) -> None:
    names = [path.name for path in sorted((photos / "images").iterdir())][:3]
    write_labels(photos / "three.csv", [(name, score) for name, score in zip(names, (3, 6, 8))])

    code, output = eat_curate(*train_args_without_val_fraction(photos, pico_store, "three", "three.csv"))

    assert code == 0, output  # was: "too few usable images to train: {'train': 3, 'val': 0, 'test': 0}"
    assert pico_store.card("three").extra["split_sizes"] == {"train": 2, "val": 1, "test": 0}
    assert "warning: the validation split has 1 image" in output


def train_args_without_val_fraction(photos: Path, store: ModelStore, name: str, labels: str) -> list:
    return [
        "train", "--data", photos / labels, "--images", photos / "images", "--init", "pico", "--name", name,
        "--epochs", 2, "--explore-epochs", 1, "--threads", 1, "--loader-workers", 0, "--models-dir", store.root,
        "--no-progress",
    ]  # fmt: skip


def test_a_single_row_is_refused_saying_what_a_run_needs(photos: Path, pico_store: ModelStore) -> None:
    write_labels(photos / "one.csv", [(sorted((photos / "images").iterdir())[0].name, 7)])

    code, output = train(photos, pico_store, "one", labels="one.csv")

    assert code == 2
    assert error_line(output) == (
        "Error: too few usable images to train: {'train': 1, 'val': 0, 'test': 0} after leaving out none; "
        "at least one each to train on and to validate on is needed, 10 or more to validate on to pick the "
        "best epoch"
    )


def test_images_named_by_url_are_refused_at_their_line(photos: Path, pico_store: ModelStore) -> None:
    write_labels(photos / "web.csv", [("https://example.com/a.jpg", 4), ("https://example.com/b.jpg", 8)])

    code, output = train(photos, pico_store, "web", labels="web.csv")

    assert code == 2
    assert error_line(output) == (
        f"Error: {photos / 'web.csv'}:2: image 'https://example.com/a.jpg' is a URL; training reads local "
        "files: download the images, then name them by their path relative to --images"
    )


def test_a_folder_of_nothing_usable_says_where_the_names_were_looked_for(
    photos: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    (elsewhere / "readme.txt").write_text("no photos here")

    code, output = eat_curate(
        "train", "--data", photos / "labels.csv", "--images", elsewhere, "--init", "pico", "--name", "nothing",
        "--models-dir", pico_store.root, "--no-progress",
    )  # fmt: skip

    assert code == 2
    assert error_line(output) == (
        f"Error: not one of the {IMAGES} labelled images of {photos / 'labels.csv'} is usable (left out: "
        f"{{'missing': {IMAGES}}}); their names are read relative to --images, now {elsewhere}"
    )


def test_images_that_never_decode_stop_after_the_first_epoch_not_the_last(
    photos: Path, pico_store: ModelStore
) -> None:
    for image in (photos / "images").iterdir():  # a good header, then nothing: a copy cut short
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 3])

    code, output = train(photos, pico_store, "cut", "--epochs", 3)

    assert code == 2
    assert error_line(output) == (
        "Error: not one training image could be decoded in epoch 1 (9 failed): the files are damaged or "
        "in a format eat-curate cannot read"
    )
    assert "cut" not in pico_store.names()


def test_evaluate_on_images_that_are_all_broken_is_one_line(photos: Path, pico_store: ModelStore) -> None:
    for image in (photos / "images").iterdir():
        image.write_bytes(b"not a photo")

    code, output = eat_curate(
        "evaluate", "--model", "pico", "--data", photos / "labels.csv", "--images", photos / "images",
        "--loader-workers", 0, "--models-dir", pico_store.root, "--no-progress",
    )  # fmt: skip

    assert code == 2
    assert error_line(output) == f"Error: no usable image in {photos / 'labels.csv'}: {{'not-an-image': {IMAGES}}}"


# --- the model's name and where things are written ------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "a/b", "x" * 300])
def test_a_name_the_store_cannot_take_is_refused_before_any_run_folder_is_made(
    photos: Path, pico_store: ModelStore, name: str
) -> None:
    code, output = train(photos, pico_store, name)

    assert code == 2
    assert error_line(output).startswith("Error: invalid model name") and "use 1-64 letters, digits" in output
    # ".." named the run folder <models>/../training/.. before: checkpoints beside the model store
    assert not (pico_store.root.parent / "last.pt").exists()
    assert not (pico_store.root.parent / "training").exists()


def test_the_name_of_a_built_in_model_is_refused_before_training(photos: Path, pico_store: ModelStore) -> None:
    # Saved under it, the trained model would shadow the built-in one that `score` uses without --model.
    code, output = train(photos, pico_store, "culling-nano")

    assert code == 2 and "is the name of a model built into the package" in error_line(output)
    assert not (pico_store.root.parent / "training").exists()


def test_a_read_only_model_store_is_refused_before_training(
    photos: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    with mounted_tmpfs(tmp_path / "disk", "8m") as disk:
        shutil.copytree(pico_store.root, disk / "models")
        remount(disk, "ro")

        code, output = eat_curate(*train_args_with_store(photos, disk / "models", "readonly", tmp_path / "run"))

        remount(disk, "rw")
    assert code == 4
    assert error_line(output) == f"Error: cannot write the model store {disk / 'models'}: Read-only file system"
    assert not (tmp_path / "run").exists()  # refused before the first epoch, not after the last


def train_args_with_store(photos: Path, models: Path, name: str, run_dir: Path) -> list:
    return [
        "train", "--data", photos / "labels.csv", "--images", photos / "images", "--init", "pico",
        "--name", name, "--epochs", 2, "--explore-epochs", 1, "--val-fraction", "0.2", "--threads", 1,
        "--loader-workers", 0, "--models-dir", models, "--checkpoint-dir", run_dir, "--no-progress",
    ]  # fmt: skip


def test_a_disk_that_fills_up_while_checkpointing_is_exit_4_and_leaves_no_partial_file(
    photos: Path, pico_store: ModelStore, tmp_path: Path
) -> None:
    with mounted_tmpfs(tmp_path / "disk", "4m") as disk:  # a pico checkpoint takes about 7 MB
        code, output = train(photos, pico_store, "full", "--checkpoint-dir", disk / "run")
        left = sorted(path.name for path in (disk / "run").iterdir())

    assert code == 4  # was 1: "unexpected RuntimeError: [enforce fail at inline_container.cc ...]"
    assert error_line(output) == (
        f"Error: the disk refused a write: [Errno 28] No space left on device: '{disk / 'run' / 'last.pt'}'"
    )
    assert left == ["metrics.csv"]  # no .last.pt.tmp taking the space a retry needs


@pytest.mark.parametrize(
    "name, what, resume",
    [
        ("last.pt", "keeps its checkpoint", False),
        ("last.pt", "keeps its checkpoint", True),  # was "cannot resume: .../last.pt does not exist"
        ("best.safetensors", "keeps its best weights", False),
        ("best.next.safetensors", "keeps its new best weights", False),  # a new best's, until it is checkpointed
        ("summary.json", "keeps its summary", False),  # written after the model is saved: was exit 1, model saved
        (".last.pt.tmp", "writes its checkpoint first", False),
    ],
)
def test_a_folder_where_a_run_file_belongs_is_refused_before_training(
    photos: Path, pico_store: ModelStore, tmp_path: Path, name: str, what: str, resume: bool
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / name).mkdir(parents=True)

    code, output = train(photos, pico_store, "blocked", "--checkpoint-dir", run_dir, *(["--resume"] if resume else []))

    assert code == 2  # was 1 after training: "unexpected IsADirectoryError: [Errno 21] Is a directory: ..."
    assert error_line(output) == (
        f"Error: {run_dir / name} is a folder, where the run {what} as a file: move the folder away, "
        "or give another --checkpoint-dir"
    )
    assert "blocked" not in pico_store.names()


def test_a_folder_that_appears_where_a_run_file_is_written_is_one_line_naming_it(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.trainer

    run_dir = tmp_path / "run"
    make_loader = training.trainer.make_loader

    def loader_and_a_folder_in_the_way(*args, **kwargs):
        (run_dir / "metrics.csv").mkdir(exist_ok=True)  # after the checks before training: only the write sees it
        return make_loader(*args, **kwargs)

    monkeypatch.setattr(training.trainer, "make_loader", loader_and_a_folder_in_the_way)

    code, output = train(photos, pico_store, "blocked", "--checkpoint-dir", run_dir)

    assert code == 2  # was 1: "unexpected IsADirectoryError: [Errno 21] Is a directory: '.metrics.csv.tmp' -> ..."
    assert error_line(output) == f"Error: cannot write {run_dir / 'metrics.csv'}: Is a directory"
    assert not (run_dir / ".metrics.csv.tmp").exists()


# --- resuming -------------------------------------------------------------------------------------------


@pytest.fixture
def finished_run(photos: Path, pico_store: ModelStore, tmp_path: Path) -> Path:
    """The run folder of a finished two-epoch run of model "first" (removed from the store again)."""
    run_dir = tmp_path / "run"
    code, output = train(photos, pico_store, "first", "--checkpoint-dir", run_dir)
    assert code == 0, output
    pico_store.remove("first")
    return run_dir


def resume_for_a_third_epoch(photos: Path, store: ModelStore, run_dir: Path) -> tuple[int, str]:
    return train(photos, store, "first", "--epochs", 3, "--checkpoint-dir", run_dir, "--resume")


@pytest.mark.parametrize("damage", ["cut short", "garbage"])
def test_resuming_from_a_damaged_checkpoint_says_how_to_start_over(
    photos: Path, pico_store: ModelStore, finished_run: Path, damage: str
) -> None:
    checkpoint = finished_run / "last.pt"
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[: len(whole) // 2] if damage == "cut short" else b"garbage\n")

    code, output = resume_for_a_third_epoch(photos, pico_store, finished_run)

    assert code == 2
    assert output.count("\n") == 1  # torch's reasons ran to many lines
    assert output == (
        f"Error: cannot resume: {checkpoint} is damaged (cut short by a crash or a full disk?) or not a "
        "checkpoint; delete it to start the run over, or give another --checkpoint-dir\n"
    )


@pytest.mark.parametrize("points_to", ["nothing", "a folder"])
def test_resuming_from_a_link_to_no_checkpoint_says_what_it_points_to(
    photos: Path, pico_store: ModelStore, tmp_path: Path, points_to: str
) -> None:
    run_dir, target = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    if points_to == "a folder":
        target.mkdir()
    (run_dir / "last.pt").symlink_to(target)

    code, output = train(photos, pico_store, "linked", "--checkpoint-dir", run_dir, "--resume")

    assert code == 2  # was "cannot resume: .../last.pt does not exist (no epoch of this run finished)"
    problem = (
        f"is a symbolic link to {target}, which does not exist" if points_to == "nothing"
        else "is a folder, not a checkpoint file"
    )
    assert error_line(output) == f"Error: cannot resume: {run_dir / 'last.pt'} {problem}"


def test_resuming_after_the_init_model_was_replaced_by_another_preset_is_refused(
    photos: Path, pico_store: ModelStore, finished_run: Path
) -> None:
    pico_store.remove("pico")
    pico_store.init("nano", "pico", seed=0)  # the same name, another architecture

    code, output = resume_for_a_third_epoch(photos, pico_store, finished_run)

    assert code == 2  # was 1: "unexpected RuntimeError: Error(s) in loading state_dict for EAT: ..." (100 lines)
    assert output == (
        f"Error: cannot resume {finished_run}: its checkpoint holds a pico model and this run builds a nano one "
        "(was --init pico replaced since?)\n"
    )


def test_resuming_after_the_labels_changed_is_refused(
    photos: Path, pico_store: ModelStore, finished_run: Path
) -> None:
    rows = [line.split(",") for line in (photos / "labels.csv").read_text().splitlines()[1:]]
    write_labels(photos / "labels.csv", [(name, 10 - float(score)) for name, score in rows])  # every label turned

    code, output = resume_for_a_third_epoch(photos, pico_store, finished_run)

    assert code == 2
    assert error_line(output) == (
        f"Error: cannot resume {finished_run}: the training data changed since the run started (images or "
        "labels; split sizes then {'train': 9, 'val': 2, 'test': 1}, now {'train': 9, 'val': 2, 'test': 1}); "
        "restore the data, or start a new run with another --checkpoint-dir"
    )


# --- Ctrl-C ---------------------------------------------------------------------------------------------


def press_ctrl_c_at(module: object, name: str, call: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as ``module.name`` is called for the ``call``-th time (counted from 1)."""
    original, calls = getattr(module, name), []

    def original_or_ctrl_c(*args, **kwargs):
        calls.append(True)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, original_or_ctrl_c)


def press_ctrl_c_in_epoch(epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as epoch ``epoch`` (from 1) starts: the trainer makes one training loader per epoch."""
    import training.trainer

    press_ctrl_c_at(training.trainer, "make_loader", epoch, monkeypatch)


def command_to_run(error: str) -> list[str]:
    """The command an interruption's line ends with, as words: ``...; to go on from epoch 2, run: eat-curate ...``."""
    return shlex.split(error.split(", run: ", 1)[1])


def test_ctrl_c_after_an_epoch_names_what_is_kept_and_the_command_it_prints_goes_on_from_it(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run dir"  # a space: the printed command quotes it
    with monkeypatch.context() as patch:
        press_ctrl_c_in_epoch(2, patch)
        code, output = train(photos, pico_store, "stopped", "--epochs", 3, "--checkpoint-dir", run_dir)

    assert code == 130
    error = error_line(output)
    assert error.startswith(
        f"Error: interrupted in epoch 2 of 3: {run_dir} holds epoch 1; to go on from epoch 2, run: eat-curate train "
    )
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1
    assert sorted(path.name for path in run_dir.iterdir()) == ["last.pt", "metrics.csv"]  # nothing half-written
    assert "stopped" not in pico_store.names()

    command = command_to_run(error)
    assert command[:2] == ["eat-curate", "train"] and command[-1] == "--resume"
    code, output = eat_curate(*command[1:])  # exactly what it said
    assert code == 0, output
    assert f"resuming {run_dir} after epoch 1 of 3" in output and "stopped" in pico_store.names()


def test_ctrl_c_in_the_first_epoch_says_there_is_nothing_to_resume(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    press_ctrl_c_in_epoch(1, monkeypatch)

    code, output = train(photos, pico_store, "early", "--checkpoint-dir", tmp_path / "run")

    assert code == 130
    error = error_line(output)
    assert error.startswith(
        "Error: interrupted before the first epoch finished: nothing was kept; to start the run over, run: "
    )
    assert "--resume" not in command_to_run(error)


@pytest.mark.parametrize("phase", ["read_labels", "clean"])
def test_ctrl_c_before_training_says_nothing_was_kept_not_to_resume(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    import training.training_data

    press_ctrl_c_at(training.training_data, phase, 1, monkeypatch)  # reading the labels, checking the images

    code, output = train(photos, pico_store, "early", "--checkpoint-dir", tmp_path / "run")

    assert code == 130  # was: "every finished epoch is checkpointed ...; the same command with --resume goes on"
    error = error_line(output)
    assert error.startswith(
        "Error: interrupted before the first epoch finished: nothing was kept; to start the run over, run: "
    )
    assert "--resume" not in command_to_run(error)


def test_ctrl_c_while_resuming_says_the_checkpoint_is_still_there(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.resume_state

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"an earlier run's checkpoint")  # never read: Ctrl-C comes first
    press_ctrl_c_at(training.resume_state, "load_checkpoint", 1, monkeypatch)

    code, output = train(photos, pico_store, "again", "--checkpoint-dir", run_dir, "--resume")

    assert code == 130  # was: "nothing was kept to resume; the same command starts the run over"
    error = error_line(output)
    assert error.startswith(
        f"Error: interrupted: {run_dir} holds the checkpoint of the run's last finished epoch; to go on from it, "
        "run: eat-curate train "
    )
    assert command_to_run(error).count("--resume") == 1
    assert (run_dir / "last.pt").read_bytes() == b"an earlier run's checkpoint"


def test_ctrl_c_while_writing_a_checkpoint_keeps_the_one_before_whole(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save, saves = torch.save, []

    def half_a_checkpoint_then_ctrl_c(state: dict, handle) -> None:
        saves.append(True)
        if len(saves) < 2:
            return save(state, handle)
        handle.write(b"PK\x03\x04 the first bytes of a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_a_checkpoint_then_ctrl_c)
    run_dir = tmp_path / "run"

    code, output = train(photos, pico_store, "mid-write", "--checkpoint-dir", run_dir)

    assert code == 130
    assert error_line(output).startswith(
        f"Error: interrupted in epoch 2 of 2: {run_dir} holds epoch 1; to go on from epoch 2, run: eat-curate train "
    )
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1
    assert not (run_dir / ".last.pt.tmp").exists()


def test_ctrl_c_after_the_model_was_saved_says_the_run_is_done(
    photos: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.resume_state

    press_ctrl_c_at(training.resume_state, "write_summary", 1, monkeypatch)  # the last thing a run writes
    run_dir = tmp_path / "run"

    code, output = train(photos, pico_store, "saved", "--epochs", 1, "--explore-epochs", 0, "--checkpoint-dir", run_dir)

    assert code == 130  # was: "before the model was saved ...; the same command with --resume saves it" (refused)
    model_id = pico_store.card("saved").model_id
    assert error_line(output) == (
        f"Error: interrupted after the model was saved as {model_id}: the run is done, "
        f"though {run_dir / 'summary.json'} was not written"
    )
