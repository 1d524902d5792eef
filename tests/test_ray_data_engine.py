"""The Ray engine's Ray Data plan: Arrow blocks that make the in-process engine's records (on the CPU
decode path, and on the GPU path at full size), batches of error rows kept from the model, predictors
built as the in-process engine builds them, decoding kept in CPU tasks, the input cut into segments,
and actors that cannot load their model.

On a real local Ray (tests/local_ray.py). The in-process engine's steps
(eat_curate.scoring.tasks) are the reference: the Ray engine must give the
same record for every input, hostile ones included.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_photo
from hostile_files import CAPTURED_AT, ROTATED_NAME, photo, encode, write_hostile_folder
from local_ray import constant_model_noting_loads, loading_processes, ray_local, score_with  # noqa: F401 (a fixture)

pytestmark = pytest.mark.ray

RUN_ID = "run-ray-blocks"


def inputs(tmp_path: Path) -> tuple[list, dict]:
    """Hostile files (every error kind, EXIF rotation and capture time), large progressive and CMYK JPEGs
    (which a GPU decoder leaves to its CPU fallback, where reduced-scale decoding would change their pixels),
    and a manifest of embedded images with extra columns; and {file name: expected error kind} for the files."""
    from eat_curate.io.sources import iter_items

    expected = write_hostile_folder(tmp_path / "hostile")
    large = tmp_path / "large"
    large.mkdir()
    big = photo(size=(1600, 1400), seed=3)
    (large / "progressive.jpg").write_bytes(encode(big, "JPEG", quality=90, progressive=True))
    (large / "cmyk.jpg").write_bytes(encode(big.convert("CMYK"), "JPEG", quality=90))
    expected.update({"progressive.jpg": None, "cmyk.jpg": None})
    manifest = tmp_path / "embedded.parquet"
    pq.write_table(pa.table({
        "image": [encode(photo(seed=20), "JPEG", quality=90), b"", encode(photo(seed=21), "PNG")],
        "lens": ["35mm", None, "50mm"],
        "rating": [4.5, 1.0, None],
        "tags": [["sea", "dusk"], [], ["portrait"]],
    }), manifest)
    return list(iter_items([str(tmp_path / "hostile"), str(large), str(manifest)])), expected


def in_process_records(items: list, predictor, gpu_decoder=None) -> list:
    """The in-process engine's records for ``items``, all in one batch (``gpu_decoder``: as with --gpu-decode)."""
    from eat_curate.scoring.tasks import decode_item, decode_read_items, read_item, score_entries

    if gpu_decoder is None:
        entries = [decode_item(item, predictor.input_size, draft=True) for item in items]
    else:
        entries = decode_read_items([read_item(item, with_header=True) for item in items], gpu_decoder)
    return score_entries(entries, predictor, predictor.model_id, RUN_ID)


def ray_block_records(items: list, actor, gpu_decode: bool) -> list:
    """The Ray engine's records for ``items``, as one block through its stages: item rows, a decode (or read)
    task, a scoring actor, records on the driver."""
    from pipelines.decode_tasks import decode_block, read_block
    from pipelines.item_rows import items_table
    from pipelines.score_records import records_from_block

    rows = items_table(items)
    if gpu_decode:
        prepared = read_block(rows, max_bytes=None)
    else:
        prepared = decode_block(rows, actor.predictor.input_size, draft=True, max_bytes=None)
    return records_from_block(actor(prepared), actor.predictor.model_id, RUN_ID)


def without_time(record) -> dict:
    return {name: value for name, value in dataclasses.asdict(record).items() if name != "scored_at"}


