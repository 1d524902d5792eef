"""`eat-curate bench`: benchmarks that print figures and ratios against a baseline measured in the same run."""

from __future__ import annotations

from pathlib import Path

import click

from eat_curate.commands.options import model_store, models_dir_option
from eat_curate.commands.output import to_json
from eat_curate.model.presets import PRESETS


@click.group()
def bench() -> None:
    """Measure speed; every figure comes with a baseline measured in the same run."""


@bench.command("model")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16", "both"]),
    default="both",
    show_default=True,
    help="Our forward in fp32, bf16 autocast, or both (the published baseline always runs fp32).",
)
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Timed rounds (median).")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_model_command(preset: str, batch_size: int, dtype: str, rounds: int, threads: int | None, as_json: bool) -> None:
    """Forward img/s of our EAT against the published EAT forward, on random weights shared by both.

    Runs the two in turn every round (so machine noise hits both), checks
    that they give the same outputs, and prints the ratio.
    """
    from eat_curate.benchmarks.model_speed import bench_model

    if dtype == "bf16":
        click.echo("note: fp32 is timed too; it is the reference for the bf16 score deviation", err=True)
    result = bench_model(preset, batch_size, with_bf16=dtype != "fp32", rounds=rounds, threads=threads)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"EAT-{result.preset}, batch {result.batch_size}, {result.threads} threads, median of {result.rounds} rounds")
    click.echo(f"  published forward (fp32)  {result.published_fp32_img_s:8.2f} img/s")
    click.echo(f"  eat-curate (fp32)         {result.ours_fp32_img_s:8.2f} img/s   {result.fp32_ratio:.2f}x")
    if result.ours_bf16_img_s is not None:
        click.echo(f"  eat-curate (bf16)         {result.ours_bf16_img_s:8.2f} img/s   {result.bf16_ratio:.2f}x")
    click.echo(f"  same outputs: max |logit diff| fp32 {result.max_abs_logit_diff_fp32:.2e}")
    if result.mean_abs_score_diff_bf16 is not None:
        click.echo(f"  bf16 vs fp32: mean |score diff| {result.mean_abs_score_diff_bf16:.4f} (softmax head, random weights)")


@bench.command("presets")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="nano", show_default=True,
              help="The preset to measure.")
@click.option("--baseline", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True,
              help="The preset it is compared with, timed in the same rounds.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--dtype", type=click.Choice(["fp32", "bf16", "both"]), default="both", show_default=True,
              help="Forward in fp32, bf16 autocast, or both.")
@click.option("--rounds", type=click.IntRange(1), default=7, show_default=True, help="Timed rounds (median).")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_presets_command(preset: str, baseline: str, batch_size: int, dtype: str, rounds: int,
                          threads: int | None, as_json: bool) -> None:
    """Scoring speed of one preset against another (default: nano, the built-in model's, against tiny).

    Both run the predictor's forward on random weights, taking turns every
    round so machine noise hits both; prints img/s per dtype, the ratio, and
    each model's size as float16 weights. `score --dtype auto` runs bf16 on
    CPUs with fast bf16 (AVX512-BF16/AMX), fp32 on others.
    """
    from eat_curate.benchmarks.model_speed import bench_presets
    from eat_curate.scoring.predictor import cpu_has_fast_bf16

    dtypes = ("fp32", "bf16") if dtype == "both" else (dtype,)
    result = bench_presets(preset, baseline, batch_size, dtypes, rounds, threads)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"EAT-{preset} against EAT-{baseline}, batch {batch_size}, {result.threads} threads, "
               f"median of {rounds} rounds (scoring forward, random weights)")
    for row in result.rows:
        click.echo(f"  {row.dtype}  {baseline} {row.baseline_img_s:8.2f} img/s   {preset} {row.preset_img_s:8.2f} img/s"
                   f"   {row.ratio:.2f}x")
    click.echo(f"  weights as float16: {baseline} {result.baseline_weights_mb:.1f} MB, {preset} {result.preset_weights_mb:.1f} MB")
    click.echo(f"  `score --dtype auto` runs {'bf16' if cpu_has_fast_bf16() else 'fp32'} on this CPU")


