"""`eat-curate explain`: EAT's interest points and sampling positions drawn over a photo.

The micro model is untrained, so where it looks means nothing; what is
checked is that the points drawn are the model's own, in the right place
on the photo at its own aspect ratio, and that the score shown is the score
`score` gives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eat_curate.io.decode import open_image
from eat_curate.scoring.explain import (
    INTEREST_COLOUR,
    PANEL_WIDTH,
    explain_image,
    normalised_to_fraction,
    pixel_positions,
    render_explanation,
)
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from eat_curate.io.resize import resize_for_model
from read_library import invoke, save_jpeg, scene


@pytest.fixture(scope="module")
def loaded(model_store):
    return model_store.load("micro")


@pytest.fixture
def wide_photo(tmp_path):
    return save_jpeg(tmp_path / "wide.jpg", scene(7, size=(400, 200)))


def test_points_come_from_the_last_two_deformable_stages(loaded, wide_photo):
    explanation = explain_image(loaded, open_image(wide_photo.read_bytes()))
    # micro: 224 px input, stages 3 and 4 at 14x14 and 7x7 cells, 2 and 4 groups, one deformable block each
    assert [(b.stage, b.block, b.feature_size) for b in explanation.blocks] == [(2, 1, (14, 14)), (3, 1, (7, 7))]
    assert [len(b.interest) for b in explanation.blocks] == [14 * 14, 7 * 7]
    assert [len(b.positions) for b in explanation.blocks] == [2 * 14 * 14, 4 * 7 * 7]
    for block in explanation.blocks:
        height, _ = block.feature_size
        inside = (block.interest >= 0.5 / height - 1e-9) & (block.interest <= 1 - 0.5 / height + 1e-9)
        assert inside.all()  # tanh keeps interest points between the first and last cell centres
        assert not np.allclose(block.positions[: len(block.interest)], block.interest)  # offsets moved them


def test_the_score_is_the_one_score_gives(loaded, wide_photo):
    image = open_image(wide_photo.read_bytes())
    explanation = explain_image(loaded, image, dtype="fp32")  # the same dtype as the predictor below
    with pytest.warns(UntrainedModelWarning):
        predictor = Predictor(loaded, device="cpu", dtype="fp32")
    predicted = predictor.predict(resize_for_model(image, 224)[None])
    assert explanation.mean == pytest.approx(float(predicted.mean[0]), abs=1e-5)
    assert explanation.std == pytest.approx(float(predicted.std[0]), abs=1e-5)
    assert explanation.probabilities == pytest.approx(predicted.probabilities[0], abs=1e-6)


def test_normalised_coordinates_map_to_cell_centres():
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]])  # (y, x)
    fractions = normalised_to_fraction(corners, height=4, width=8)  # (x, y)
    assert fractions == pytest.approx(np.array([[1 / 16, 1 / 8], [15 / 16, 7 / 8], [0.5, 0.5], [15 / 16, 1 / 8]]))
    assert pixel_positions(fractions[:1], (160, 80)) == pytest.approx(np.array([[10.0, 10.0]]))


def test_rendering_draws_the_points_where_they_are_and_nothing_else(loaded, tmp_path):
    grey = Image.new("RGB", (400, 200), (128, 128, 128))
    explanation = explain_image(loaded, grey)
    picture = render_explanation(explanation, longer_side=800)
    assert picture.size == (800 + PANEL_WIDTH, 420)  # the photo keeps its 2:1 aspect: 800 x 400
    photo = np.asarray(picture)[:400, :800].astype(int)
    touched = np.abs(photo - 128).sum(axis=-1) > 0
    # every interest point has its red ring around it ...
    for block in explanation.blocks:
        for x, y in pixel_positions(block.interest, (800, 400)).astype(int)[::17]:
            around = photo[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7]
            assert (around == INTEREST_COLOUR).all(axis=-1).any(), (x, y)
    # ... and nothing is drawn far from every point
    marks = np.zeros_like(touched)
    for block in explanation.blocks:
        for x, y in pixel_positions(np.vstack([block.interest, block.positions]), (800, 400)).astype(int):
            marks[max(y - 8, 0) : max(y + 9, 0), max(x - 8, 0) : max(x + 9, 0)] = True
    assert touched.any() and not (touched & ~marks).any()


def test_explain_command_writes_the_picture(micro_model_path, wide_photo, tmp_path):
    out = tmp_path / "view.png"
    result = invoke("explain", wide_photo, "--model", micro_model_path, "--out", out, "--size", "600")
    assert result.stdout.startswith(f"wrote {out}: score ") and "untrained model" in result.stdout
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (600 + PANEL_WIDTH, 420)
    again = invoke("explain", wide_photo, "--model", micro_model_path, "--out", out, expect_ok=False)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    invoke("explain", wide_photo, "--model", micro_model_path, "--out", out, "--force", "--stage", "4", "--all-blocks")


def test_explain_refuses_clearly(micro_model_path, tmp_path):
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not a photo")
    photo = save_jpeg(tmp_path / "p.jpg", scene(1))
    cases = [
        ([text_file, "--model", micro_model_path, "--out", tmp_path / "a.png"], "not an image"),
        ([photo, "--model", micro_model_path, "--out", tmp_path / "a.png", "--stage", "1"], "no deformable blocks"),
        ([photo, "--model", "no-such-model", "--out", tmp_path / "a.png"], "no model 'no-such-model'"),
        ([photo, "--model", micro_model_path, "--out", tmp_path / "a.gif"], "write .png, .jpg or .webp"),
        ([photo, "--model", micro_model_path, "--out", tmp_path / "no" / "a.png"], "does not exist"),
    ]
    for arguments, message in cases:
        result = invoke("explain", *arguments, expect_ok=False)
        assert result.exit_code == 2 and message in result.output, (arguments, result.output)  # refused
    assert not (tmp_path / "a.png").exists()