@pytest.mark.parametrize("gpu_decode", [False, True], ids=["cpu-decode", "gpu-decoder-on-cpu"])
def test_every_input_gets_the_in_process_engines_record_through_the_blocks(ray_local, micro_model_path, tmp_path,
                                                                            gpu_decode):
    from eat_curate.model.card import WEIGHTS_FILE, read_card
    from eat_curate.scoring.gpu_decode import GpuJpegDecoder
    from pipelines.scoring_actor import ScoringActor, build_predictor

    items, expected = inputs(tmp_path)
    card = read_card(micro_model_path).to_dict()
    weights = (micro_model_path / WEIGHTS_FILE).read_bytes()
    # The scoring stage's class is plain Python: Ray Data decides where it runs, here in this process.
    actor = ScoringActor(build_predictor, card, [ray_local.put(weights)], "cpu", "fp32", None, gpu_decode, 16)
    predictor = build_predictor(card, weights, "cpu", "fp32")
    # The in-process engine's --gpu-decode decoder: full size, its CPU fallback included.
    decoder = GpuJpegDecoder(predictor.input_size, "cpu") if gpu_decode else None

    ours = ray_block_records(items, actor, gpu_decode)
    theirs = in_process_records(items, predictor, decoder)

    assert [without_time(record) for record in ours] == [without_time(record) for record in theirs]
    kinds = {Path(record.path).name: record.error_kind for record in ours if "#" not in record.path}
    assert kinds == expected
    rotated = next(record for record in ours if record.path.endswith(ROTATED_NAME))
    assert (rotated.oriented_width, rotated.oriented_height) == (20, 40)
    assert rotated.captured_at.strftime("%Y:%m:%d %H:%M:%S") == CAPTURED_AT
    embedded = [record for record in ours if "#" in record.path]
    assert [record.extra for record in embedded] == [
        {"lens": "35mm", "rating": 4.5, "tags": ["sea", "dusk"]},
        {"lens": None, "rating": 1.0, "tags": []},
        {"lens": "50mm", "rating": None, "tags": ["portrait"]},
    ]
    assert [record.error_kind for record in embedded] == [None, "empty", None]


def test_blocks_carry_arrow_columns_and_pixels_never_reach_the_driver(ray_local, micro_model_path, tmp_path):
    from eat_curate.model.card import WEIGHTS_FILE, read_card
    from pipelines.decode_tasks import decode_block
    from pipelines.item_rows import items_table
    from pipelines.scoring_actor import ScoringActor, build_predictor

    items, _ = inputs(tmp_path)
    card = read_card(micro_model_path).to_dict()
    weights = ray_local.put((micro_model_path / WEIGHTS_FILE).read_bytes())
    actor = ScoringActor(build_predictor, card, [weights], "cpu", "fp32", None, False, 16)

    decoded = decode_block(items_table(items), 224, draft=True, max_bytes=None)
    scored = actor(decoded)

    assert decoded.schema.field("pixels").type.shape == (224, 224, 3)
    for table in (decoded, scored):
        # Typed columns only: Ray Data stores Python objects it cannot type as pickles.
        assert not any("python_object" in str(field.type) for field in table.schema)
    assert "pixels" not in scored.column_names and scored.num_rows == len(items)
    assert scored.schema.field("probabilities").type == pa.list_(pa.float32(), 10)


def test_a_batch_of_error_rows_only_never_reaches_the_model(ray_local, micro_model_path, tmp_path):
    from eat_curate.io.sources import iter_items
    from eat_curate.model.card import read_card
    from pipelines.decode_tasks import decode_block
    from pipelines.item_rows import items_table
    from pipelines.score_records import records_from_block
    from pipelines.scoring_actor import ScoringActor

    class NoImagesExpected:
        input_size = 224

        def predict(self, pixels):
            raise AssertionError(f"the model was given {len(pixels)} images")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "empty.jpg").write_bytes(b"")
    (broken / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    card = read_card(micro_model_path).to_dict()
    actor = ScoringActor(lambda *_: NoImagesExpected(), card, [ray_local.put(b"")], "cpu", "fp32", None, False, 2)

    scored = actor(decode_block(items_table(list(iter_items([str(broken)]))), 224, draft=True, max_bytes=None))

    records = records_from_block(scored, "model", RUN_ID)
    assert sorted((Path(r.path).name, r.error_kind, r.mean, r.probabilities) for r in records) == [
        ("empty.jpg", "empty", None, None), ("truncated.jpg", "truncated", None, None)]


def test_the_actors_build_their_predictor_as_the_in_process_engine_does(ray_local, micro_model_path, monkeypatch):
    """--compile and --cuda-graphs reach each actor's predictor, which is fixed at the run's batch size
    (a compiled forward is traced once, at that size)."""
    import eat_curate.scoring.predictor as predictor_module
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions, scoring_pool
    from pipelines.scoring_actor import ScoringActor

    asked: dict = {}

    class AskedFor(predictor_module.Predictor):
        def __init__(self, loaded, **options) -> None:
            asked.update(options)
            super().__init__(loaded, device=options["device"], dtype=options["dtype"])  # a CPU compiles nothing

    monkeypatch.setattr(predictor_module, "Predictor", AskedFor)
    ray_options = RayOptions(device="cpu", dtype="fp32", compile=True, cuda_graphs=True)
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=8), ray_options)
    plan = engine.scoring_plan(scoring_pool(ray_options, cluster_gpus=0))

    actor = ScoringActor(plan.predictor_factory, plan.card, [plan.weights], plan.device, plan.dtype, None, False,
                         plan.batch_size)

    assert asked == {"device": "cpu", "dtype": "fp32", "compile": True, "cuda_graphs": True}
    assert actor.predictor.fixed_batch == 8