@bench.command("decode")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--fetch-debian-wallpapers",
    "fetch_wallpapers",
    is_flag=True,
    help="Download Debian's wallpaper photos (real camera-size JPEGs) into FOLDER with apt-get "
    "(kept there for later runs) and use those photos, without the packages' small previews.",
)
@click.option(
    "--model",
    default=None,
    help="Also score both decodes with this model (name in the store, or a model folder) "
    "and report the score difference.",
)
@models_dir_option
@click.option(
    "--size",
    type=click.IntRange(16),
    default=None,
    help="Decode target, pixels per side (default: the model's input size, else 224).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most N JPEGs.")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="Timed rounds (median).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_decode_command(
    folder: Path,
    fetch_wallpapers: bool,
    model: str | None,
    models_dir: Path | None,
    size: int | None,
    limit: int | None,
    rounds: int,
    as_json: bool,
) -> None:
    """JPEG decode img/s: full resolution + resize against draft (reduced-scale) decode + resize.

    Decodes every JPEG under FOLDER both ways with the pipeline's decoder, on
    one thread, the two in turn every round, and prints both rates and their
    ratio. With --model, scores both versions of every photo and prints the
    mean and max absolute score difference: draft decoding is kept only while
    the mean stays <= 0.02 on real photos (a trained model's scores are the
    ones that count; an untrained model's only show the mechanics).

    \b
    Example, on real photos:
      eat-curate bench decode .cache/wallpapers --fetch-debian-wallpapers --model NAME
    """
    from eat_curate.benchmarks.decode import MAX_MEAN_ABS_SCORE_DIFF, bench_decode
    from eat_curate.scoring.predictor import Predictor

    if fetch_wallpapers:
        from eat_curate.benchmarks.photos import fetch_debian_wallpapers

        sources = [str(path) for path in fetch_debian_wallpapers(folder)]
        click.echo(f"{len(sources)} Debian wallpaper photos in {folder}", err=True)
    elif folder.is_dir():
        sources = [str(folder)]
    else:
        raise click.BadParameter(f"no such folder: {folder}", param_hint="FOLDER")

    predictor = Predictor.from_store(model, model_store(models_dir)) if model else None
    if predictor is not None and size not in (None, predictor.input_size):
        raise click.BadParameter(
            f"model {model} takes {predictor.input_size} px; drop --size or match it", param_hint="--size"
        )
    size = predictor.input_size if predictor is not None else size or 224
    result = bench_decode(sources, size=size, limit=limit, rounds=rounds, predictor=predictor)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(
        f"{result.images} JPEGs (median {result.median_megapixels:.1f} MP) decoded to {result.size}x{result.size}, "
        f"1 thread, median of {result.rounds} rounds"
    )
    click.echo(f"  full decode + resize   {result.full_img_s:8.2f} img/s")
    click.echo(f"  draft decode + resize  {result.draft_img_s:8.2f} img/s   {result.ratio:.2f}x")
    click.echo(f"  model pixels: mean |diff| {result.mean_abs_pixel_diff:.2f} / 255")
    if result.mean_abs_score_diff is not None:
        verdict = "within" if result.within_score_bar else "OVER"
        caveat = "" if result.model_trained else ", untrained: random weights"
        click.echo(
            f"  scores, draft vs full ({result.model_id}{caveat}): mean |diff| {result.mean_abs_score_diff:.4f}, "
            f"max |diff| {result.max_abs_score_diff:.4f}, {verdict} the {MAX_MEAN_ABS_SCORE_DIFF} bar"
        )


