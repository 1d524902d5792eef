"""Model files, the store and foreign-weight import: safe, verified, all-or-nothing."""

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from eat_curate.model import EAT, PUBLISHED_RULE
from eat_curate.model.card import WEIGHTS_FILE, ModelError
from eat_curate.model.checkpoint import load_model
from eat_curate.model.importers import import_weights, read_state_file
from eat_curate.model.model_store import ModelStore
from eat_curate.model.reference import PublishedEAT


def published_state(preset, seed=0) -> dict:
    torch.manual_seed(seed)
    model = PublishedEAT(preset)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not key.endswith("attn_mask"):
                value.normal_(0, 0.05)
    return model.state_dict()


def dat_imagenet_state(preset) -> dict:
    """What a DAT ImageNet checkpoint holds: no interest points, a 1000-class head, wrapped in 'model'."""
    state = {k: v for k, v in published_state(preset).items() if "ref_point14" not in k}
    state["cls_head.weight"] = torch.randn(1000, preset.dims[3])
    state["cls_head.bias"] = torch.randn(1000)
    return {"model": state, "epoch": torch.tensor(300)}


class WritesAMarker:
    """A pickle payload: unpickling it would create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_init_save_and_load_round_trip(tmp_path, micro_preset):
    store = ModelStore(tmp_path / "models")
    card = store.init(micro_preset, "m1", seed=7)
    loaded = store.load("m1")
    assert loaded.card.model_id == card.model_id == f"m1@{card.sha256[:12]}"
    assert loaded.card.trained is False and "untrained" in loaded.card.scope
    torch.manual_seed(7)
    fresh = EAT(micro_preset)
    for key, value in fresh.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_the_weights_are_as_readable_as_the_card_so_a_shared_store_works(tmp_path, micro_preset):
    store = ModelStore(tmp_path / "models")
    previous = os.umask(0o022)  # the usual one; the card's permissions follow it
    try:
        store.init(micro_preset, "shared", seed=0)
    finally:
        os.umask(previous)
    folder = store.resolve("shared")
    mode = (folder / "model.safetensors").stat().st_mode & 0o777
    assert mode == (folder / "card.json").stat().st_mode & 0o777 and mode & 0o044  # group and others may read


def test_same_seed_same_weights_different_seed_different_hash(tmp_path, micro_preset):
    store = ModelStore(tmp_path)
    a, b, c = (store.init(micro_preset, name, seed) for name, seed in [("a", 1), ("b", 1), ("c", 2)])
    assert a.sha256 == b.sha256 != c.sha256


def test_a_changed_weights_file_is_refused(tmp_path, micro_preset):
    store = ModelStore(tmp_path)
    store.init(micro_preset, "m", seed=0)
    weights = tmp_path / "m" / WEIGHTS_FILE
    state = load_file(str(weights))
    state["cls_head.bias"] = state["cls_head.bias"] + 1
    save_file(state, str(weights))
    with pytest.raises(ModelError, match="do not match its card"):
        store.load("m")


def test_a_card_without_weights_or_json_is_a_clear_error(tmp_path, micro_preset):
    store = ModelStore(tmp_path)
    store.init(micro_preset, "m", seed=0)
    (tmp_path / "m" / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        store.load("m")
    with pytest.raises(ModelError, match="no model 'nope'.*known models"):
        store.load("nope")


def test_names_are_validated_and_never_overwritten_silently(tmp_path, micro_preset):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="invalid model name"):
        store.init(micro_preset, "../escape")
    store.init(micro_preset, "m")
    with pytest.raises(ModelError, match="already exists"):
        store.init(micro_preset, "m")
    store.init(micro_preset, "m", seed=3, overwrite=True)
    assert store.names() == ["m"]


def test_published_checkpoint_imports_and_reproduces_the_published_outputs(tmp_path, micro_preset):
    state = published_state(micro_preset)
    path = tmp_path / "eat_ava.pth"
    torch.save(state, path)
    imported = import_weights(path, micro_preset, "auto")
    assert (imported.format, imported.head_mode, imported.steering_mode) == ("published-eat", "published", "published")
    assert imported.trained and imported.fresh_keys == []

    published = PublishedEAT(micro_preset).eval()
    published.load_state_dict(state)
    imported.model.set_steering(PUBLISHED_RULE)
    image = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert (published(image) - imported.model(image)).abs().max().item() < 1e-5


def test_imported_model_keeps_published_behaviour_through_the_store(tmp_path, micro_preset, monkeypatch):
    path = tmp_path / "eat_ava.pth"
    torch.save(published_state(micro_preset), path)
    monkeypatch.setattr("eat_curate.model.model_store.get_preset", lambda name: micro_preset)
    store = ModelStore(tmp_path / "models")
    card, fresh = store.import_file(path, "micro", "ava", "published-eat")
    loaded = store.load("ava")
    assert loaded.card.steering_mode == "published" and loaded.card.head_mode == "published"
    assert all(block.steering == PUBLISHED_RULE for block in loaded.model.deformable_blocks())
    # The published head is raw: its "distribution" is the linear output itself.
    logits = torch.randn(2, 10)
    assert torch.equal(loaded.model.distribution(logits), logits)


def test_dat_imagenet_weights_initialise_everything_but_interest_points_and_head(tmp_path, micro_preset):
    path = tmp_path / "dat_micro_in1k_224.pth"
    checkpoint = dat_imagenet_state(micro_preset)
    torch.save(checkpoint, path)
    imported = import_weights(path, micro_preset, "auto")
    assert imported.format == "dat-imagenet" and not imported.trained
    assert sorted({key.rsplit(".", 1)[0].split(".")[-1] for key in imported.fresh_keys}) == ["cls_head", "ref_point14"]
    own = imported.model.state_dict()
    assert torch.equal(own["stages.0.mlps.0.chunk.linear1.weight"], checkpoint["model"]["stages.0.mlps.0.chunk.linear1.weight"])
    assert own["cls_head.weight"].shape == (10, micro_preset.dims[3])


def test_dat_weights_are_resized_for_another_resolution(tmp_path, micro_preset):
    path = tmp_path / "dat.pth"
    torch.save(dat_imagenet_state(micro_preset), path)
    at_384 = replace(micro_preset, image_size=384, window_size=12)
    imported = import_weights(path, at_384, "dat-imagenet")
    own = imported.model.state_dict()
    assert own["stages.0.attns.0.relative_position_bias_table"].shape == (23 * 23, 1)
    assert own["stages.2.attns.1.rpe_table"].shape == (4 // 2 * 2, 47, 47)
    with torch.inference_mode():
        assert torch.isfinite(imported.model(torch.randn(1, 3, 384, 384))).all()


def test_missing_and_unexpected_keys_are_named_and_nothing_is_written(tmp_path, micro_preset, monkeypatch):
    state = published_state(micro_preset)
    del state["stages.3.attns.1.proj_k.weight"]
    state["stages.3.attns.1.surprise"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    monkeypatch.setattr("eat_curate.model.model_store.get_preset", lambda name: micro_preset)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelError) as error:
        store.import_file(path, "micro", "broken", "published-eat")
    assert "stages.3.attns.1.proj_k.weight" in str(error.value)
    assert "stages.3.attns.1.surprise" in str(error.value)
    assert store.names() == []


def test_a_checkpoint_of_another_preset_is_a_shape_error(tmp_path, micro_preset):
    path = tmp_path / "micro.pth"
    torch.save(published_state(micro_preset), path)
    with pytest.raises(ModelError, match="wrong --preset"):
        import_weights(path, replace(micro_preset, name="wider", dims=(48, 96, 192, 384)), "published-eat")


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "trap": WritesAMarker(marker)}, path)
    with pytest.raises(ModelError, match="pickle payload"):
        read_state_file(path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(WritesAMarker(marker)))
    with pytest.raises(ModelError, match="pickle payload"):
        read_state_file(raw)
    assert not marker.exists()


def test_safetensors_files_import_too(tmp_path, micro_preset):
    path = tmp_path / "eat.safetensors"
    save_file({k: v.contiguous() for k, v in published_state(micro_preset).items()}, str(path))
    assert import_weights(path, micro_preset).format == "published-eat"


def test_card_records_what_the_model_is(tmp_path, micro_preset):
    ModelStore(tmp_path).init(micro_preset, "m", seed=0)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    for key in ("name", "preset", "input_size", "head_mode", "steering_mode", "trained", "training_data",
                "metrics", "sha256", "created", "architecture"):
        assert key in card, key
    assert card["input_size"] == 224 and card["architecture"]["dims"] == [24, 48, 96, 192]
    assert load_model(tmp_path / "m").card.preset_spec() == micro_preset
