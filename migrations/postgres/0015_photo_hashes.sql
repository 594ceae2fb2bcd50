-- Reuse detection (issue 13, item 2). Each photo's PDQ hash (64 hex digits, Meta's order),
-- its quality (0-100) and the version of the way it was taken, beside its measures; the
-- photo a "reused" flag points at; photos found by their SHA-256.
alter table photo_measure add column pdq_hash text;
alter table photo_measure add column pdq_quality bigint;
alter table photo_measure add column pdq_version bigint;
alter table photo_check add column match_photo_id bigint references photo (photo_id) on delete set null;
create index photo_sha256 on photo (sha256);
