"""A Parquet result holding times Python has no value for reads them as no time, as SQL does.

Another tool (pandas, DuckDB, a script) may write or edit `score --out`
files; a Parquet timestamp is any 64-bit count of microseconds, so it can
hold year 10000, years before 1, and DuckDB's ``'infinity'`` and
``'-infinity'`` (which its COPY writes as the largest 64-bit count and its
negation). DuckDB hands a time past year 9999 or before year 1 to Python as
text, and ±infinity as 9999-12-31 / 0001-01-01. Every read command must read
such a capture, scoring or error time as none (null), and
``--since``/``--until`` must leave it out, as on PostgreSQL
(``test_foreign_databases.py``, ``test_read_hostile_options.py``).

One result serves every test: the real Parquet sink writes it, then rows are
edited as another tool would, one odd time per image, so each command runs
once for all of them.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from eat_curate.records import ScoreRecord
from eat_curate.sinks import ParquetSink
from read_library import invoke
from score_rows import scored
from sink_records import failure, score_run

EPOCH = datetime(1970, 1, 1)
LAST_PYTHON_TIME = datetime(9999, 12, 31, 23, 59, 59, 999_999)


def microseconds(moment: datetime) -> int:
    """``moment`` as a Parquet timestamp stores it: microseconds since 1970."""
    return (moment - EPOCH) // (datetime(1970, 1, 1, 0, 0, 0, 1) - EPOCH)


# The image (album "odd") and error row holding each odd time, in microseconds since 1970.
ODD_TIMES = {
    "year-10000": microseconds(LAST_PYTHON_TIME) + 1,
    "year-0": microseconds(datetime(1, 1, 1)) - 1,
    "infinity": 2**63 - 1,
    "infinity-again": 2**63 - 1,  # the same 'infinity' twice: read as one time, a burst of 0 s
    "minus-infinity": -(2**63 - 1),
}
SOUND = ["trips-1", "trips-2"]  # captured on 1 and 2 June 2024 at noon: a burst for --window 86400
SOUND_ERROR = "error-sound"
EDGES = {"first": datetime(1, 1, 1), "last": LAST_PYTHON_TIME}  # the bounds: still times


def error_id(name: str) -> str:
    return f"error-{name}"


def images(folder: Path) -> list[ScoreRecord]:
    """Real (if undecodable) files, far apart in hash: only capture times can group them."""
    hashes = random.Random(0)
    records = []
    for number, image_id in enumerate([*SOUND, *ODD_TIMES, *EDGES]):
        path = folder / f"{image_id}.jpg"
        path.write_bytes(b"\xff\xd8 not decoded by the read side \xff\xd9")
        album = "trips" if image_id in SOUND else "odd"
        records.append(scored(image_id, 5.0 + number / 10, album=album, path=path, phash=hashes.getrandbits(63),
                              captured_at=datetime(2024, 6, 1 + number, 12), width=640, height=480, bytes=1000))
    return records


def errors() -> list[ScoreRecord]:
    names = [SOUND_ERROR, *map(error_id, ODD_TIMES)]
    return [replace(failure(number), image_id=image_id) for number, image_id in enumerate(names)]


def edited_times(out: Path, stored: dict[str, int]) -> None:
    """``out`` rewritten as another tool would, the rows of each image id in ``stored`` holding its time
    (microseconds) as capture and scoring time, the file's metadata kept."""
    table = pq.read_table(out)
    for name in ("captured_at", "scored_at"):
        field = table.schema.field(name)
        odd = pa.array([stored.get(image_id) for image_id in table["image_id"].to_pylist()], pa.int64())
        column = pc.if_else(odd.is_valid(), odd.cast(field.type), table[name])
        table = table.set_column(table.schema.get_field_index(name), field, column)
    pq.write_table(table.replace_schema_metadata(pq.read_schema(out).metadata), out)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("odd_times")
    out = folder / "scores.parquet"
    score_run(ParquetSink(str(out)), [[*images(folder), *errors()]])
    odd = {**ODD_TIMES, **{error_id(name): stored for name, stored in ODD_TIMES.items()}}
    edited_times(out, {**odd, **{name: microseconds(moment) for name, moment in EDGES.items()}})
    return out


