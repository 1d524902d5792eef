"""The model store, `models ...`, `score --model` and `explain` against what a careless user or a damaged disk leaves.

A model is a folder of two files anyone can edit, copy badly or lose half
of: ``card.json`` and ``model.safetensors``. Whatever is wrong with one,

- `models list` still lists every other model, and names the broken one
  with its problem (``problem`` in ``--json``);
- `models info BROKEN` and `score --model BROKEN` refuse in one line (exit 2)
  before a photo is read;
- nothing ends in "unexpected <Exception>", a traceback, or a hang.

Writing is all or nothing: a full disk, a read-only disk, a store path that
is a file or two `models init` of one name at once leave no folder that looks
like a model. `models remove` deletes a model's own files only. `explain`
refuses a bad image or --out in one line and never leaves half a picture.

Models here are ``pico`` (tests/synthetic_aesthetics.py), copied from one
saved per module, so the whole file runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from bounded_call import call_bounded
from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.model.card import ModelError
from eat_curate.model.model_store import ModelStore
from hostile_files import _animation, _grey16, encode, photo, png_declaring
from small_disk import mounted_tmpfs, remount
from synthetic_aesthetics import PICO_PRESET

BUILT_IN = "culling-nano"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole pico model folder, never changed: what each test copies."""
    store = ModelStore(tmp_path_factory.mktemp("pristine"))
    store.init(PICO_PRESET, "good", seed=0)
    return store.root / "good"


