"""The in-process engine's pipeline: stages that overlap, and a run that ends cleanly whatever happens.

Stand-ins with known costs take the place of decoding and of the model
where a test is about the pipeline's structure (overlap, bounds, failures);
the real decoder and a real (micro) EAT where it is about the records.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from eat_curate.io.sources import iter_items
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo
from eat_curate.scoring import stages
from eat_curate.scoring.channel import Channel, Pipe, Stopped
from eat_curate.scoring.engine import EngineOptions, LocalEngine, default_batch_size
from eat_curate.scoring.execute import execute_run
from eat_curate.scoring.pipeline import THREAD_PREFIX, batches
from eat_curate.scoring.predictor import Predictor, UntrainedModelWarning
from eat_curate.scoring.tasks import decode_item, score_entries
from hostile_files import write_hostile_folder
from pipeline_stand_ins import MemorySink, StandInDecoder, StandInModel, made_up_items, score


def ends_within(seconds: float, function: Callable[[], object]) -> BaseException | None:
    """Run ``function`` in a thread; fail if it has not ended after ``seconds``; return what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as error:  # noqa: B036 (KeyboardInterrupt too: that is the point)
            raised.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the run had not ended after {seconds} s"
    return raised[0] if raised else None


def pipeline_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(THREAD_PREFIX)]


@pytest.fixture
def stand_in_decoder(monkeypatch) -> Callable[..., StandInDecoder]:
    def install(**kwargs) -> StandInDecoder:
        decoder = StandInDecoder(**kwargs)
        monkeypatch.setattr(stages, "decode_item", decoder)
        return decoder

    return install


# --- structure: the stages overlap, and stay bounded -----------------------------------------------


def test_decoding_and_the_model_overlap_so_a_run_takes_the_slowest_stage_not_the_sum(stand_in_decoder):
    batches_, batch_size = 10, 4
    decode_seconds, model_seconds = 0.025, 0.1  # a batch: 0.1 s of decoding (one reader), 0.1 s of model
    stand_in_decoder(seconds=decode_seconds)
    engine = LocalEngine(StandInModel(model_seconds), EngineOptions(batch_size=batch_size, workers=1))
    started = time.perf_counter()
    summary = score(engine, made_up_items(batches_ * batch_size), MemorySink())
    wall = time.perf_counter() - started
    one_after_the_other = batches_ * (batch_size * decode_seconds + model_seconds)  # 2.0 s
    assert summary.ok == batches_ * batch_size
    assert wall >= batches_ * model_seconds  # the stand-ins did take their time
    assert wall < 0.75 * one_after_the_other, f"{wall:.2f} s: the stages ran one after the other"
    assert engine.compute_time.busy_share > 0.75  # once started, the model hardly waited for decoding


def test_a_slow_writer_holds_the_readers_back_to_a_bounded_number_of_inputs(stand_in_decoder):
    options = EngineOptions(batch_size=4, workers=2)
    decoder = stand_in_decoder()
    in_flight = []
    sink = MemorySink(seconds_per_write=0.005, on_write=lambda: in_flight.append(decoder.started - len(sink.records)))
    count = 600
    score(LocalEngine(StandInModel(), options), made_up_items(count), sink)
    assert len(sink.records) == count
    assert max(in_flight) <= options.max_in_flight < count


def test_a_closed_channel_still_gives_what_it_holds_then_ends():
    channel = Channel(Pipe(), capacity=2)
    channel.put("a")
    channel.put("b")
    channel.close()
    assert list(channel) == ["a", "b"]
    with pytest.raises(Stopped):
        channel.put("c")


def test_aborting_the_pipe_wakes_a_thread_waiting_for_room():
    pipe = Pipe()
    channel = Channel(pipe, capacity=1)
    channel.put("a")
    outcome = []

    def put_into_the_full_channel() -> None:
        try:
            channel.put("b")
        except Stopped:
            outcome.append("stopped")

    waiting = threading.Thread(target=put_into_the_full_channel)
    waiting.start()
    time.sleep(0.05)
    pipe.abort()
    waiting.join(5)
    assert outcome == ["stopped"]


