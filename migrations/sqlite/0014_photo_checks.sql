-- Usable-photo checks (issue 13). A photo's measures are taken once per content (by
-- SHA-256, when it is downloaded, outside any transaction) with the version of the way they
-- are taken; each photo filed on a drop is judged against its project's thresholds and its
-- step's kind, one row per check. A flag is open until a reviewer dismisses it or a new photo
-- replaces the photo on its step (resolved_by says which).
create table photo_measure (
    sha256 text primary key,
    algo_version integer not null,
    long_side integer not null,
    mean_luma real not null,
    bright_share real not null,
    laplacian_var real not null,
    best_tile_var real not null
);

create table photo_check (
    photo_id integer not null references photo (photo_id) on delete cascade,
    kind text not null,
    result text not null,
    value real not null,
    detail text not null,
    resolved_at integer,
    resolved_by text,
    primary key (photo_id, kind)
);
create index photo_check_open on photo_check (photo_id) where result = 'flag' and resolved_at is null;

-- A project's threshold overrides (JSON of the fields it changes; null: the defaults), and
-- steps whose photo is a screenshot (a speed test): focus and exposure are not checked.
alter table project add column photo_thresholds text;
alter table checklist_step add column screenshot integer not null default 0;