def rows_by_id(*arguments: str | Path) -> dict[str, dict]:
    return {row["image_id"]: row for row in json.loads(invoke(*arguments, "--json").stdout)}


def test_an_odd_time_reads_as_none_and_the_others_as_they_are(result):
    """Before: year 10000 and year 0 ended filter --json and --errors --json in "unexpected AttributeError: 'str'
    object has no attribute 'tzinfo'", and rank --json showed them as text ('10000-01-01 00:00:00'); ±infinity
    showed as 9999-12-31T23:59:59.999999 and 0001-01-01T00:00:00."""
    shown = rows_by_id("filter", result)
    assert {name: (shown[name]["captured_at"], shown[name]["scored_at"]) for name in ODD_TIMES} == dict.fromkeys(
        ODD_TIMES, (None, None))
    assert shown["trips-2"]["captured_at"] == "2024-06-02T12:00:00"
    # The bounds are times still, with and without a zone.
    assert [(shown[name]["captured_at"], shown[name]["scored_at"]) for name in EDGES] == [
        (moment.isoformat(), moment.isoformat() + "+00:00") for moment in EDGES.values()]

    ranked = rows_by_id("rank", result)
    assert [ranked[name]["captured_at"] for name in ODD_TIMES] == [None] * len(ODD_TIMES)

    at = {error["image_id"]: error["at"] for error in json.loads(invoke("filter", result, "--errors", "--json").stdout)}
    assert [at[error_id(name)] for name in ODD_TIMES] == [None] * len(ODD_TIMES) and at[SOUND_ERROR] is not None


def test_an_odd_capture_time_is_null_in_a_manifest(result, tmp_path):
    """Before: "unexpected ArrowTypeError" (a time given as text) when writing the manifest."""
    manifest = tmp_path / "chosen.parquet"
    invoke("filter", result, "--manifest", manifest)

    captured = dict(zip(*pq.read_table(manifest, columns=["id", "captured_at"]).to_pydict().values()))
    assert [captured[name] for name in ODD_TIMES] == [None] * len(ODD_TIMES)
    assert captured["trips-1"] == datetime(2024, 6, 1, 12)


@pytest.mark.parametrize("time_field", ["captured", "scored"])
def test_an_odd_time_is_left_out_by_since_and_until(result, time_field):
    """Before: year 10000 and infinity were kept by --since 2024-01-01, year 0 and -infinity by --until 2030."""
    for bound in (("--since", "2024-01-01"), ("--until", "2030-01-01")):
        chosen = rows_by_id("filter", result, "--time", time_field, *bound)
        assert set(chosen) & set(ODD_TIMES) == set() and set(SOUND) <= set(chosen)


def test_an_odd_scoring_time_of_an_error_is_left_out_by_since(result):
    chosen = json.loads(invoke("filter", result, "--errors", "--time", "scored", "--since", "2000-01-01",
                               "--json").stdout)

    assert [error["image_id"] for error in chosen] == [SOUND_ERROR]


def test_odd_capture_times_make_no_burst(result):
    """Before: dupes --window ended in "unexpected AttributeError" (year 10000 given as text), and without it
    the two 'infinity' images were a burst, 0 s apart."""
    groups = json.loads(invoke("dupes", result, "--window", "86400", "--json").stdout)
    assert [sorted(member["image_id"] for member in group["members"]) for group in groups] == [SOUND]

    kept = rows_by_id("filter", result, "--keep-best", "--dupe-window", "86400")
    assert set(ODD_TIMES) <= set(kept) and len(set(SOUND) & set(kept)) == 1


def test_every_command_showing_tables_reads_on(result):
    for command in (["rank"], ["rank", "--top", "1"], ["filter"], ["filter", "--csv"], ["albums", "--json"],
                    ["dupes"], ["runs", "--json"]):
        invoke(command[0], result, *command[1:])


def test_every_command_writing_files_reads_on(result, tmp_path):
    for command in (["filter", "--errors", "--manifest", tmp_path / "errors.parquet"],
                    ["export", "--to", tmp_path / "out", "--dry-run", "--json"], ["xmp", "--dry-run", "--json"],
                    ["report", "--out", tmp_path / "report.html"]):
        invoke(command[0], result, *command[1:])
