-- Dropcheck schema, SQLite dialect. Timestamps are unix milliseconds (generated in Rust),
-- ids are integer keys; the PostgreSQL folder reaches the same schema with bigint columns.
create table project (
    project_id integer primary key,
    name text not null unique,
    drop_pattern text not null,
    created_at integer not null
);
-- "Velo Test" and "velo test" are the same project.
create unique index project_name_lower on project (lower(name));

create table checklist_step (
    project_id integer not null references project (project_id) on delete cascade,
    step_no integer not null,
    name text not null,
    description text not null default '',
    primary key (project_id, step_no)
);

create table contact (
    contact_id integer primary key,
    phone text not null unique,
    name text not null default '',
    opted_out integer not null default 0,
    last_inbound_at integer,
    created_at integer not null
);

create table app_user (
    user_id integer primary key,
    email text not null unique,
    password_hash text not null,
    role text not null check (role in ('admin', 'reviewer')),
    phone text unique,
    created_at integer not null
);

create table drop_job (
    drop_id integer primary key,
    drop_number text not null unique,
    project_id integer not null references project (project_id),
    contractor_id integer references contact (contact_id),
    status text not null check (status in ('collecting', 'unreviewed', 'incomplete', 'resubmitted', 'approved')),
    round integer not null default 1,
    created_at integer not null,
    activity_at integer not null,
    unreviewed_at integer,
    incomplete_at integer,
    resubmitted_at integer,
    approved_at integer,
    feedback_sent_at integer
);
create index drop_job_activity on drop_job (activity_at desc, drop_id desc);
create index drop_job_status_activity on drop_job (status, activity_at desc, drop_id desc);
create index drop_job_project_activity on drop_job (project_id, activity_at desc, drop_id desc);
create index drop_job_contractor_activity on drop_job (contractor_id, activity_at desc, drop_id desc);

-- Badge counts come from here, kept in step by every status change, never COUNT(*) per render.
create table drop_status_count (
    status text primary key,
    n integer not null
);
insert into drop_status_count (status, n) values
    ('collecting', 0), ('unreviewed', 0), ('incomplete', 0), ('resubmitted', 0), ('approved', 0);

create table photo (
    photo_id integer primary key,
    drop_id integer not null references drop_job (drop_id) on delete cascade,
    step_no integer not null,
    sha256 text not null,
    mime_type text not null,
    size_bytes integer not null,
    width integer not null,
    height integer not null,
    provider_media_id text,
    round integer not null,
    received_at integer not null
);
create index photo_drop_step on photo (drop_id, step_no, received_at desc);

create table step_review (
    drop_id integer not null references drop_job (drop_id) on delete cascade,
    step_no integer not null,
    verdict text not null check (verdict in ('pending', 'ok', 'missing', 'retake', 'rework')),
    reason_code text,
    note text not null default '',
    reviewer_id integer references app_user (user_id) on delete set null,
    -- set at a resubmission: what the step was before it reopened (for side-by-side review)
    prev_verdict text,
    prev_note text,
    updated_at integer not null,
    primary key (drop_id, step_no)
);

-- Who did what when, per drop: transitions, verdicts, photo moves.
create table drop_event (
    event_id integer primary key,
    drop_id integer not null references drop_job (drop_id) on delete cascade,
    at integer not null,
    actor text not null,
    kind text not null,
    detail text not null default ''
);
create index drop_event_drop on drop_event (drop_id, event_id);

create table review_reason (
    code text primary key,
    label text not null,
    position integer not null
);

-- Every outbound message is written here in the same transaction as the change that caused it.
create table message (
    message_id integer primary key,
    direction text not null check (direction in ('in', 'out')),
    phone text not null,
    body text not null,
    template text,
    drop_id integer references drop_job (drop_id) on delete set null,
    status text not null,
    provider_message_id text unique,
    error_code text,
    error_text text,
    attempts integer not null default 0,
    next_attempt_at integer,
    created_at integer not null,
    updated_at integer not null
);
create index message_status_due on message (status, next_attempt_at);
create index message_drop on message (drop_id, message_id);

create table api_key (
    api_key_id integer primary key,
    name text not null,
    prefix text not null,
    key_hash text not null unique,
    scopes text not null,
    created_at integer not null,
    last_used_at integer,
    revoked_at integer
);

create table session (
    session_id text primary key,
    data blob not null,
    expires_at integer not null
);
create index session_expiry on session (expires_at);

create table login_failure (
    login_failure_id integer primary key,
    email text not null,
    address text not null,
    at integer not null
);
create index login_failure_email on login_failure (email, at);
create index login_failure_address on login_failure (address, at);
