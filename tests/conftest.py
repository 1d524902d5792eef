"""Shared fixtures: a small real model in a temporary store, real databases, small real images.

Nothing here is mocked: the model is a real (small) EAT, PostgreSQL is the
server on 127.0.0.1:5432, and images are real files written with Pillow.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eat_curate.model.model_store import ModelStore
from eat_curate.model.presets import EATPreset

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# A real EAT with every block kind, ~20x cheaper than tiny: fast enough for CPU tests.
MICRO_PRESET = EATPreset(
    name="micro",
    dims=(24, 48, 96, 192),
    depths=(2, 2, 2, 2),
    heads=(1, 2, 4, 8),
    groups=(0, 0, 2, 4),
    drop_path_rate=0.0,
)

PG_ADMIN_URL = os.environ.get("EAT_CURATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def micro_preset() -> EATPreset:
    return MICRO_PRESET


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A store holding ``micro`` (untrained, seed 0)."""
    store = ModelStore(tmp_path_factory.mktemp("models"))
    store.init(MICRO_PRESET, "micro", seed=0)
    return store


@pytest.fixture(scope="session")
def micro_model_path(model_store: ModelStore) -> Path:
    return model_store.resolve("micro")


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 images with vote labels (tests/synthetic_aesthetics.py) for training runs; read it, never write into it."""
    from synthetic_aesthetics import generate

    folder = tmp_path_factory.mktemp("synthetic")
    generate(folder, 40, seed=3)
    return folder


@pytest.fixture
def pico_store(tmp_path: Path) -> ModelStore:
    """A store holding ``pico`` (untrained, seed 0): the starting point of a training run."""
    from synthetic_aesthetics import PICO_PRESET

    store = ModelStore(tmp_path / "models")
    store.init(PICO_PRESET, "pico", seed=0)
    return store


@pytest.fixture
def run(tmp_path: Path):
    """``eat-curate ARGS`` through click's CliRunner, with a home (and so a model store) of its own, empty."""
    from click.testing import CliRunner

    from eat_curate.cli import cli

    runner = CliRunner()

    def invoke(*args, expect_ok: bool = True):
        result = runner.invoke(cli, [str(arg) for arg in args], env={"EAT_CURATE_HOME": str(tmp_path / "home")},
                               catch_exceptions=False)
        if expect_ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def score(micro_model_path: Path):
    """``eat-curate score ARGS --model <micro>`` through CliRunner; fails the test unless it exits 0 (``expect_ok``)."""
    from click.testing import CliRunner

    from eat_curate.cli import cli

    def invoke(*args, expect_ok: bool = True):
        result = CliRunner().invoke(cli, ["score", *map(str, args), "--model", str(micro_model_path)])
        if expect_ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke


def make_photo(path: Path, size: tuple[int, int] = (320, 240), seed: int = 0, fmt: str | None = None, **save) -> Path:
    """A small photo-like image (smooth gradients plus noise), saved with Pillow."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / (17 + seed % 7) + seed),
            128 + 100 * np.cos(yy / (23 + seed % 5)),
            128 + 60 * np.sin((xx + yy) / 31.0),
        ],
        axis=-1,
    )
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt, **save)
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Two albums of small JPEG/PNG photos: ``trips/`` (3) and ``family/`` (2)."""
    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / "trips" / f"trip_{i}.jpg", seed=i, quality=90)
    make_photo(root / "family" / "a.png", seed=10)
    make_photo(root / "family" / "b.jpg", seed=11, quality=85)
    return root


def _pg_available() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL database for one test, dropped afterwards.

    PostgreSQL is part of the test environment (.ci/run starts it): if it is
    down the test fails rather than skips, so CI never passes without it.
    """
    import sqlalchemy as sa

    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; start it (see README)")
    name = f"eatc_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """The read side's photo library (tests/read_library.py): albums, a burst, copies, a corrupt file."""
    from read_library import write_library

    return write_library(tmp_path_factory.mktemp("library"))


@pytest.fixture(scope="session")
def databases(library, micro_model_path, tmp_path_factory):
    """That library scored by real `score` runs into SQLite and PostgreSQL: {backend: --db value}."""
    from read_library import score_into, temporary_pg_database

    sqlite_path = tmp_path_factory.mktemp("db") / "photos.db"
    with temporary_pg_database() as pg_url:
        dbs = {"sqlite": str(sqlite_path), "postgresql": pg_url}
        for db in dbs.values():
            score_into(db, library.root, model_path=micro_model_path)
        yield dbs
