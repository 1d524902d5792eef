"""`eat-curate explain`: the picture of where EAT looked in one image, beside its score distribution."""

from __future__ import annotations

from pathlib import Path

import click
from PIL import Image

from eat_curate.commands.options import model_store, models_dir_option, refuse_existing_output
from eat_curate.errors import EatCurateError


@click.command()
@click.argument("image", type=click.Path())  # text, not a Path: a URL's "//" is kept to be named as a URL
@click.option("--model", "model_ref", default=None, metavar="NAME|PATH",
              help="Model from the store (see `models list`) or a model folder. Default: the built-in model.")
@models_dir_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="VIEW.png",
              help="Picture to write (PNG, JPEG or WebP, by its extension).")
@click.option("--stage", "stages", type=click.IntRange(1, 4), multiple=True,
              help="Stage whose deformable points to draw (1-4; repeat). Default: the last two with deformable blocks.")
@click.option("--all-blocks", is_flag=True,
              help="Draw every deformable block of the chosen stages, not only the last of each.")
@click.option("--size", type=click.IntRange(128, 4096), default=768, show_default=True,
              help="Longer side of the drawn photo, in pixels.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ... (one image: cpu is fine).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def explain(image: str, model_ref: str | None, models_dir: Path | None, out: Path, stages: tuple[int, ...],
            all_blocks: bool, size: int, device: str, force: bool) -> None:
    """Draw where EAT looked in IMAGE: interest points and deformable sampling positions.

    The photo (its own aspect ratio) gets EAT's interest points (red rings)
    and the sampling positions of its deformable attention (dots, one colour
    per stage) drawn over it; beside it, the 10-bin score distribution with
    its mean and std. This is the picture the EAT paper uses to show that
    attention goes to the aesthetically relevant parts of a photo.

    \b
    Example:
      eat-curate explain photo.jpg --model my-eat --out photo-eat.png
    """
    from eat_curate.io.decode import open_for_model
    from eat_curate.io.decoded import DecodeError
    from eat_curate.io.remote import is_remote
    from eat_curate.io.sources import read_file
    from eat_curate.io.whole_files import written_whole
    from eat_curate.scoring.explain import explain_image, render_explanation
    from eat_curate.scoring.predictor import resolve_device

    refuse_existing_output(out, force)
    picture_format = Image.registered_extensions().get(out.suffix.lower())
    if picture_format not in ("PNG", "JPEG", "WEBP"):
        raise click.UsageError(f"--out {out}: write .png, .jpg or .webp")
    if is_remote(image):
        raise click.UsageError(f"{image}: explain reads a local file; download the image first")
    # Read as `score` reads: regular files only (a FIFO would block), at most the per-image cap;
    # a SourceReadError is one line. Before the model loads, so a bad path fails at once.
    data = read_file(image)
    store = model_store(models_dir)
    model_ref = model_ref or store.default_name()
    if not model_ref:
        raise EatCurateError("no --model given and no default model is installed; see `eat-curate models list`")
    # Decoded as `score` decodes it (reduced-scale JPEG decoding included): the two print the same score.
    try:
        picture = open_for_model(data, store.card(model_ref).input_size, name=Path(image).name)
    except DecodeError as error:
        raise EatCurateError(f"cannot explain {image}: {error}") from None
    loaded = store.load(model_ref, map_location=resolve_device(device))
    try:
        explanation = explain_image(loaded, picture, [s - 1 for s in stages] or None, last_block_only=not all_blocks)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--stage") from None
    # Whole or not at all: a full disk leaves no half picture (and --force keeps the old one); written
    # beside --out and renamed, so --force replaces even a FIFO there instead of blocking on it.
    with written_whole(out) as partial:
        render_explanation(explanation, longer_side=size).save(partial, format=picture_format)
    caveat = " (untrained model: random weights, the score means nothing)" if not explanation.trained else ""
    click.echo(f"wrote {out}: score {explanation.mean:.2f} ± {explanation.std:.2f} by {explanation.model_id}{caveat}")