@bench.command("sinks")
@click.option("--rows", type=click.IntRange(1), default=100_000, show_default=True, help="Rows written to each sink.")
@click.option("--batch-size", type=click.IntRange(1), default=1000, show_default=True, help="Rows per write.")
@click.option(
    "--baseline-rows", type=click.IntRange(1), default=2000, show_default=True,
    help="Rows for the naive SQL baseline (one commit per row is slow).",
)
@click.option(
    "--db", "pg_admin_url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres", show_default=True,
    metavar="URL", help="PostgreSQL admin URL: a temporary database is created there and dropped after.",
)
@click.option("--no-postgres", is_flag=True, help="Skip PostgreSQL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_sinks_command(rows: int, batch_size: int, baseline_rows: int, pg_admin_url: str, no_postgres: bool,
                        as_json: bool) -> None:
    """Rows/s of the SQLite, PostgreSQL and Parquet sinks, each against the naive way in the same run.

    Synthetic score records are written in batches, as the engines write
    them. SQL baseline: one upsert and one commit per row. Parquet baseline:
    a single write_table of every row at the end (fast, but a crash loses all).
    Targets: SQLite >= 20,000 rows/s, PostgreSQL >= 50,000 rows/s.
    """
    from eat_curate.benchmarks.sinks import bench_sinks

    result = bench_sinks(rows, batch_size, baseline_rows, None if no_postgres else pg_admin_url)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"{result.rows:,} synthetic score records in batches of {result.batch_size:,}")
    for figure in result.figures:
        click.echo(
            f"  {figure.sink:<10} {figure.rows_per_s:>10,.0f} rows/s   baseline ({figure.baseline}, "
            f"{figure.baseline_rows:,} rows) {figure.baseline_rows_per_s:>10,.0f} rows/s   {figure.ratio:6.2f}x"
        )
    for sink, reason in result.skipped.items():
        click.echo(f"  {sink:<10} skipped: {reason}")


@bench.command("memory")
@click.option(
    "--rows", "row_counts", type=click.IntRange(1), multiple=True, default=(10_000, 1_000_000), show_default=True,
    help="Input sizes to compare (repeat the option).",
)
@click.option("--sink", "sinks", type=click.Choice(["parquet", "sqlite"]), multiple=True, default=("parquet", "sqlite"),
              show_default=True, help="Sinks to measure (repeat the option).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_memory_command(row_counts: tuple[int, ...], sinks: tuple[str, ...], as_json: bool) -> None:
    """Peak memory (RSS) of manifest -> sources -> constant prediction -> sink, per input size.

    Each size and sink runs in a fresh process; memory is flat when the peaks
    of the smallest and largest input stay within 200 MB of each other. The
    model and the decoder are left out: their memory does not grow with the input.
    """
    from eat_curate.benchmarks.memory import TARGET_SPREAD_MB, bench_memory

    result = bench_memory(row_counts, sinks)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    for figure in result.figures:
        click.echo(
            f"  {figure.sink:<8} {figure.rows:>10,} rows  peak RSS {figure.peak_rss_mb:8.1f} MB "
            f"(after imports {figure.rss_after_imports_mb:.1f} MB)  {figure.seconds:7.1f} s "
            f"({figure.rows / figure.seconds:,.0f} rows/s)"
        )
    for sink in sinks:
        spread = result.spread_mb(sink)
        verdict = "within" if spread <= TARGET_SPREAD_MB else "OVER"
        click.echo(f"  {sink}: largest minus smallest input: {spread:+.1f} MB, {verdict} the {TARGET_SPREAD_MB} MB bar")


@bench.command("train")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16", "both"]),
    default="both",
    show_default=True,
    help="fp32, bf16 autocast, or both (bf16 is reported as a ratio to fp32, timed in the same rounds).",
)
@click.option("--steps", type=click.IntRange(1), default=3, show_default=True, help="Timed steps per dtype (median).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_train_command(
    preset: str, batch_size: int, dtype: str, steps: int, device: str, threads: int | None, as_json: bool
) -> None:
    """Training img/s (forward + backward + Adam step) on random data, fp32 against bf16 autocast.

    The dtypes take turns every step, so machine noise hits both; one
    warm-up step each is not timed.
    """
    from training.bench import bench_training

    dtypes = ("fp32", "bf16") if dtype == "both" else (dtype,)
    result = bench_training(preset, batch_size, dtypes, steps=steps, device=device, threads=threads)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(
        f"EAT-{result.preset} training, batch {result.batch_size}, {result.device}, "
        f"{result.threads} threads, median of {result.steps} steps"
    )
    if result.fp32_img_s is not None:
        click.echo(f"  fp32 (baseline)   {result.fp32_img_s:8.2f} img/s")
    if result.bf16_img_s is not None:
        ratio = f"   {result.bf16_ratio:.2f}x" if result.bf16_ratio else ""
        click.echo(f"  bf16 autocast     {result.bf16_img_s:8.2f} img/s{ratio}")


