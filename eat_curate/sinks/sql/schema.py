"""The SQL schema (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Tables:
- ``images``: one row per image (id, path, album, content facts) and its
  ``shot``: files of one folder named alike but for the extension (RAW + JPEG)
  share it (``sinks.shots``), so the read side ranks them once;
- ``scores``: one row per (image, model): the 10 probabilities p1..p10, mean,
  std, the run that wrote it. ``album`` is copied from ``images`` so ranking
  inside albums needs no join;
- ``errors``: one row per (image, model) that could not be scored, latest wins;
  removed when the image later scores;
- ``models``: every model that wrote scores (id = name@hash, card);
- ``runs``: every run, with its sources, options, counts, timings and heartbeat
  (counts and heartbeat updated as batches land);
- ``eat_meta``: key/value, holding ``schema_version``.

The DDL files under ``sql/`` are generated from these definitions
(``eat-curate db ddl``) and a test keeps them in sync.
"""

from __future__ import annotations

import sqlalchemy as sa

from eat_curate.sinks.sql.bytewise import bytewise
from eat_curate.sinks.sql.stored_values import Score, number, path_text, stored_text, timestamp, whole

# 2: runs.pid; 3: two write-only indexes dropped; 4: runs.heartbeat_at; 5: images.shot;
# 6: ix_images_path dropped, long shot keys as digests. See sinks.sql.database.MIGRATIONS.
SCHEMA_VERSION = 6
NUM_BINS = 10

metadata = sa.MetaData()

eat_meta = sa.Table(
    "eat_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("image_id", sa.String(128), primary_key=True),
    sa.Column("path", path_text("images"), nullable=False),
    sa.Column("album", stored_text("images", "album")),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("bytes", whole(big=True)),
    sa.Column("mtime", number()),
    sa.Column("width", whole()),
    sa.Column("height", whole()),
    sa.Column("oriented_width", whole()),
    sa.Column("oriented_height", whole()),
    sa.Column("format", sa.String(16)),
    sa.Column("phash", whole(big=True)),
    sa.Column("captured_at", timestamp(timezone=False)),
    sa.Column("extra", sa.Text),
    sa.Column("updated_at", timestamp(timezone=True), nullable=False),
    # The shot the file belongs to (sinks.shots.shot_key of the path); NULL: a manifest's embedded image.
    sa.Column("shot", sa.Text),
    # No index on path: no query looks an image up by it, and a B-tree refuses the longest (signed URLs).
    # Which shots hold several files: one pass over this index (eat_curate.library.shots).
    sa.Index("ix_images_shot", "shot"),
)

scores = sa.Table(
    "scores",
    metadata,
    sa.Column("image_id", sa.String(128), primary_key=True),
    sa.Column("model_id", stored_text("scores", "model_id", 128), primary_key=True),
    sa.Column("album", stored_text("scores", "album")),
    sa.Column("run_id", sa.String(64), nullable=False),
    *(sa.Column(f"p{i}", Score(24, f"p{i}"), nullable=False) for i in range(1, NUM_BINS + 1)),
    sa.Column("mean", Score(53, "mean"), nullable=False),
    sa.Column("std", Score(53, "std"), nullable=False),
    sa.Column("scored_at", timestamp(timezone=True), nullable=False),
    # The image as it was when scored: a re-run skips it only while these still match,
    # even after another model's run has updated the image row.
    sa.Column("scored_bytes", whole(big=True)),
    sa.Column("scored_mtime", number()),
    sa.Column("scored_content_hash", sa.String(64)),
)

# The read side's order (album ranks, album statistics): rows of one model and album by
# score, ties by image id byte by byte. Ranking 1M scores then streams from this index
# instead of sorting (see eat_curate/library/queries.py and `eat-curate bench read`).
sa.Index(
    "ix_scores_model_album_rank",
    scores.c.model_id,
    scores.c.album,
    scores.c.mean.desc(),
    bytewise(scores.c.image_id),
)

errors = sa.Table(
    "errors",
    metadata,
    sa.Column("image_id", sa.String(128), primary_key=True),
    sa.Column("model_id", stored_text("errors", "model_id", 128), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", timestamp(timezone=True), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("model_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("preset", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("head_mode", sa.String(16), nullable=False),
    sa.Column("trained", sa.Boolean, nullable=False),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("registered_at", timestamp(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("model_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", whole()),  # the driver's process id on host, to find runs a crash left "running"
    sa.Column("sources", sa.Text, nullable=False),  # JSON list
    sa.Column("options", sa.Text, nullable=False),  # JSON object
    sa.Column("started_at", timestamp(timezone=True), nullable=False),
    sa.Column("ended_at", timestamp(timezone=True)),
    sa.Column("ok", whole(), nullable=False, default=0),
    sa.Column("failed", whole(), nullable=False, default=0),
    sa.Column("skipped", whole(), nullable=False, default=0),
    sa.Column("failed_by_kind", sa.Text),  # JSON object kind -> count
    sa.Column("images_per_s", number()),
    sa.Column("outputs", sa.Text),  # JSON list
    # When the run last saved a batch (with its counts, in the same transaction): a "running" run
    # silent for long has stopped, whatever its host (eat_curate.runs.liveness).
    sa.Column("heartbeat_at", timestamp(timezone=True)),
    sa.Index("ix_runs_started_at", "started_at"),
)