def test_batches_are_cut_by_the_entries_alone():
    good, bad = True, False
    entries = [good, bad, good, good, bad, bad, good, good]
    assert list(batches(entries, 2, bool)) == [[good, bad, good], [good, bad, bad, good], [good]]
    assert list(batches([bad] * 9, 2, bool)) == [[bad] * 8, [bad]]  # error rows are not held back


# --- records: the same as the one-thread engine, in order, with error rows in place --------------


@pytest.fixture(scope="module")
def micro(model_store) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Predictor(model_store.load("micro"), device="cpu", dtype="fp32")


HOSTILE = "hostile"


class MixedFolder(NamedTuple):
    path: Path
    owed: dict[str, str | None]  # hostile file name: the error kind it owes (None: scores fine)


@pytest.fixture
def mixed_folder(photo_folder) -> MixedFolder:
    """The photo folder with every hostile file beside it (in hostile/): good and bad inputs interleaved."""
    return MixedFolder(photo_folder, write_hostile_folder(photo_folder / HOSTILE))


def error_kinds_of_hostile_files(records: list[ScoreRecord]) -> dict[str, str | None]:
    return {record.path.rsplit("/", 1)[1]: record.error_kind for record in records if f"/{HOSTILE}/" in record.path}


def one_thread_records(items, predictor: Predictor, batch_size: int) -> list[ScoreRecord]:
    """What the engine wrote before the pipeline: decode each input, score the same batches one by one."""
    entries = [decode_item(item, predictor.input_size) for item in items]
    records = []
    for batch in batches(entries, batch_size, lambda entry: entry.ok):
        records += score_entries(batch, predictor, predictor.model_id, "run-1")
    return records


def comparable(record: ScoreRecord) -> dict:
    return {field.name: getattr(record, field.name) for field in fields(record) if field.name != "scored_at"}


@pytest.mark.parametrize("batch_size, workers", [(3, 4), (16, 2)])
def test_the_records_are_those_of_the_one_thread_engine_in_input_order(micro, mixed_folder, batch_size, workers):
    items = list(iter_items([str(mixed_folder.path)]))
    sink = MemorySink()
    score(LocalEngine(micro, EngineOptions(batch_size=batch_size, workers=workers)), items, sink)
    assert [record.path for record in sink.records] == [item.key for item in items]
    expected = one_thread_records(items, micro, batch_size)
    assert [comparable(record) for record in sink.records] == [comparable(record) for record in expected]
    assert error_kinds_of_hostile_files(sink.records) == mixed_folder.owed  # each an error row, in place


# --- failures: any stage, the writer, Ctrl-C ------------------------------------------------------


class FailingPrep(stages.Prep):
    """The prep stage, breaking on its third batch."""

    prepared = 0

    def prepare(self, entries):
        self.prepared += 1
        if self.prepared == 3:
            raise RuntimeError("prep broke")
        return super().prepare(entries)


@pytest.mark.parametrize("stage", ["reader", "prep", "compute", "writer"])
def test_an_exception_in_any_stage_ends_the_run_with_it_and_every_thread_joined(stage, stand_in_decoder,
                                                                                monkeypatch):
    stand_in_decoder(fail_on=10 if stage == "reader" else None)
    if stage == "prep":
        monkeypatch.setattr("eat_curate.scoring.engine.Prep", FailingPrep)
    model = StandInModel(fail_on=3 if stage == "compute" else None)
    sink = MemorySink(fail_on=3 if stage == "writer" else None)
    engine = LocalEngine(model, EngineOptions(batch_size=4, workers=2))
    raised = ends_within(30, lambda: score(engine, made_up_items(200), sink))
    assert isinstance(raised, RuntimeError) and "broke" in str(raised)
    assert pipeline_threads() == []
    written = Counter(record.path for record in sink.records)
    assert all(count == 1 for count in written.values())
    assert len(sink.records) % 4 == 0 and len(sink.records) < 200  # whole batches, and the run did stop
    if stage == "writer":
        assert len(sink.records) == 2 * 4  # nothing after the write that failed