@bench.command("read")
@click.option("--rows", type=click.IntRange(1000), default=1_000_000, show_default=True, help="Score rows to generate.")
@click.option("--albums", type=click.IntRange(1), default=400, show_default=True, help="Albums they fall into.")
@click.option(
    "--db",
    "targets",
    multiple=True,
    metavar="URL",
    help="Where to run (repeat for several): an SQLite file path (created, then deleted) or a PostgreSQL "
    "server URL (a temporary database is created on it and dropped). Default: a temporary SQLite file "
    "and postgresql+psycopg://postgres@127.0.0.1:5432/postgres.",
)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="Timed rounds (median).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_read_command(rows: int, albums: int, targets: tuple[str, ...], rounds: int, as_json: bool) -> None:
    """Time `albums` and `rank` over generated scores, with and without the rank index.

    Loads ROWS synthetic scores in ALBUMS albums into each database, then
    times the queries the read commands run: first with the schema's other
    indexes only (the baseline), then with ix_scores_model_album_rank; prints
    both and their ratio. The target is under 2 s at 1,000,000 rows.
    """
    from eat_curate.benchmarks.read_side import TARGET_S, bench_read

    result = bench_read(list(targets) or None, rows=rows, albums=albums, rounds=rounds, progress=not as_json)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"read side: {result.rows:,} scores in {result.albums} albums, median of {result.rounds} rounds")
    for backend in result.backends:
        click.echo(f"\n{backend.backend} ({backend.where}): loaded and analysed in {backend.load_s:.1f} s")
        click.echo(f"  {'query':<28} {'indexed':>9} {'no rank index':>14} {'ratio':>7}")
        for timing in backend.timings:
            click.echo(
                f"  {timing.query:<28} {timing.indexed_s:>8.3f}s {timing.baseline_s:>13.3f}s {timing.ratio:>6.1f}x"
            )
        verdict = "met" if backend.meets_target else "NOT met"
        click.echo(f"  target: albums and rank under {TARGET_S:g} s: {verdict}")
    for reason in result.skipped:
        click.echo(f"\nskipped {reason}")


@bench.command("score")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "model_ref", required=True, help="Model name in the store or a model folder.")
@models_dir_option
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: the in-process engine against a naive loop. ray: the Ray engine against the in-process one.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True, help="Decode threads (0: one per core).")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use only the first N images.")
@click.option("--camera-photos", type=click.IntRange(1), default=None, metavar="N",
              help="First fill FOLDER with N camera-size (12 MP) JPEGs made from Debian's wallpaper photos.")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="Ray: timed rounds (median).")
@click.option("--cpus-per-actor", type=float, default=1.0, show_default=True, help="Ray: CPUs the actor reserves.")
@click.option("--actor-threads", type=click.IntRange(1), default=None, help="Ray: torch threads of the actor.")
@click.option("--decode-cpus", type=float, default=0.5, show_default=True, help="Ray: CPUs each decode task reserves.")
@click.option("--decode-chunk", type=click.IntRange(1), default=None,
              help="Ray: images per decode task (with --gpu-decode: per read task). Default: the engine's.")