@pytest.fixture
def store(tmp_path: Path, pristine: Path) -> Path:
    """A store (its folder) holding the good pico model."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(pristine, root / "good")
    return root


def eat(*args: object, home: Path | str = "/nonexistent-home") -> tuple[int, str]:
    """``eat-curate ARGS`` in-process (its store in ``home``/models); (exit code, stdout and stderr)."""
    result = CliRunner().invoke(cli, [str(arg) for arg in args], env={"EAT_CURATE_HOME": str(home)})
    return result.exit_code, result.output


def assert_refused(code: int, output: str, *needles: str) -> None:
    """One line, exit 2, saying what is wrong (never a bug's 'unexpected')."""
    assert code == 2, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "Error: unexpected" not in output and "Traceback" not in output, output
    for needle in needles:
        assert needle in error_lines[0], output


def copy_model(store: Path, name: str) -> Path:
    folder = store / name
    shutil.copytree(store / "good", folder)
    edit_card(folder, lambda card: card.update(name=name))
    return folder


def edit_card(folder: Path, change: Callable[[dict], object]) -> None:
    card = json.loads((folder / "card.json").read_text())
    change(card)
    (folder / "card.json").write_text(json.dumps(card))


def replace_weights(folder: Path, data: bytes) -> None:
    """New weights whose sha256 the card records: only what is inside the file is wrong."""
    (folder / "model.safetensors").write_bytes(data)
    edit_card(folder, lambda card: card.update(sha256=hashlib.sha256(data).hexdigest()))


def changed_state(folder: Path, change: Callable[[dict], object]) -> bytes:
    state = load_file(str(folder / "model.safetensors"))
    change(state)
    return safetensors_bytes(state, metadata={"format": "pt"})


def lying_header(folder: Path, tensor: str, field: str, value: object) -> bytes:
    """The weights file with one entry of its header changed, the data left as it was."""
    data = (folder / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header[tensor][field] = value
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + length :]


def half(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def dims(value: object) -> Callable[[dict], object]:
    return lambda card: card["architecture"].update(dims=value)


# --- cards --------------------------------------------------------------------------------------------

# name -> (what is done to the copied model's card.json, what the problem says)
BROKEN_CARDS: dict[str, tuple[Callable[[Path], object], str]] = {
    "no-card": (lambda f: (f / "card.json").unlink(), "card.json is missing"),
    "empty-card": (lambda f: (f / "card.json").write_bytes(b""), "card.json is empty"),
    "not-json": (lambda f: (f / "card.json").write_text('{"name": "x",'), "card.json is not valid JSON"),
    "not-utf8": (lambda f: (f / "card.json").write_bytes(b'{"name": "caf\xe9"}'), "card.json is not UTF-8"),
    "a-list": (lambda f: (f / "card.json").write_text("[1, 2]"), "card.json holds a list, not an object"),
    "just-null": (lambda f: (f / "card.json").write_text("null"), "card.json holds null"),
    "too-deep": (lambda f: (f / "card.json").write_text("[" * 100_000), "nested too deeply"),
    "card-is-folder": (lambda f: ((f / "card.json").unlink(), (f / "card.json").mkdir()), "not a regular file"),
    "preset-number": (lambda f: edit_card(f, lambda c: c.update(preset=42)), "preset must be text"),
    "trained-yes": (lambda f: edit_card(f, lambda c: c.update(trained="yes")), "trained must be true or false"),
    "metrics-list": (lambda f: edit_card(f, lambda c: c.update(metrics=[1])), "metrics must be an object"),
    "no-sha": (lambda f: edit_card(f, lambda c: c.pop("sha256")), "'sha256' is missing"),
    "sha-not-hex": (lambda f: edit_card(f, lambda c: c.update(sha256="z" * 64)), "sha256 must be 64 lowercase hex"),
    "sha-number": (lambda f: edit_card(f, lambda c: c.update(sha256=12)), "sha256 must be text"),
    "name-number": (lambda f: edit_card(f, lambda c: c.update(name=7)), "name must be text"),
    "head-magic": (lambda f: edit_card(f, lambda c: c.update(head_mode="magic")), "unknown head mode 'magic'"),
    "scheduled-without-schedule": (lambda f: edit_card(f, lambda c: c.update(steering_mode="scheduled")),
                                   "needs the steering_schedule"),
    "schedule-garbled": (lambda f: edit_card(f, lambda c: c.update(steering_schedule={"x": 1})),
                         "steering_schedule.explore_epochs"),
    "architecture-list": (lambda f: edit_card(f, lambda c: c.update(architecture=[1])),
                          "architecture must be an object"),
    "dims-text": (lambda f: edit_card(f, dims("abc")), "architecture: dims must be 4 whole numbers"),
    "dims-huge": (lambda f: edit_card(f, dims([10**9] * 4)), "architecture: dims must be 4 whole numbers"),
    "image-size-zero": (lambda f: edit_card(f, lambda c: c["architecture"].update(image_size=0)),
                        "image_size must be a whole number from 1"),
    "drop-path-nan": (lambda f: edit_card(f, lambda c: c["architecture"].update(drop_path_rate=float("nan"))),
                      "drop_path_rate must be a number"),
    "architecture-unknown": (lambda f: edit_card(f, lambda c: c["architecture"].update(wings=2)),
                             "architecture: unknown fields wings"),
    "newer-format": (lambda f: edit_card(f, lambda c: c.update(card_format=2, hologram=True)),
                     "written by a newer eat-curate (card format 2; this one reads 1)"),
}

# name -> (what is done to the copied model's weights, what the problem says); `models list` sees these.
BROKEN_WEIGHTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "no-weights": (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
    "zero-weights": (lambda f: (f / "model.safetensors").write_bytes(b""), "model.safetensors is empty (0 bytes)"),
    "cut-weights": (lambda f: (f / "model.safetensors").write_bytes(half(f / "model.safetensors")), "(cut short)"),
    "cut-in-header": (lambda f: (f / "model.safetensors").write_bytes(half(f / "model.safetensors")[:1000]),
                      "(cut short)"),
    "weights-folder": (lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors").mkdir()),
                       "model.safetensors is not a regular file"),
    "offsets-overlap": (lambda f: replace_weights(f, lying_header(f, "cls_norm.norm.bias", "data_offsets", [0, 512])),
                        "its header's tensors overlap or leave gaps"),
    "shape-lies": (lambda f: replace_weights(f, lying_header(f, "cls_head.bias", "shape", [20])),
                   "its header describes tensor 'cls_head.bias' wrongly"),
}

# Weights that read as safetensors, and whose hash the card records, but that are not this network's:
# found when the model loads (before it is built), so `score` and `explain` refuse them.
UNFIT_WEIGHTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "wrong-shape": (lambda f: replace_weights(
        f, changed_state(f, lambda s: s.update({"cls_head.bias": torch.zeros(3)}))),
        "cls_head.bias is [3], the architecture needs [10]"),
    "wrong-dtype": (lambda f: replace_weights(
        f, changed_state(f, lambda s: s.update({"cls_head.bias": torch.zeros(10, dtype=torch.int64)}))),
        "cls_head.bias holds int64, the architecture needs float32"),
    "extra-key": (lambda f: replace_weights(f, changed_state(f, lambda s: s.update(surprise=torch.zeros(2)))),
                  "unexpected 1 tensors (surprise)"),
    "missing-key": (lambda f: replace_weights(f, changed_state(f, lambda s: s.pop("cls_head.bias"))),
                    "missing 1 tensors (cls_head.bias)"),
    "indivisible-heads": (lambda f: edit_card(f, lambda c: c["architecture"].update(heads=[1, 2, 4, 7])),
                          "cannot be built from its card"),
}


def broken(store: Path, cases: dict) -> None:
    for name, (damage, _) in cases.items():
        damage(copy_model(store, name))


def test_models_list_names_each_broken_folder_with_its_problem_and_still_lists_the_others(store: Path) -> None:
    broken(store, BROKEN_CARDS | BROKEN_WEIGHTS)
    (store / "stray-folder").mkdir()
    (store / "stray-folder" / "notes.txt").write_text("mine")

    code, output = eat("models", "list", "--models-dir", store, "--json")

    assert code == 0, output
    rows = {row["name"]: row for row in json.loads(output[: output.rindex("]") + 1])}
    assert rows["good"]["problem"] is None and rows["good"]["model_id"].startswith("good@")
    assert rows[BUILT_IN]["problem"] is None and rows[BUILT_IN]["default"] is True
    for name, (_, problem) in (BROKEN_CARDS | BROKEN_WEIGHTS).items():
        assert problem in (rows[name]["problem"] or ""), (name, rows[name])
    assert rows["stray-folder"]["problem"] == "no card.json and no model.safetensors in it"


def test_the_models_table_adds_a_problem_column_and_says_which_cannot_score(store: Path) -> None:
    broken(store, {"no-weights": BROKEN_WEIGHTS["no-weights"]})
    code, output = eat("models", "list", "--models-dir", store)
    lines = output.splitlines()
    assert code == 0 and lines[0].split()[-1] == "problem"
    assert next(line for line in lines if line.startswith("no-weights")).endswith("model.safetensors is missing")
    assert lines[-1].startswith("1 cannot score (no-weights)")


@pytest.mark.parametrize("name", sorted(BROKEN_CARDS))
def test_models_info_of_a_broken_card_is_refused_in_one_line_saying_why(store: Path, name: str) -> None:
    damage, problem = BROKEN_CARDS[name]
    damage(copy_model(store, name))
    assert_refused(*eat("models", "info", name, "--models-dir", store), f"{name} is not a usable model", problem)


@pytest.mark.parametrize("name", sorted(BROKEN_WEIGHTS))
def test_models_info_shows_the_card_and_warns_that_broken_weights_cannot_score(store: Path, name: str) -> None:
    damage, problem = BROKEN_WEIGHTS[name]
    damage(copy_model(store, name))
    code, output = eat("models", "info", name, "--models-dir", store)
    assert code == 0 and ["name", name] in [line.split() for line in output.splitlines()]
    assert f"warning: this model cannot score: {problem}" in output or problem in output.splitlines()[-1]


@pytest.mark.parametrize("name", sorted(BROKEN_CARDS.keys() | BROKEN_WEIGHTS.keys() | UNFIT_WEIGHTS.keys()))
def test_score_with_a_broken_model_refuses_in_one_line_before_reading_a_photo(
    store: Path, tmp_path: Path, name: str
) -> None:
    damage, problem = (BROKEN_CARDS | BROKEN_WEIGHTS | UNFIT_WEIGHTS)[name]
    damage(copy_model(store, name))
    photos = tmp_path / "photos"
    make_photo(photos / "a.jpg")
    out = tmp_path / "scores.parquet"

    assert_refused(*eat("score", photos, "--model", name, "--models-dir", store, "--out", out), problem)
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(BROKEN_WEIGHTS))
def test_a_dry_run_or_a_ray_run_refuses_broken_weights_before_it_starts(store: Path, tmp_path: Path, name: str) -> None:
    """Neither loads the model in this process (Ray's actors do): the weights file is looked at first."""
    damage, problem = BROKEN_WEIGHTS[name]
    damage(copy_model(store, name))
    make_photo(tmp_path / "photos" / "a.jpg")

    assert_refused(*eat("score", tmp_path / "photos", "--model", name, "--models-dir", store, "--dry-run",
                        "--out", tmp_path / "scores.parquet"), problem)