def test_decoding_stays_in_cpu_tasks_apart_from_the_actors_when_both_reserve_the_same_cpus(
    ray_local, micro_model_path, tmp_path
):
    from eat_curate.io.sources import iter_items
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions, scoring_pool
    from pipelines.scoring_dataset import scoring_dataset
    from pipelines.segments import segments

    for i in range(6):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", size=(120, 90), seed=i)
    loads = tmp_path / "loads"
    loads.mkdir()
    same = RayOptions(cpus_per_actor=0.5, decode_cpus=0.5)
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=2), same,
                       predictor_factory=constant_model_noting_loads(loads))
    [segment] = segments(iter_items([str(tmp_path / "photos")]), block_rows=2, segment_rows=100, segment_bytes=2**30)
    dataset = scoring_dataset(segment.blocks, engine.scoring_plan(scoring_pool(same, cluster_gpus=0)), decode_rows=2)

    assert sum(rows.num_rows for rows in dataset.iter_batches(batch_format="pyarrow", batch_size=None)) == 6
    operators = [line for line in dataset.stats().splitlines() if line.startswith("Operator")]
    assert any("MapBatches(decode_block):" in line for line in operators), operators
    assert any("MapBatches(ScoringActor):" in line for line in operators), operators


def test_segments_hold_only_references_to_blocks_cut_at_the_row_and_byte_limits(ray_local, tmp_path):
    from eat_curate.io.sources import SourceItem
    from pipelines.item_rows import readable_items
    from pipelines.segments import segments

    items = [SourceItem(key=f"/photos/{i}.jpg", image_id=f"id{i}", album="a", size=100 + i, mtime=1.5 * i)
             for i in range(10)]
    by_rows = list(segments(items, block_rows=3, segment_rows=6, segment_bytes=2**30))
    assert [(segment.rows, len(segment.blocks)) for segment in by_rows] == [(6, 2), (4, 2)]
    assert all(isinstance(block, ray_local.ObjectRef) for segment in by_rows for block in segment.blocks)
    blocks = [ray_local.get(block) for segment in by_rows for block in segment.blocks]
    assert [item for block in blocks for item in readable_items(block)] == items

    one_block_each = list(segments(items, block_rows=3, segment_rows=100, segment_bytes=1))
    assert [segment.rows for segment in one_block_each] == [3, 3, 3, 1]


def test_the_cutter_lists_a_segment_for_as_long_as_it_is_given(ray_local):
    from eat_curate.io.sources import SourceItem
    from pipelines.segments import SegmentCutter

    now = [0.0]

    def listing():  # each item takes a second to list
        for i in range(10):
            now[0] += 1.0
            yield SourceItem(key=f"/photos/{i}.jpg", image_id=f"id{i}", album="a")

    cutter = SegmentCutter(listing(), block_rows=2, segment_rows=4, segment_bytes=2**30, clock=lambda: now[0])
    cutter.fill(3.0)  # a block takes 2 s: two blocks cross the 3 s
    first = cutter.take()
    cutter.fill(0.0)  # no time left: still one block, so listing always moves on
    cutter.fill(None)  # the rest, up to the segment's limit of 4 rows
    second = cutter.take()
    cutter.fill(None)

    assert (first.rows, second.rows, cutter.take().rows) == (4, 4, 2)
    assert cutter.listed_all and cutter.take() is None


