-- eat-curate schema version 6 for SQLite.
-- Generated from eat_curate/sinks/sql/schema.py by `eat-curate db ddl --dialect sqlite`. Do not edit by hand.
-- `eat-curate db init --db URL` creates the same tables (and upgrades older databases).

CREATE TABLE eat_meta (
	"key" VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY ("key")
);

CREATE TABLE errors (
	image_id VARCHAR(128) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	message TEXT NOT NULL,
	at DATETIME NOT NULL,
	PRIMARY KEY (image_id, model_id)
);

CREATE TABLE images (
	image_id VARCHAR(128) NOT NULL,
	path TEXT NOT NULL,
	album TEXT,
	content_hash VARCHAR(64),
	bytes BIGINT,
	mtime FLOAT,
	width INTEGER,
	height INTEGER,
	oriented_width INTEGER,
	oriented_height INTEGER,
	format VARCHAR(16),
	phash BIGINT,
	captured_at DATETIME,
	extra TEXT,
	updated_at DATETIME NOT NULL,
	shot TEXT,
	PRIMARY KEY (image_id)
);
CREATE INDEX ix_images_shot ON images (shot);

CREATE TABLE models (
	model_id VARCHAR(128) NOT NULL,
	name VARCHAR(64) NOT NULL,
	preset VARCHAR(32) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	head_mode VARCHAR(16) NOT NULL,
	trained BOOLEAN NOT NULL,
	card TEXT NOT NULL,
	registered_at DATETIME NOT NULL,
	PRIMARY KEY (model_id)
);

CREATE TABLE runs (
	run_id VARCHAR(64) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	status VARCHAR(16) NOT NULL,
	engine VARCHAR(16) NOT NULL,
	host TEXT NOT NULL,
	pid INTEGER,
	sources TEXT NOT NULL,
	options TEXT NOT NULL,
	started_at DATETIME NOT NULL,
	ended_at DATETIME,
	ok INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	skipped INTEGER NOT NULL,
	failed_by_kind TEXT,
	images_per_s FLOAT,
	outputs TEXT,
	heartbeat_at DATETIME,
	PRIMARY KEY (run_id)
);
CREATE INDEX ix_runs_started_at ON runs (started_at);

CREATE TABLE scores (
	image_id VARCHAR(128) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	album TEXT,
	run_id VARCHAR(64) NOT NULL,
	p1 FLOAT NOT NULL,
	p2 FLOAT NOT NULL,
	p3 FLOAT NOT NULL,
	p4 FLOAT NOT NULL,
	p5 FLOAT NOT NULL,
	p6 FLOAT NOT NULL,
	p7 FLOAT NOT NULL,
	p8 FLOAT NOT NULL,
	p9 FLOAT NOT NULL,
	p10 FLOAT NOT NULL,
	mean FLOAT NOT NULL,
	std FLOAT NOT NULL,
	scored_at DATETIME NOT NULL,
	scored_bytes BIGINT,
	scored_mtime FLOAT,
	scored_content_hash VARCHAR(64),
	PRIMARY KEY (image_id, model_id)
);
CREATE INDEX ix_scores_model_album_rank ON scores (model_id, album, mean DESC, image_id);

INSERT INTO eat_meta ("key", value) VALUES ('schema_version', '6');