def test_a_broken_model_given_by_its_folder_is_named_broken_not_unknown(store: Path) -> None:
    broken(store, {"no-card": BROKEN_CARDS["no-card"]})
    assert_refused(*eat("models", "info", store / "no-card"), f"{store / 'no-card'} is not a usable model: card.json")


def test_a_card_that_says_more_than_this_version_knows_still_scores(store: Path, tmp_path: Path) -> None:
    # The same card format from a newer eat-curate: fields it added are read past.
    edit_card(store / "good", lambda card: card.update(hologram={"depth": 3}, colour_profile="P3"))
    make_photo(tmp_path / "photos" / "a.jpg")
    code, output = eat("score", tmp_path / "photos", "--model", "good", "--models-dir", store,
                       "--out", tmp_path / "s.parquet")
    assert code == 0, output


def test_nan_and_huge_numbers_in_metrics_read_and_print_as_strict_json(store: Path) -> None:
    # A metric can be undefined (NaN: every validation score equal); the trainer writes it so.
    (store / "good" / "card.json").write_text(
        (store / "good" / "card.json").read_text().replace('"metrics": {}', '"metrics": {"srcc": NaN, "n": 1e999, '
                                                           '"big": ' + "9" * 400 + "}"))
    code, output = eat("models", "info", "good", "--models-dir", store, "--json")
    assert code == 0, output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    card = json.loads(output[: output.rindex("}") + 1], parse_constant=refuse)
    assert card["metrics"] == {"srcc": None, "n": None, "big": int("9" * 400)}
    assert eat("models", "info", "good", "--models-dir", store)[0] == 0


