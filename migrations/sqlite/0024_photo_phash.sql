-- The crop-tolerant second tier of reuse detection (issue 13): each photo's 64-bit pHash (its
-- bits as a signed integer) with the version of the way it is taken. Kept for every photo
-- measured from now on; looked up only where DROPCHECK_REUSE_HINTS is on.
alter table photo_measure add column phash integer;
alter table photo_measure add column phash_version integer;
