"""The Ray engine on a real local Ray: same rows as the in-process engine, the read cap, faults, jobs, streaming.

Ray runs on 127.0.0.1 only, with usage stats off, a private temp folder,
fractional CPUs for actors and tasks (whole CPUs would starve this 2-core
machine), and is stopped by the tests that start it (tests/local_ray.py).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from conftest import make_photo
from eat_curate.io.items import NOT_UTF8_NAME
from hostile_files import write_odd_names
from stopped_run import signal_mid_run
from local_ray import (  # noqa: F401 (ray_local: a fixture)
    RAY_ENV,
    RecordingProgress,
    constant_model_noting_loads,
    loading_processes,
    ray_local,
    score_with,
)

pytestmark = pytest.mark.ray

FRACTIONAL = ["--cpus-per-actor", "0.5", "--decode-cpus", "0.25"]


def score_cli(*args):
    from eat_curate.cli import cli

    result = CliRunner().invoke(cli, ["score", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("run_id", "scored_at", "probabilities", "mean", "std")}


def test_ray_and_in_process_engines_write_identical_rows(ray_local, photo_folder, micro_model_path, tmp_path):
    write_manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({
        "path": [str(p) for p in sorted(photo_folder.rglob("*.jpg"))],
        "album": ["m1", "m2", "m1", "m2"],
        "lens": ["35mm", "50mm", "85mm", "35mm"],
    }), write_manifest)
    (photo_folder / "trips" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    for engine in ("local", "ray"):
        score_cli(photo_folder, "--model", micro_model_path, "--out", tmp_path / f"{engine}.parquet", "--dtype", "fp32",
                  "--engine", engine, "--batch-size", "2", "--quiet", *FRACTIONAL)
        score_cli(write_manifest, "--model", micro_model_path, "--out", tmp_path / f"{engine}-m.parquet",
                  "--album-from", "album", "--dtype", "fp32", "--engine", engine, "--quiet", *FRACTIONAL)
    for suffix in ("", "-m"):
        local = {r["path"]: r for r in pq.read_table(tmp_path / f"local{suffix}.parquet").to_pylist()}
        remote = {r["path"]: r for r in pq.read_table(tmp_path / f"ray{suffix}.parquet").to_pylist()}
        assert local.keys() == remote.keys() and len(local) in (4, 6)
        for path in local:
            assert comparable(local[path]) == comparable(remote[path]), path
            if local[path]["mean"] is None:
                assert remote[path]["mean"] is None and remote[path]["error_kind"] == "truncated"
            else:
                assert np.allclose(local[path]["probabilities"], remote[path]["probabilities"], atol=1e-5)
                assert abs(local[path]["mean"] - remote[path]["mean"]) < 1e-5


def test_file_names_that_are_not_utf8_are_the_same_error_rows_in_both_engines(ray_local, micro_model_path, tmp_path):
    photos = write_odd_names(tmp_path)
    for engine in ("local", "ray"):
        score_cli(photos, "--model", micro_model_path, "--out", tmp_path / f"{engine}.parquet", "--engine", engine,
                  "--quiet", *FRACTIONAL)
    local, remote = ({row["path"]: comparable(row) for row in pq.read_table(tmp_path / f"{engine}.parquet").to_pylist()}
                     for engine in ("local", "ray"))
    assert local == remote
    assert sorted((Path(path).name, row["error"]) for path, row in remote.items()) == [
        ("caf\\xe9.jpg", NOT_UTF8_NAME), ("good.jpg", None), ("x.jpg", NOT_UTF8_NAME)]


GPU_DECODER_ON_CPU = ["--gpu-decode", "--device", "cpu"]  # the GPU path's decoder, run with libjpeg-turbo


@pytest.mark.parametrize("decoding", [[], GPU_DECODER_ON_CPU], ids=["cpu-decode", "gpu-decoder-on-cpu"])
def test_max_bytes_reaches_the_ray_engines_reads_an_oversize_file_is_an_error_row(
    ray_local, micro_model_path, tmp_path, decoding
):
    small, large = make_photo(tmp_path / "photos" / "small.png", size=(8, 8)), tmp_path / "photos" / "large.png"
    make_photo(large, size=(256, 256))
    out = tmp_path / "scores.parquet"

    score_cli(small.parent, "--max-bytes", "4K", "--out", out, "--model", micro_model_path, "--engine", "ray",
              "--quiet", *decoding, *FRACTIONAL)

    rows = {Path(row["path"]).name: (row["error_kind"], row["error"]) for row in pq.read_table(out).to_pylist()}
    over = f"{large.stat().st_size / 1024:.1f} KiB, over the limit of 4 KiB per image"
    assert rows == {"small.png": (None, None), "large.png": ("too-large", over)}


def test_ray_engine_resumes_and_skips_like_the_in_process_engine(ray_local, photo_folder, micro_model_path, tmp_path):
    db = tmp_path / "s.db"
    score_cli(photo_folder, "--model", micro_model_path, "--db", db, "--engine", "ray", "--quiet", *FRACTIONAL)
    again = json.loads(score_cli(photo_folder, "--model", micro_model_path, "--db", db, "--engine", "ray",
                                 "--json", *FRACTIONAL).stdout)
    assert (again["ok"], again["skipped"]) == (0, 5)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT engine, status, ok, skipped FROM runs ORDER BY started_at")).all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("ray", "completed", 5, 0), ("ray", "completed", 0, 5)]


def test_the_score_bench_runs_both_engines_with_the_same_device_and_decoding(ray_local, photo_folder,
                                                                              micro_model_path):
    from eat_curate.cli import cli

    result = CliRunner().invoke(cli, [
        "bench", "score", str(photo_folder), "--model", str(micro_model_path), "--engine", "ray", "--device", "cpu",
        "--gpu-decode", "--decode-chunk", "2", "--batch-size", "2", "--rounds", "1", "--json", *FRACTIONAL,
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(result.stdout)
    assert (report["images"], report["device"], report["gpu_decode"], report["ray_actors"]) == (5, "cpu", True, 1)
    assert report["local_img_s"] > 0 and report["ray_img_s"] > 0
    assert report["ratio"] == pytest.approx(report["ray_img_s"] / report["local_img_s"])
    assert report["ray_start_s"] >= 0 and report["ray_run_img_s"] > 0 and report["local_run_img_s"] > 0


@pytest.mark.slow
def test_an_actor_killed_mid_run_is_replaced_and_nothing_is_lost(ray_local, micro_model_path, tmp_path):
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions

    folder = tmp_path / "many"
    for i in range(40):
        make_photo(folder / f"p{i:02d}.jpg", size=(120, 90), seed=i)
    loads = tmp_path / "loads"
    loads.mkdir()
    # A tenth of a second a batch of 2: the run lasts seconds, time to kill its actor in the middle.
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=2),
                       RayOptions(cpus_per_actor=0.5, decode_cpus=0.25, actors=1),
                       predictor_factory=constant_model_noting_loads(loads, seconds_per_batch=0.1))
    out = tmp_path / "killed.parquet"
    progress = RecordingProgress()
    failure: list[BaseException] = []

    def score_all() -> None:
        try:
            score_with(engine, folder, out, progress)
        except BaseException as error:  # reported to the test thread
            failure.append(error)

    worker = threading.Thread(target=score_all)
    worker.start()
    deadline = time.monotonic() + 120
    while progress.ok < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 4 <= progress.ok < 40
    [actor_process] = loading_processes(loads)
    os.kill(actor_process, signal.SIGKILL)
    worker.join(timeout=300)

    assert not worker.is_alive() and not failure, failure
    table = pq.read_table(out).to_pylist()
    assert sorted(Path(row["path"]).name for row in table) == [f"p{i:02d}.jpg" for i in range(40)]
    assert all(row["error"] is None for row in table)
    replacements = [pid for pid in loading_processes(loads) if pid != actor_process]
    assert len(replacements) == 1  # Ray started another actor, which loaded the model again


def test_a_decode_task_whose_worker_dies_is_retried(ray_local, micro_model_path, tmp_path, monkeypatch):
    import pipelines.decode_tasks as decode_tasks
    from eat_curate.scoring.engine import EngineOptions
    from pipelines.ray_engine import RayEngine, RayOptions

    folder = tmp_path / "photos"
    for i in range(12):
        make_photo(folder / f"p{i:02d}.jpg", size=(120, 90), seed=i)
    crashed = tmp_path / "crashed"
    decode = decode_tasks.decode_block

    def decode_or_die_once(items, **arguments):
        if not crashed.exists():  # the first decode task takes its worker process down with it
            crashed.touch()
            os._exit(1)
        return decode(items, **arguments)

    monkeypatch.setattr(decode_tasks, "decode_block", decode_or_die_once)
    engine = RayEngine(micro_model_path, EngineOptions(batch_size=4),
                       RayOptions(cpus_per_actor=0.5, decode_cpus=0.25, actors=1))
    out = tmp_path / "retried.parquet"
    score_with(engine, folder, out)

    assert crashed.exists()
    table = pq.read_table(out).to_pylist()
    assert sorted(Path(row["path"]).name for row in table) == [f"p{i:02d}.jpg" for i in range(12)]
    assert all(row["error"] is None for row in table)


def test_decode_workers_import_no_torch():
    """Ray's decode workers import the decode tasks' module: it must not pull in torch (8 s a worker on 2 cores)."""
    probe = "import sys, pipelines.decode_tasks; print(sorted({'torch', 'timm'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_decode_tasks_split_a_batch_over_the_decode_slots_unless_told():
    from pipelines.ray_engine import MIN_DECODE_CHUNK, decode_chunk_size

    assert decode_chunk_size(batch_size=500, decode_slots=4) == 125
    assert decode_chunk_size(batch_size=500, decode_slots=3.5) == 143  # every image in one of 4 tasks
    assert decode_chunk_size(batch_size=256, decode_slots=64) == MIN_DECODE_CHUNK  # a big cluster: no tiny tasks
    assert decode_chunk_size(batch_size=8, decode_slots=64) == 8  # never more than a batch
    assert decode_chunk_size(batch_size=16, decode_slots=0.5) == 16  # less than one slot: the batch is one task
    assert decode_chunk_size(batch_size=500, decode_slots=4, requested=2) == 2


def test_the_job_entrypoint_is_the_score_command_on_the_cluster_with_its_limits_and_retries():
    from pipelines.score_job import parse_args, score_arguments

    command = score_arguments(parse_args([
        "--source", "s3://photos/new/", "--model", "eat-base", "--db", "postgresql://db/photos", "--max-bytes", "64M",
        "--remote-tries", "5", "--remote-timeout", "60", "--db-retry-for", "900", "--max-failed", "2%",
        "--exclude", "@eaDir", "--exclude", "*/exports/"]))

    assert command[:2] == ["score", "s3://photos/new/"]
    assert command[command.index("--engine") + 1] == "ray"
    assert command[command.index("--ray-address") + 1] == "auto"  # the cluster the job runs in
    given = {flag: command[command.index(flag) + 1]
             for flag in ("--max-bytes", "--remote-tries", "--remote-timeout", "--db-retry-for", "--max-failed")}
    assert given == {"--max-bytes": "64M", "--remote-tries": "5", "--remote-timeout": "60.0",
                     "--db-retry-for": "900.0", "--max-failed": "2%"}
    assert command[command.index("--progress") + 1] == "lines"  # the job's log gets a line a minute, not a bar
    assert command[command.index("--progress-every") + 1] == "60.0"
    assert [command[at + 1] for at, flag in enumerate(command) if flag == "--exclude"] == ["@eaDir", "*/exports/"]
    assert "--rescore" not in command and "--dry-run" not in command and command[-1] == "--json"
    counting = score_arguments(parse_args(["--source", "s3://photos/new/", "--model", "eat-base", "--dry-run"]))
    assert "--dry-run" in counting and counting[-1] == "--json"  # the counts, as JSON in the job's log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """`ray start --head --block` on loopback; stopped by signalling that process (its PID) at the end."""
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": tempfile.mkdtemp(prefix="rayh", dir="/tmp"),
           # Its own token, so the job API is token-protected whatever ran before in this process.
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           # On SIGTERM a node drains for up to 30 s first (for Ray Serve's replicas); nothing here needs it.
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    dashboard = free_port()
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port", str(free_port()),
               "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--num-cpus", "2",
               "--include-dashboard", "true",
               # Ray's fixed defaults (agent 52365, client server 10001) may be taken by the embedded
               # cluster of other tests; the job agent then never serves and every submit is refused.
               "--dashboard-agent-listen-port", str(free_port()), "--ray-client-server-port", str(free_port())]
    log = open(tmp_path / "ray-head.log", "w")
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", dashboard), timeout=1):
                    break
            except OSError:
                assert head.poll() is None, (tmp_path / "ray-head.log").read_text()
                time.sleep(0.5)
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        log.close()
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


@pytest.mark.slow
def test_ray_job_submit_of_the_job_entrypoint_to_sqlite_and_postgresql(
    ray_head, photo_folder, micro_model_path, tmp_path, pg_url
):
    address, env = ray_head
    env = {**env, "RAY_AUTH_MODE": "token"}  # the job API of a token-protected cluster
    db = tmp_path / "job.db"
    ray = str(Path(sys.executable).with_name("ray"))

    def submitted(target: str) -> tuple[str, subprocess.CompletedProcess]:
        # The dashboard answers before its job agent is up; on a loaded machine that takes a while.
        deadline = time.monotonic() + 120
        while True:
            job_id = f"score-{uuid.uuid4().hex[:12]}"
            submit = [ray, "job", "submit", "--address", address, "--submission-id", job_id, "--",
                      sys.executable, "-m", "pipelines.score_job", "--source", str(photo_folder),
                      "--model", str(micro_model_path), "--db", target, "--batch-size", "2",
                      "--cpus-per-actor", "0.5", "--decode-cpus", "0.25", "--progress-every", "0.001"]
            done = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=300)
            if "No available agent" not in done.stderr + done.stdout or time.monotonic() > deadline:
                return job_id, done
            time.sleep(3)

    targets = (f"sqlite:///{db}", pg_url)
    # Both jobs at once, as a cluster takes them: much of each one's time is Ray's (setting the job up, starting
    # its actor, `submit` polling its status), and the two fit the cluster's 2 CPUs side by side.
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        jobs = list(pool.map(submitted, targets))
    for target, (job_id, done) in zip(targets, jobs):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "succeeded" in done.stdout + done.stderr
        # The job's log shows its progress as lines. Read from the log itself: the stream `submit` follows
        # can end before its last lines arrive on a loaded machine.
        logs = subprocess.run([ray, "job", "logs", "--address", address, job_id], env=env, capture_output=True,
                              text=True, timeout=120)
        # A line per due moment, not per batch: batches landing within --progress-every of each other share
        # one, so the last count need not get a line of its own (the summary and the database have it).
        assert re.search(r"scoring: [1-5] images? in", logs.stdout), logs.stdout[-3000:] + logs.stderr[-3000:]
        assert '"ok": 5' in logs.stdout
        engine = sa.create_engine(target)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM scores")).scalar() == 5
            run = connection.execute(sa.text("SELECT engine, status, ok FROM runs")).one()
        engine.dispose()
        assert tuple(run) == ("ray", "completed", 5)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_a_100k_row_manifest_streams_without_the_driver_growing(ray_local, micro_preset, tmp_path):
    from eat_curate.io.sources import iter_items
    from eat_curate.model.card import read_card
    from eat_curate.model.model_store import ModelStore
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.constant import build_constant_predictor
    from eat_curate.scoring.engine import EngineOptions
    from eat_curate.scoring.execute import execute_run
    from eat_curate.sinks.outputs import open_sinks
    from pipelines.ray_engine import RayEngine, RayOptions

    rows = 100_000
    rng = np.random.default_rng(0)
    variants = []
    for i in range(256):  # 256 distinct 8x8 PNGs, cycled
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, format="PNG")
        variants.append(buffer.getvalue())
    manifest = tmp_path / "big.parquet"
    writer = pq.ParquetWriter(manifest, pa.schema([("id", pa.string()), ("image", pa.binary())]))
    for start in range(0, rows, 10_000):
        ids = [f"img{i:06d}" for i in range(start, start + 10_000)]
        writer.write_table(pa.table({"id": ids, "image": [variants[i % 256] for i in range(start, start + 10_000)]}))
    writer.close()

    # A 32-pixel input (the constant model never runs it): the driver's work per row is what is watched,
    # and the workers' resizing and hashing at 224 pixels would take most of the test's minutes.
    store = ModelStore(tmp_path / "models")
    store.init(dataclasses.replace(micro_preset, name="micro-32px", image_size=32, window_size=1), "micro-32px", seed=0)
    model_path = store.resolve("micro-32px")
    card = read_card(model_path)
    # Segments of 25,000 rows: the driver lists and hands over the later ones while the memory is watched.
    # Batches of 2,000 rows (decode tasks of 500): Ray Data's cost per block, on the driver and in the workers,
    # not per row, was most of this test's time at batches of 500, and the rows the driver handles are the same.
    engine = RayEngine(model_path, EngineOptions(batch_size=2000, lookup_chunk=5000),
                       RayOptions(cpus_per_actor=0.25, decode_cpus=0.5, actors=1, segment_rows=25_000),
                       predictor_factory=build_constant_predictor)
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, [str(manifest)], engine="ray")
    # Away from the Parquet sink's every-50,000-rows turn of its journal into a part, which costs a
    # passing 40 MB: 20,000 rows (inside the first segment) and 90,000 (inside the last).
    marks = (20_000, 90_000)
    samples: dict[int, float] = {}

    class SamplingProgress(RecordingProgress):
        def advance(self, records) -> None:
            super().advance(records)
            for mark in marks:
                if self.ok >= mark and mark not in samples:
                    samples[mark] = rss_mb()

    out = tmp_path / "big-scores.parquet"
    summary = execute_run(engine, iter_items([str(manifest)]), open_sinks(out=str(out), db=None), run, card,
                          SamplingProgress())
    assert summary.ok == rows and summary.failed == 0
    assert pq.read_metadata(out).num_rows == rows
    growth = samples[marks[1]] - samples[marks[0]]
    assert growth < 60, f"driver RSS grew {growth:.0f} MB from 20k to 90k rows"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass  # gone meanwhile
    return found


@pytest.mark.slow
def test_sigterm_ends_a_ray_run_interrupted_and_stops_the_local_ray_it_started(micro_model_path, tmp_path):
    folder = tmp_path / "many"
    for i in range(200):
        make_photo(folder / f"p{i:03d}.jpg", size=(160, 120), seed=i, quality=80)
    db = tmp_path / "scores.db"
    ray_tmp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")
    command = [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(micro_model_path),
               "--db", str(db), "--engine", "ray", "--batch-size", "2", "--cpus-per-actor", "0.5",
               "--decode-cpus", "0.25", "--json"]

    def scored() -> int:
        try:
            with sqlite3.connect(db) as connection:
                return connection.execute("SELECT count(*) FROM scores").fetchone()[0]
        except sqlite3.Error:
            return 0

    # ray.init sets its own SIGTERM handler, which would end the process at once
    stopped = signal_mid_run(command, scored, signal.SIGTERM, env={**os.environ, **RAY_ENV, "RAY_TMPDIR": ray_tmp})
    assert stopped.returncode == 130, stopped.stderr[-3000:]  # exit_codes.INTERRUPTED
    summary = json.loads(stopped.stdout)
    assert summary["outcome"] == "interrupted" and 10 <= summary["ok"] < 200
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT status, ok FROM runs").fetchall() == [("interrupted", scored())]

    deadline = time.monotonic() + 20
    while (left := _processes_mentioning(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not left, "the local Ray outlived its run"