def _load_huge_card_model(folder: str) -> str:
    try:
        ModelStore().load(folder)
    except ModelError as error:
        return str(error)
    return "loaded"


def test_a_card_that_asks_for_a_huge_network_is_refused_before_it_is_allocated(store: Path) -> None:
    # 16,000 channels fit the card's limits, but allocated they would take tens of gigabytes;
    # the weights (pico's) say otherwise, and that is found on a skeleton that holds no memory.
    folder = copy_model(store, "huge")
    edit_card(folder, dims([16000] * 4))
    outcome = call_bounded(_load_huge_card_model, str(folder), seconds=60)
    assert outcome.status == "returned", outcome
    assert "patch_proj.0.weight is [16, 3, 4, 4], the architecture needs [16000, 3, 4, 4]" in outcome.value


def test_a_half_written_model_left_by_a_crash_is_not_listed(store: Path) -> None:
    shutil.copytree(store / "good", store / ".good.4242-abcd.partial")  # the crash came just before the rename
    code, output = eat("models", "list", "--models-dir", store, "--json")
    assert code == 0 and [row["name"] for row in json.loads(output)] == [BUILT_IN, "good"]


# --- names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "nul\x00byte", "has space", "n" * 300])
def test_models_init_refuses_a_name_that_is_not_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    code, output = eat("models", "init", "--name", name, "--models-dir", tmp_path / "models")
    assert_refused(code, output, "invalid model name")
    assert len(output) < 400 and not (tmp_path / "models").exists()


@pytest.mark.parametrize("name", ["nul\x00byte", "n" * 300])
def test_models_info_of_a_name_no_path_can_hold_says_there_is_no_such_model(store: Path, name: str) -> None:
    assert_refused(*eat("models", "info", name, "--models-dir", store), "no model")


def test_a_new_model_cannot_take_the_name_of_a_built_in_one(tmp_path: Path) -> None:
    # It would shadow the built-in, and `score` without --model would use it instead.
    code, output = eat("models", "init", "--preset", "tiny", "--name", BUILT_IN, "--models-dir", tmp_path / "m")
    assert_refused(code, output, "name of a model built into the package")
    path = tmp_path / "weights.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    code, output = eat("models", "import", path, "--preset", "tiny", "--name", BUILT_IN, "--models-dir", tmp_path / "m")
    assert_refused(code, output, "name of a model built into the package")
    assert not (tmp_path / "m" / BUILT_IN).exists()