@pytest.mark.parametrize("where", ["compute", "writer"])
def test_ctrl_c_leaves_whole_batches_and_a_resumed_run_writes_the_rest_once(where, stand_in_decoder):
    stand_in_decoder()
    items = made_up_items(120)
    interrupt = KeyboardInterrupt()
    model = StandInModel(fail_on=5, error=interrupt) if where == "compute" else StandInModel()
    sink = MemorySink(fail_on=4, error=interrupt) if where == "writer" else MemorySink()
    options = EngineOptions(batch_size=4, workers=2)
    raised = ends_within(30, lambda: score(LocalEngine(model, options), items, sink))
    assert raised is interrupt and pipeline_threads() == []
    first_run = [record.path for record in sink.records]
    assert 0 < len(first_run) < len(items) and len(first_run) % 4 == 0
    assert all(record.probabilities is not None and len(record.probabilities) == 10 for record in sink.records)

    score(LocalEngine(StandInModel(), options), items, sink)  # the same command again
    written = Counter(record.path for record in sink.records)
    assert written == Counter(item.key for item in items)  # every input exactly once
    assert [record.path for record in sink.records[len(first_run):]] == [
        item.key for item in items if item.key not in set(first_run)
    ]


def test_an_interrupted_run_is_recorded_as_interrupted(stand_in_decoder, model_store):
    stand_in_decoder()
    sink = MemorySink(fail_on=2, error=KeyboardInterrupt())
    engine = LocalEngine(StandInModel(), EngineOptions(batch_size=4, workers=2))
    run = RunInfo("run-1", StandInModel.model_id, "model", "", ["test"])
    with pytest.raises(KeyboardInterrupt):
        execute_run(engine, made_up_items(40), [sink], run, model_store.card("micro"))
    assert sink.status == "interrupted" and len(sink.records) == 4


# --- the GPU path's plumbing on the CPU, and options ----------------------------------------------


def test_the_gpu_paths_pipeline_on_the_cpu_scores_like_the_cpu_path(micro, mixed_folder):
    """torchvision's CPU JPEG decoder stands in for nvJPEG: the same pixels as a full CPU decode."""
    items = list(iter_items([str(mixed_folder.path)]))
    cpu, device = MemorySink(), MemorySink()
    score(LocalEngine(micro, EngineOptions(batch_size=3, workers=2, draft=False)), items, cpu)
    score(LocalEngine(micro, EngineOptions(batch_size=3, workers=2, gpu_decode=True)), items, device)
    assert [record.path for record in device.records] == [item.key for item in items]
    for expected, record in zip(cpu.records, device.records):
        scores = ("probabilities", "mean", "std")
        assert {k: v for k, v in comparable(record).items() if k not in scores} == {
            k: v for k, v in comparable(expected).items() if k not in scores}  # facts, hashes, errors
        if expected.ok:
            # Rows sit elsewhere in the batch (device-decoded ones first): float rounding only.
            assert np.allclose(record.probabilities, expected.probabilities, atol=1e-6)


def test_a_gpu_suits_larger_batches_than_a_cpu():
    assert default_batch_size("cuda") == 256 and default_batch_size("cpu") == 16
    assert EngineOptions().batch_size == 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_pipeline_scores_like_the_cpu(model_store, mixed_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        on_gpu = Predictor(model_store.load("micro"), device="cuda", dtype="fp32", compile=False)
        on_cpu = Predictor(model_store.load("micro"), device="cpu", dtype="fp32")
    items = list(iter_items([str(mixed_folder.path)]))
    cpu, gpu, gpu_decoded = MemorySink(), MemorySink(), MemorySink()
    score(LocalEngine(on_cpu, EngineOptions(batch_size=4, draft=False)), items, cpu)
    score(LocalEngine(on_gpu, EngineOptions(batch_size=4, draft=False)), items, gpu)
    score(LocalEngine(on_gpu, EngineOptions(batch_size=4, gpu_decode=True)), items, gpu_decoded)
    for sink in (gpu, gpu_decoded):
        assert [record.path for record in sink.records] == [item.key for item in items]
        assert [record.error_kind for record in sink.records] == [record.error_kind for record in cpu.records]
        for expected, record in zip(cpu.records, sink.records):
            if expected.ok:
                assert abs(record.mean - expected.mean) < 0.01