@click.option("--device", default="auto", show_default=True,
              help="Ray: device of both engines' models: auto (CUDA when present), cpu, cuda, cuda:1, ...")
@click.option("--gpu-decode", is_flag=True, help="Ray: both engines decode JPEGs on the GPU (nvJPEG).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_score_command(folder: Path, model_ref: str, models_dir: Path | None, engine: str, batch_size: int,
                        workers: int, dtype: str, limit: int | None, camera_photos: int | None, rounds: int,
                        cpus_per_actor: float, actor_threads: int | None, decode_cpus: float, decode_chunk: int,
                        device: str, gpu_decode: bool, as_json: bool) -> None:
    """End-to-end scoring img/s on the images in FOLDER, with a baseline measured in the same run.

    \b
    --engine local: the in-process engine (draft JPEG decoding in a thread pool
      overlapping the model, dtype auto) against a naive loop (full Pillow
      decode, resize, the same model in fp32, batch 8, no overlap).
    --engine ray: the Ray engine on an embedded local Ray against the
      in-process engine, both with their models already loaded, on the same
      device (--device) and with the same decoding (--gpu-decode).
    Nothing is written: records go to a sink that only counts them.
    """
    if engine == "local" and (gpu_decode or device != "auto"):
        raise click.UsageError("--device and --gpu-decode go with --engine ray (--engine local measures the CPU path)")
    store = model_store(models_dir)
    model_folder = store.resolve(model_ref)
    if camera_photos:
        from eat_curate.benchmarks.photos import fetch_debian_wallpapers
        from eat_curate.benchmarks.score_speed import camera_size_folder

        photos = fetch_debian_wallpapers(folder.parent / ".wallpapers")
        camera_size_folder([p for p in photos if p.suffix.lower() in (".jpg", ".jpeg")], folder, camera_photos)
    from eat_curate.scoring.engine import EngineOptions

    options = EngineOptions(batch_size=batch_size, workers=workers, gpu_decode=gpu_decode)
    if engine == "ray":
        from pipelines.bench import bench_engines
        from pipelines.ray_engine import RayOptions

        chunk = {"decode_chunk": decode_chunk} if decode_chunk else {}
        ray_options = RayOptions(cpus_per_actor=cpus_per_actor, actor_threads=actor_threads, decode_cpus=decode_cpus,
                                 dtype=dtype, device=device, **chunk)
        result = bench_engines(folder, model_folder, options, ray_options, rounds=rounds, limit=limit)
        if as_json:
            click.echo(to_json(result.to_dict()))
            return
        decoding = "GPU (nvJPEG)" if result.gpu_decode else "CPU"
        click.echo(f"{result.images} images, {result.device}, batch {result.batch_size}, {result.dtype}, "
                   f"{decoding} decoding, median of {result.rounds} rounds")
        click.echo(f"  in-process engine (baseline)  {result.local_img_s:8.2f} img/s")
        click.echo(f"  Ray engine ({result.ray_actors} actor)         {result.ray_img_s:8.2f} img/s   {result.ratio:.2f}x")
        return

    from eat_curate.benchmarks.score_speed import bench_score
    from eat_curate.model.checkpoint import load_model

    result = bench_score(folder, load_model(model_folder), load_model(model_folder), batch_size, workers, dtype, limit)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    click.echo(f"{result.images} images, {result.megapixels_mean:.1f} MP on average, model {model_ref}")
    click.echo(f"  naive loop (full decode, fp32, batch 8)   {result.naive_img_s:8.2f} img/s")
    click.echo(f"  in-process engine ({result.engine_dtype}, batch {result.batch_size}, "
               f"{result.workers} decode threads)  {result.engine_img_s:8.2f} img/s   {result.ratio:.2f}x")
    click.echo(f"  mean |score diff| engine vs naive: {result.mean_abs_score_diff:.4f} (draft decode + dtype)")