# --- import ---------------------------------------------------------------------------------------------

def _header_claiming(length: int) -> bytes:
    return struct.pack("<Q", length) + b"{}"


IMPORTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "notes.pth": (lambda p: p.write_text("my weights, honest\n"), "not a PyTorch checkpoint"),
    "empty.pth": (lambda p: p.write_bytes(b""), "empty.pth is empty (0 bytes)"),
    "pipe.pth": (lambda p: os.mkfifo(p), "pipe.pth is not a regular file (a FIFO)"),
    "resnet.pth": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2))
                                        .state_dict(), p), "it holds another kind of model, not EAT or DAT"),
    "huge-header.safetensors": (lambda p: p.write_bytes(_header_claiming(1 << 62)), "header too large"),
}


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_models_import_of_something_that_is_no_eat_checkpoint_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    make, message = IMPORTS[name]
    path = tmp_path / name
    make(path)
    code, output = eat("models", "import", path, "--preset", "tiny", "--name", "x", "--models-dir", tmp_path / "m")
    assert_refused(code, output, message)
    assert not (tmp_path / "m" / "x").exists()


def test_models_import_of_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.pth").mkdir()
    code, output = eat("models", "import", tmp_path / "weights.pth", "--preset", "tiny", "--name", "x")
    assert code == 2 and "is a directory" in output


# --- remove ---------------------------------------------------------------------------------------------

def test_removing_a_built_in_model_is_refused_before_asking(store: Path) -> None:
    assert_refused(*eat("models", "remove", BUILT_IN, "--models-dir", store), "built into the package")


def test_removing_a_name_not_there_is_refused(store: Path) -> None:
    assert_refused(*eat("models", "remove", "ghost", "--models-dir", store, "--yes"), "no model 'ghost'")


def test_removing_a_folder_that_holds_more_than_a_model_deletes_nothing(store: Path) -> None:
    (store / "good" / "holiday.jpg").write_bytes(b"someone keeps this here")
    code, output = eat("models", "remove", "good", "--models-dir", store, "--yes")
    assert_refused(code, output, "holds files that are not the model's (holiday.jpg)")
    assert sorted(p.name for p in (store / "good").iterdir()) == ["card.json", "holiday.jpg", "model.safetensors"]


def test_a_broken_model_can_be_removed(store: Path) -> None:
    broken(store, {name: BROKEN_CARDS[name] for name in ("no-card", "not-json")})
    for name in ("no-card", "not-json"):
        code, output = eat("models", "remove", name, "--models-dir", store, "--yes")
        assert code == 0 and output.startswith("removed"), output
    assert sorted(p.name for p in store.iterdir()) == ["good"]


# --- where the store is -------------------------------------------------------------------------------

def test_a_store_path_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("not a folder")  # $EAT_CURATE_HOME, the store's parent
    code, output = eat("models", "init", "--preset", "tiny", "--name", "m", home=tmp_path / "home")
    assert_refused(code, output, f"the model store {tmp_path / 'home' / 'models'} is not a folder")
    (tmp_path / "models").write_text("not a folder")  # --models-dir: click says so
    code, output = eat("models", "init", "--name", "m", "--models-dir", tmp_path / "models")
    assert code == 2 and "is a file" in output


