"""`eat-curate bench`: benchmarks that print figures and ratios against a baseline measured in the same run.

What each one measures lives in ``eat_curate.benchmarks``; these commands
parse options, call it and print its result.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from eat_curate.commands.options import Number, model_store, models_dir_option
from eat_curate.commands.output import to_json
from eat_curate.model.presets import PRESETS

json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
threads_option = click.option(
    "--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's choice)."
)


def dtype_option(help: str):
    return click.option(
        "--dtype", type=click.Choice(["fp32", "bf16", "both"]), default="both", show_default=True, help=help
    )


def dtypes_of(choice: str) -> tuple[str, ...]:
    return ("fp32", "bf16") if choice == "both" else (choice,)


def echo_result(result, report_lines: Iterable[str], as_json: bool) -> None:
    """A benchmark's figures as JSON, or its report for people."""
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    for line in report_lines:
        click.echo(line)


@click.group()
def bench() -> None:
    """Measure speed; every figure comes with a baseline measured in the same run."""


@bench.command("model")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@dtype_option("Our forward in fp32, bf16 autocast, or both (the published baseline always runs fp32).")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Timed rounds (median).")
@threads_option
@json_flag
def bench_model_command(preset: str, batch_size: int, dtype: str, rounds: int, threads: int | None, as_json: bool) -> None:
    """Forward img/s of our EAT against the published EAT forward, on random weights shared by both.

    Runs the two in turn every round (so machine noise hits both), checks
    that they give the same outputs, and prints the ratio.
    """
    from eat_curate.benchmarks.model_speed import bench_model, report_lines

    if dtype == "bf16":
        click.echo("note: fp32 is timed too; it is the reference for the bf16 score deviation", err=True)
    result = bench_model(preset, batch_size, with_bf16=dtype != "fp32", rounds=rounds, threads=threads)
    echo_result(result, report_lines(result), as_json)


@bench.command("presets")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="nano", show_default=True,
              help="The preset to measure.")
