-- eat-curate schema version 6 for PostgreSQL.
-- Generated from eat_curate/sinks/sql/schema.py by `eat-curate db ddl --dialect postgresql`. Do not edit by hand.
-- `eat-curate db init --db URL` creates the same tables (and upgrades older databases).

CREATE TABLE eat_meta (
	key VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (key)
);

CREATE TABLE errors (
	image_id VARCHAR(128) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	message TEXT NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (image_id, model_id)
);

CREATE TABLE images (
	image_id VARCHAR(128) NOT NULL,
	path TEXT NOT NULL,
	album TEXT,
	content_hash VARCHAR(64),
	bytes BIGINT,
	mtime FLOAT(53),
	width INTEGER,
	height INTEGER,
	oriented_width INTEGER,
	oriented_height INTEGER,
	format VARCHAR(16),
	phash BIGINT,
	captured_at TIMESTAMP WITHOUT TIME ZONE,
	extra TEXT,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
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
	registered_at TIMESTAMP WITH TIME ZONE NOT NULL,
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
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	ended_at TIMESTAMP WITH TIME ZONE,
	ok INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	skipped INTEGER NOT NULL,
	failed_by_kind TEXT,
	images_per_s FLOAT(53),
	outputs TEXT,
	heartbeat_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (run_id)
);
CREATE INDEX ix_runs_started_at ON runs (started_at);

CREATE TABLE scores (
	image_id VARCHAR(128) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	album TEXT,
	run_id VARCHAR(64) NOT NULL,
	p1 FLOAT(24) NOT NULL,
	p2 FLOAT(24) NOT NULL,
	p3 FLOAT(24) NOT NULL,
	p4 FLOAT(24) NOT NULL,
	p5 FLOAT(24) NOT NULL,
	p6 FLOAT(24) NOT NULL,
	p7 FLOAT(24) NOT NULL,
	p8 FLOAT(24) NOT NULL,
	p9 FLOAT(24) NOT NULL,
	p10 FLOAT(24) NOT NULL,
	mean FLOAT(53) NOT NULL,
	std FLOAT(53) NOT NULL,
	scored_at TIMESTAMP WITH TIME ZONE NOT NULL,
	scored_bytes BIGINT,
	scored_mtime FLOAT(53),
	scored_content_hash VARCHAR(64),
	PRIMARY KEY (image_id, model_id)
);
CREATE INDEX ix_scores_model_album_rank ON scores (model_id, album, mean DESC, image_id COLLATE "C");

INSERT INTO eat_meta (key, value) VALUES ('schema_version', '6');