def test_a_full_disk_leaves_no_model_and_no_half_of_one(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:  # tiny's weights are ~110 MB
        code, output = eat("models", "init", "--preset", "tiny", "--name", "m", "--models-dir", disk / "models")
        assert code == 4 and output.startswith("Error: the disk refused a write") and "unexpected" not in output
        assert list((disk / "models").iterdir()) == []  # not even a hidden, half-written folder


def test_a_read_only_store_is_an_infrastructure_failure(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        remount(disk, "ro")
        code, output = eat("models", "init", "--preset", "tiny", "--name", "m", "--models-dir", disk / "models")
        assert code == 4 and "Read-only file system" in output and output.count("\n") == 1


def test_two_inits_of_one_name_at_once_leave_one_whole_model(tmp_path: Path, monkeypatch) -> None:
    # The second `models init` finishes while the first is still writing; the first must not replace it.
    import eat_curate.model.checkpoint as checkpoint

    store = ModelStore(tmp_path / "models")
    write = checkpoint.save_model
    other = {}

    def slow_write(*args, **kwargs):
        if not other:
            other["started"] = True
            other["card"] = store.init(PICO_PRESET, "same", seed=2)  # overtakes the first
        return write(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_model", slow_write)
    with pytest.raises(ModelError, match="created .* by someone else meanwhile"):
        store.init(PICO_PRESET, "same", seed=1)
    assert store.card("same").sha256 == other["card"].sha256
    assert [p.name for p in store.root.iterdir()] == ["same"]
    store.load("same")


# --- explain --------------------------------------------------------------------------------------------

def explain(image: object, out: Path, *more: object, model: Path) -> tuple[int, str]:
    return eat("explain", image, "--model", model, "--out", out, "--size", "128", *more)


IMAGES_THAT_EXPLAIN: dict[str, Callable[[], bytes]] = {
    "one-pixel.png": lambda: encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"),
    "cmyk.jpg": lambda: encode(photo().convert("CMYK"), "JPEG"),
    "grey16.png": _grey16,
    "animated.gif": lambda: _animation("GIF"),
    "animated.webp": lambda: _animation("WEBP"),
}


@pytest.mark.parametrize("name", sorted(IMAGES_THAT_EXPLAIN))
def test_explain_draws_any_image_score_can_read(store: Path, tmp_path: Path, name: str) -> None:
    image = tmp_path / name
    image.write_bytes(IMAGES_THAT_EXPLAIN[name]())
    code, output = explain(image, tmp_path / "view.png", model=store / "good")
    assert code == 0 and output.startswith(f"wrote {tmp_path / 'view.png'}: score"), output


def test_explain_refuses_an_image_it_cannot_use_in_one_line_naming_it(store: Path, tmp_path: Path) -> None:
    (tmp_path / "cut.jpg").write_bytes(encode(photo((320, 240)), "JPEG")[:300])
    (tmp_path / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    cases = {
        tmp_path / "cut.jpg": f"cannot explain {tmp_path / 'cut.jpg'}: corrupt JPEG",
        tmp_path / "bomb.png": "exceeds limit",
        tmp_path / "pipe.jpg": "not a regular file (FIFO)",
        tmp_path / "folder.jpg": "is a folder, not a file",
        "https://example.com/photo.jpg": "https://example.com/photo.jpg: explain reads a local file",
    }
    for image, message in cases.items():
        code, output = explain(image, tmp_path / "view.png", model=store / "good")
        assert code == 2 and message in output and "unexpected" not in output, (image, output)
    assert not (tmp_path / "view.png").exists()


def test_explain_refuses_an_out_it_cannot_write(store: Path, tmp_path: Path) -> None:
    image = make_photo(tmp_path / "p.jpg")
    (tmp_path / "taken.png").write_bytes(b"keep me")
    cases = {
        tmp_path / "missing" / "view.png": "the folder",
        tmp_path / "taken.png": "exists; pass --force",
        tmp_path / ("v" * 260 + ".png"): "File name too long",
    }
    for out, message in cases.items():
        code, output = explain(image, out, model=store / "good")
        assert code == 2 and message in output, (out, output)
    assert (tmp_path / "taken.png").read_bytes() == b"keep me"


def test_explain_force_replaces_even_a_fifo_at_out_instead_of_failing(store: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "view.png")
    code, output = explain(make_photo(tmp_path / "p.jpg"), tmp_path / "view.png", "--force", model=store / "good")
    assert code == 0, output
    with Image.open(tmp_path / "view.png") as picture:
        assert picture.format == "PNG"


def test_explain_on_a_full_disk_leaves_no_half_picture_and_keeps_the_old_one(
    store: Path, tmp_path: Path
) -> None:
    image = make_photo(tmp_path / "p.jpg", size=(640, 480))
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        (disk / "view.png").write_bytes(b"the previous picture")
        (disk / "filler").write_bytes(b"\0" * (64 * 1024 - 8192))
        code, output = eat("explain", image, "--model", store / "good", "--out", disk / "view.png", "--force",
                           "--size", "2048")
        assert code == 4 and output.startswith("Error: the disk refused a write"), output
        assert (disk / "view.png").read_bytes() == b"the previous picture"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "view.png"]
