-- eat-curate read-side views for PostgreSQL.
-- Generated from eat_curate/library/queries.py by eat_curate/library/sql_views.py; do not edit by hand.
-- Regenerate: python -m eat_curate.library.sql_views postgresql > sql/views_postgresql.sql
-- Filter by model: SELECT * FROM eat_album_stats WHERE model_id = '...' ORDER BY mean DESC;

DROP VIEW IF EXISTS eat_ranked_images;

CREATE VIEW eat_ranked_images AS
SELECT ranked.model_id, ranked.album, ranked.rank, ranked.image_id, images.path, scores.mean, scores.std, images.captured_at, scores.p1, scores.p2, scores.p3, scores.p4, scores.p5, scores.p6, scores.p7, scores.p8, scores.p9, scores.p10, images.phash, scores.scored_at, scores.run_id, images.width, images.height, images.bytes, images.format, images.mtime, ranked.image_id IN (SELECT paired_files.image_id
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files) AS paired
FROM (SELECT scores.model_id AS model_id, scores.album AS album, scores.image_id AS image_id, scores.mean AS mean, row_number() OVER (PARTITION BY scores.model_id, scores.album ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS rank
FROM scores
WHERE ((scores.model_id, scores.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked))) AS ranked JOIN scores ON scores.image_id = ranked.image_id AND scores.model_id = ranked.model_id JOIN images ON images.image_id = ranked.image_id;

DROP VIEW IF EXISTS eat_album_stats;

CREATE VIEW eat_album_stats AS
SELECT album_stats.model_id, album_stats.album, album_stats.images, album_stats.mean, album_stats.median, album_stats.top10_mean, album_stats.share_above, album_stats.threshold, album_stats.best_score, album_stats.best_image_id, images.path AS best_path
FROM (SELECT album_counts.model_id AS model_id, album_counts.album AS album, album_counts.images AS images, album_counts.mean AS mean, CASE WHEN (album_counts.album IS NULL) THEN (SELECT avg(ordered.mean) AS avg_1
FROM (SELECT album_row.mean AS mean, row_number() OVER (ORDER BY album_row.mean DESC) AS position
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album IS NULL AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked))) AS ordered
WHERE ordered.position IN ((album_counts.images + 1) / 2, (album_counts.images + 2) / 2)) ELSE (SELECT avg(ordered.mean) AS avg_2
FROM (SELECT album_row.mean AS mean, row_number() OVER (ORDER BY album_row.mean DESC) AS position
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album = album_counts.album AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked))) AS ordered
WHERE ordered.position IN ((album_counts.images + 1) / 2, (album_counts.images + 2) / 2)) END AS median, CASE WHEN (album_counts.album IS NULL) THEN (SELECT avg(best.mean) AS avg_3
FROM (SELECT album_row.mean AS mean
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album IS NULL AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked)) ORDER BY album_row.mean DESC, album_row.image_id COLLATE "C"
 LIMIT 10) AS best) ELSE (SELECT avg(best.mean) AS avg_4
FROM (SELECT album_row.mean AS mean
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album = album_counts.album AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked)) ORDER BY album_row.mean DESC, album_row.image_id COLLATE "C"
 LIMIT 10) AS best) END AS top10_mean, CAST(album_counts.above AS FLOAT(53)) / CAST(CAST(album_counts.images AS FLOAT(53)) AS FLOAT(53)) AS share_above, album_counts.best_score AS best_score, CASE WHEN (album_counts.album IS NULL) THEN (SELECT album_row.image_id
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album IS NULL AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked)) ORDER BY album_row.mean DESC, album_row.image_id COLLATE "C"
 LIMIT 1) ELSE (SELECT album_row.image_id
FROM scores AS album_row
WHERE album_row.model_id = album_counts.model_id AND album_row.album = album_counts.album AND ((album_row.model_id, album_row.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked)) ORDER BY album_row.mean DESC, album_row.image_id COLLATE "C"
 LIMIT 1) END AS best_image_id, CAST(5.0 AS FLOAT(53)) AS threshold
FROM (SELECT scores.model_id AS model_id, scores.album AS album, count(*) AS images, avg(scores.mean) AS mean, max(scores.mean) AS best_score, sum(CASE WHEN (scores.mean >= 5.0) THEN 1 ELSE 0 END) AS above
FROM scores
WHERE ((scores.model_id, scores.image_id) NOT IN (SELECT outranked.model_id, outranked.image_id
FROM (SELECT shot_members.model_id AS model_id, shot_members.image_id AS image_id
FROM (SELECT scores.model_id AS model_id, scores.image_id AS image_id, row_number() OVER (PARTITION BY scores.model_id, paired_files.shot ORDER BY scores.mean DESC, scores.image_id COLLATE "C") AS place
FROM (SELECT images.shot AS shot, images.image_id AS image_id, images.path AS path
FROM images
WHERE images.shot IN (SELECT paired_shots.shot
FROM (SELECT images.shot AS shot
FROM images
WHERE images.shot IS NOT NULL GROUP BY images.shot
HAVING count(*) > 1) AS paired_shots)) AS paired_files JOIN scores ON scores.image_id = paired_files.image_id) AS shot_members
WHERE shot_members.place > 1) AS outranked)) GROUP BY scores.model_id, scores.album) AS album_counts) AS album_stats JOIN images ON images.image_id = album_stats.best_image_id;