def test_scoring_starts_before_the_listing_ends(ray_local, micro_model_path, tmp_path):
    """The first segment closes after ``first_segment_s`` of listing; the rest is listed between batches."""
    from eat_curate.io.sources import iter_items
    from eat_curate.model.card import read_card
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.engine import EngineOptions
    from eat_curate.scoring.execute import execute_run
    from eat_curate.sinks.outputs import open_sinks
    from local_ray import RecordingProgress
    from pipelines.ray_engine import RayEngine, RayOptions

    folder = tmp_path / "photos"
    for i in range(12):
        make_photo(folder / f"p{i:02d}.jpg", size=(120, 90), seed=i)
    events = []

    def listed():
        for item in iter_items([str(folder)]):
            events.append("listed")
            yield item

    class Noting(RecordingProgress):
        def advance(self, records) -> None:
            super().advance(records)
            events.append("scored")

    loads = tmp_path / "loads"
    loads.mkdir()
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=2, lookup_chunk=2),  # sinks asked 2 at a time
                       RayOptions(cpus_per_actor=0.5, decode_cpus=0.25, decode_chunk=2, block_rows=2,
                                  first_segment_s=0.0),
                       predictor_factory=constant_model_noting_loads(loads))
    card = read_card(micro_model_path)
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, [str(folder)], engine="ray")
    out = tmp_path / "scores.parquet"

    summary = execute_run(engine, listed(), open_sinks(out=str(out), db=None), run, card, Noting())

    assert (summary.ok, summary.failed) == (12, 0)
    assert events.index("scored") < len(events) - 1 - events[::-1].index("listed")  # a batch saved mid-listing
    assert sorted(Path(row["path"]).name for row in pq.read_table(out).to_pylist()) == [
        f"p{i:02d}.jpg" for i in range(12)]
    assert len(loading_processes(loads)) == 2  # the first block alone, then the rest as one segment


def test_the_ray_start_bench_measures_both_block_sizes_and_their_ratio(ray_local):
    import json

    from click.testing import CliRunner

    from eat_curate.cli import cli

    result = CliRunner().invoke(cli, ["bench", "ray-start", "--items", "300", "--rounds", "1", "--json"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["baseline"]["block_rows"], figures["baseline"]["blocks"]) == (16, 19)  # 300 = 18 x 16 + 12
    assert (figures["engine"]["block_rows"], figures["engine"]["blocks"]) == (1024, 1)
    assert all(figures[side][step] > 0 for side in ("baseline", "engine") for step in ("cut_s", "plan_s"))


def test_a_run_longer_than_a_segment_scores_every_image_once(ray_local, micro_model_path, tmp_path):
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions

    folder = tmp_path / "photos"
    for i in range(12):
        make_photo(folder / f"p{i:02d}.jpg", size=(120, 90), seed=i)
    loads = tmp_path / "loads"
    loads.mkdir()
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=2),
                       RayOptions(cpus_per_actor=0.5, decode_cpus=0.25, decode_chunk=2, block_rows=3, segment_rows=6),
                       predictor_factory=constant_model_noting_loads(loads))
    out = tmp_path / "segmented.parquet"

    summary = score_with(engine, folder, out)

    assert (summary.ok, summary.failed) == (12, 0)
    assert sorted(Path(row["path"]).name for row in pq.read_table(out).to_pylist()) == [
        f"p{i:02d}.jpg" for i in range(12)]
    assert len(loading_processes(loads)) == 2  # each segment starts its own actor, which loads the model


def test_actors_that_cannot_load_their_model_fail_the_run_in_one_line(ray_local, micro_model_path, tmp_path):
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayEngineError, RayOptions

    def weights_that_do_not_fit(card, weights, device, dtype):
        raise ValueError("these weights do not fit the card")

    make_photo(tmp_path / "photos" / "p.jpg", size=(120, 90))
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=2),
                       RayOptions(cpus_per_actor=0.5, decode_cpus=0.25), predictor_factory=weights_that_do_not_fit)

    with pytest.raises(RayEngineError) as raised:
        score_with(engine, tmp_path / "photos", tmp_path / "never.parquet")
    message = str(raised.value)
    assert message.endswith("ValueError: these weights do not fit the card") and "\n" not in message