@click.option("--baseline", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True,
              help="The preset it is compared with, timed in the same rounds.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@dtype_option("Forward in fp32, bf16 autocast, or both.")
@click.option("--rounds", type=click.IntRange(1), default=7, show_default=True, help="Timed rounds (median).")
@threads_option
@json_flag
def bench_presets_command(preset: str, baseline: str, batch_size: int, dtype: str, rounds: int,
                          threads: int | None, as_json: bool) -> None:
    """Scoring speed of one preset against another (default: nano, the built-in model's, against tiny).

    Both run the predictor's forward on random weights, taking turns every
    round so machine noise hits both; prints img/s per dtype, the ratio, and
    each model's size as float16 weights. `score --dtype auto` runs bf16 on
    CPUs with fast bf16 (AVX512-BF16/AMX), fp32 on others.
    """
    from eat_curate.benchmarks.preset_speed import bench_presets, report_lines

    result = bench_presets(preset, baseline, batch_size, dtypes_of(dtype), rounds, threads)
    echo_result(result, report_lines(result), as_json)


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
    help="Score both decodes with this model (name in the store, or a model folder) and report the "
    "score difference against the bounds every decode path keeps. Default: the built-in model.",
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
@json_flag
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
    ratio. Scores both versions of every photo (with the built-in model unless
    --model names another) and prints the mean and max absolute score
    difference, against the bounds every decode path must keep (mean <= 0.01,
    max <= 0.05); the GPU path's decoder, on this machine's device, too. A
    trained model's scores are the ones that count; an untrained model's only
    show the mechanics.

    \b
    Example, on real photos:
      eat-curate bench decode .cache/wallpapers --fetch-debian-wallpapers
    """
    from eat_curate.benchmarks.decode import bench_decode, report_lines
    from eat_curate.scoring.predictor import Predictor

    if fetch_wallpapers:
        from eat_curate.samples.debian_wallpapers import fetch_debian_wallpapers

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
    echo_result(result, report_lines(result), as_json)


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
@json_flag
def bench_sinks_command(rows: int, batch_size: int, baseline_rows: int, pg_admin_url: str, no_postgres: bool,
                        as_json: bool) -> None:
    """Rows/s of the SQLite, PostgreSQL and Parquet sinks, each against the naive way in the same run.

    Synthetic score records are written in batches, as the engines write
    them. SQL baseline: one upsert and one commit per row. Parquet baseline:
    a single write_table of every row at the end (fast, but a crash loses all).
    Targets: SQLite >= 20,000 rows/s, PostgreSQL >= 50,000 rows/s.
    """
    from eat_curate.benchmarks.sinks import bench_sinks, report_lines

    result = bench_sinks(rows, batch_size, baseline_rows, None if no_postgres else pg_admin_url)
    echo_result(result, report_lines(result), as_json)


@bench.command("memory")
@click.option(
    "--rows", "row_counts", type=click.IntRange(1), multiple=True, default=(10_000, 1_000_000), show_default=True,
    help="Input sizes to compare (repeat the option).",
)
@click.option("--sink", "sinks", type=click.Choice(["parquet", "sqlite"]), multiple=True, default=("parquet", "sqlite"),
              show_default=True, help="Sinks to measure (repeat the option).")
@json_flag
def bench_memory_command(row_counts: tuple[int, ...], sinks: tuple[str, ...], as_json: bool) -> None:
    """Peak memory (RSS) of manifest -> sources -> constant prediction -> sink, per input size.

    Each size and sink runs in a fresh process; memory is flat when the peaks
    of the smallest and largest input stay within 200 MB of each other. The
    model and the decoder are left out: their memory does not grow with the input.
    """
    from eat_curate.benchmarks.memory import bench_memory, report_lines

    result = bench_memory(row_counts, sinks)
    echo_result(result, report_lines(result), as_json)


@bench.command("train")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@dtype_option("fp32, bf16 autocast, or both (bf16 is reported as a ratio to fp32, timed in the same rounds).")
@click.option("--steps", type=click.IntRange(1), default=3, show_default=True, help="Timed steps per dtype (median).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@threads_option
@json_flag
def bench_train_command(
    preset: str, batch_size: int, dtype: str, steps: int, device: str, threads: int | None, as_json: bool
) -> None:
    """Training img/s (forward + backward + Adam step) on random data, fp32 against bf16 autocast.

    The dtypes take turns every step, so machine noise hits both; one
    warm-up step each is not timed.
    """
    from eat_curate.benchmarks.train_speed import bench_training, report_lines
    from training.losses import emd_loss  # the trainer's loss

    result = bench_training(emd_loss, preset, batch_size, dtypes_of(dtype), steps=steps, device=device, threads=threads)
    echo_result(result, report_lines(result), as_json)


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
@click.option("--parquet/--no-parquet", default=True, show_default=True,
              help="Also time the same commands on a Parquet result of ROWS scores (read in place with DuckDB).")
@json_flag
def bench_read_command(rows: int, albums: int, targets: tuple[str, ...], rounds: int, parquet: bool,
                       as_json: bool) -> None:
    """Time `albums` and `rank` over generated scores, with and without the rank index, and on Parquet.

    Loads ROWS synthetic scores in ALBUMS albums into each database, then
    times the queries the read commands run: first with the schema's other
    indexes only (the baseline), then with ix_scores_model_album_rank; prints
    both and their ratio. Then writes the same number of rows as the Parquet
    file `score --out` would and times `albums` and `rank --top 10` on it.
    The target is under 2 s at 1,000,000 rows.
    """
    from eat_curate.benchmarks import read_parquet, read_side

    result = read_side.bench_read(list(targets) or None, rows=rows, albums=albums, rounds=rounds,
                                  progress=not as_json)
    parquet_result = read_parquet.bench_read_parquet(rows=rows, albums=albums, rounds=rounds) if parquet else None
    if as_json:
        figures = result.to_dict()
        if parquet_result is not None:
            figures["parquet"] = parquet_result.to_dict()
        click.echo(to_json(figures))
        return
    for line in read_side.report_lines(result):
        click.echo(line)
    if parquet_result is not None:
        for line in read_parquet.report_lines(parquet_result):
            click.echo(line)


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
@click.option("--cpus-per-actor", type=Number(0), default=1.0, show_default=True, help="Ray: CPUs the actor reserves.")
@click.option("--actor-threads", type=click.IntRange(1), default=None, help="Ray: torch threads of the actor.")
@click.option("--decode-cpus", type=Number(0), default=0.5, show_default=True,
              help="Ray: CPUs each decode task reserves.")
@click.option("--decode-chunk", type=click.IntRange(1), default=None,
              help="Ray: images per decode task (with --gpu-decode: per read task). Default: the engine's.")
@click.option("--device", default="auto", show_default=True,
              help="Ray: device of both engines' models: auto (CUDA when present), cpu, cuda, cuda:1, ...")
@click.option("--gpu-decode", is_flag=True, help="Ray: both engines decode JPEGs on the GPU (nvJPEG).")
@json_flag
def bench_score_command(folder: Path, model_ref: str, models_dir: Path | None, engine: str, batch_size: int,
                        workers: int, dtype: str, limit: int | None, camera_photos: int | None, rounds: int,
                        cpus_per_actor: float, actor_threads: int | None, decode_cpus: float, decode_chunk: int | None,
                        device: str, gpu_decode: bool, as_json: bool) -> None:
    """End-to-end scoring img/s on the images in FOLDER, with a baseline measured in the same run.

    \b
    --engine local: the in-process engine (draft JPEG decoding in a thread pool
      overlapping the model, dtype auto) against a naive loop (full Pillow
      decode, resize, the same model in fp32, batch 8, no overlap).
    --engine ray: the Ray engine on an embedded local Ray against the
      in-process engine (Ray: the rate once running, and its start cost apart), on the same
      device (--device) and with the same decoding (--gpu-decode).
    Nothing is written: records go to a sink that only counts them.
    """
    if engine == "local" and (gpu_decode or device != "auto"):
        raise click.UsageError("--device and --gpu-decode go with --engine ray (--engine local measures the CPU path)")
    model_folder = model_store(models_dir).resolve(model_ref)
    if camera_photos:
        from eat_curate.benchmarks.jpeg_folders import camera_photo_folder

        camera_photo_folder(folder, camera_photos)
    from eat_curate.scoring.engine import EngineOptions

    options = EngineOptions(batch_size=batch_size, workers=workers, gpu_decode=gpu_decode)
    if engine == "ray":
        from eat_curate.benchmarks.ray_engine_speed import bench_engines, report_lines
        from pipelines.ray_engine import RayEngine, RayOptions, ray_session

        ray_options = RayOptions(cpus_per_actor=cpus_per_actor, actor_threads=actor_threads, decode_cpus=decode_cpus,
                                 decode_chunk=decode_chunk, dtype=dtype, device=device)
        result = bench_engines(
            folder, model_folder, options,
            ray_engine=RayEngine(model_folder, options, ray_options),
            ray_session=ray_session(ray_options.address, ray_options.local_cpus),
            device=device, dtype=dtype, rounds=rounds, limit=limit,
        )
        echo_result(result, report_lines(result), as_json)
        return

    from eat_curate.benchmarks.score_speed import bench_score, report_lines
    from eat_curate.model.checkpoint import load_model

    result = bench_score(folder, load_model(model_folder), load_model(model_folder), batch_size, workers, dtype, limit)
    echo_result(result, report_lines(result, model_ref), as_json)


@bench.command("ray-start")
@click.option("--items", "count", type=click.IntRange(1), default=100_000, show_default=True,
              help="Synthetic to-do items (folder-listing rows).")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="Timed rounds (median).")
@json_flag
def bench_ray_start_command(count: int, rounds: int, as_json: bool) -> None:
    """Seconds before a Ray engine run can start scoring ITEMS to-do items, on an embedded local Ray.

    The driver cuts its to-do list into item blocks in the object store and
    Ray Data plans the Dataset over them, with a metadata task per block:
    the engine's blocks (1,024 rows, split to decode size inside the Dataset)
    against blocks of one decode task (16 rows, the baseline). Prints both
    steps' seconds and the ratio.
    """
    from eat_curate.benchmarks.ray_start import bench_ray_start, report_lines
    from pipelines.ray_engine import ray_session
    from pipelines.segments import ITEM_BLOCK_ROWS, segments

    def cut(items, block_rows: int) -> list:
        return [block for segment in segments(items, block_rows, len(items) + 1, 2**62) for block in segment.blocks]

    def plan(blocks: list):
        import ray.data

        return ray.data.from_arrow_refs(blocks)

    with ray_session(None, None):
        result = bench_ray_start(count, ITEM_BLOCK_ROWS, cut, plan, rounds)
    echo_result(result, report_lines(result), as_json)


@bench.command("raw")
@click.option("--files", type=click.IntRange(1), default=3, show_default=True, help="Generated DNGs per path.")
@click.option("--megapixels", type=Number(1, 60), default=12.0, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="Timed rounds (median).")
@json_flag
def bench_raw_command(files: int, megapixels: float, rounds: int, as_json: bool) -> None:
    """Camera RAW decoding: the embedded preview against a half-size demosaic (the baseline), on generated DNGs.

    Needs the raw extra (pip install 'eat-curate[raw]') and pidng, which
    writes the DNGs.
    """
    from eat_curate.benchmarks.raw_decode import bench_raw_decode, report_lines

    result = bench_raw_decode(files=files, megapixels=megapixels, rounds=rounds)
    echo_result(result, report_lines(result), as_json)


@bench.command("xmp")
@click.option("--images", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to make the scratch photos and sidecars (default: the system's temporary folder).")
@json_flag
def bench_xmp_command(images: int, folder: Path | None, as_json: bool) -> None:
    """Sidecars per second written by `eat-curate xmp`: new, merged into darktable's, and unchanged."""
    from eat_curate.benchmarks.xmp_speed import measure_xmp_speed, report_lines

    result = measure_xmp_speed(images=images, folder=folder)
    echo_result(result, report_lines(result), as_json)


@bench.command("dupes")
@click.option("--images", "sizes", type=click.IntRange(2), multiple=True, default=(5000, 10000, 20000),
              show_default=True, help="Images per shape (repeat for several sizes).")
@click.option("--distance", type=click.IntRange(0, 64), default=8, show_default=True,
              help="Bits two hashes may differ by, as `dupes --distance`.")
@json_flag
def bench_dupes_command(sizes: tuple[int, ...], distance: int, as_json: bool) -> None:
    """Grouping near-duplicates on hostile shapes of hashes, against the all-against-all comparison it replaced.

    Shapes: same (every image one hash, a lens-cap burst), near (all within a
    few bits of one another), random (unrelated photos). The baseline runs in
    the same process and must find the same groups; it is skipped where it
    would take minutes.
    """
    from eat_curate.benchmarks.duplicate_shapes import measure_duplicate_shapes, report_lines

    timings = measure_duplicate_shapes(tuple(sorted(set(sizes))), distance)
    if as_json:
        click.echo(to_json([timing.to_dict() for timing in timings]))
        return
    for line in report_lines(timings):
        click.echo(line)


@bench.command("listing")
@click.argument("manifest", required=False)
@click.option("--rows", type=click.IntRange(1), default=512, show_default=True,
              help="Without MANIFEST: images in the synthetic embedded manifest.")
@click.option("--image-kb", type=click.IntRange(1), default=600, show_default=True,
              help="Without MANIFEST: size of each synthetic image (random bytes), in KB.")
@click.option("--files", type=click.IntRange(1), default=20_000, show_default=True,
              help="Without MANIFEST: files (1 KB each) named by the synthetic path manifest.")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Timed rounds (median).")
@json_flag
def bench_listing_command(manifest: str | None, rows: int, image_kb: int, files: int, rounds: int,
                          as_json: bool) -> None:
    """Manifest listing items/s and MB/s: the batched lister against the old row-at-a-time one.

    The old lister turned every row into Python (image bytes included) and
    hashed each embedded image, or stat-ed each path, on its one thread; the
    lister now takes a record batch's columns whole and hashes or stats the
    batch on a thread pool. Both list MANIFEST (local or URL; rows naming a
    path twice are kept), taking turns every round, after a pass checking
    they give the same items; prints both rates and their ratio. Without
    MANIFEST: a synthetic manifest of embedded images (random bytes) and one
    of paths to small files, in a temporary folder.
    """
    from eat_curate.benchmarks.manifest_listing import bench_listing, report_lines

    result = bench_listing(manifest, rows=rows, image_kb=image_kb, files=files, rounds=rounds)
    echo_result(result, report_lines(result), as_json)
