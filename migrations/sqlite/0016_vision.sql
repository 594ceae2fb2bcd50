-- The optional vision check (issue 13, item 3): a photo filed while a vision model is
-- configured gets a job, claimed with a lease by a vision worker (several replicas side by
-- side), retried with backoff on 429/5xx/timeouts; its answer is kept in photo_vision and
-- shown as a photo_check of kind 'vision'.
create table vision_job (
    photo_id integer primary key references photo (photo_id) on delete cascade,
    state text not null,            -- queued | running | done
    attempts integer not null default 0,
    next_at integer not null,
    lease_until integer,
    last_error text,
    created_at integer not null
);
create index vision_job_due on vision_job (next_at) where state <> 'done';

create table photo_vision (
    photo_id integer primary key references photo (photo_id) on delete cascade,
    -- ok | retake (the model answered) | unknown (an answer outside the schema) | refused |
    -- truncated | failed (no answer after the retries, or the endpoint refused the request)
    status text not null,
    shows_subject integer,
    legible integer,
    confidence real,
    problems text,                  -- JSON array of strings
    read_values text,               -- JSON object: the value's label -> what was read, or null
    model text not null,
    latency_ms integer,
    error text,
    finished_at integer not null
);

-- Per step: the question put to the model (else built from the step's name and description),
-- the values to read (a JSON array of labels), and whether a "retake" answer goes back to the
-- contractor at once (off by default).
alter table checklist_step add column vision_prompt text;
alter table checklist_step add column vision_values text;
alter table checklist_step add column vision_auto_retake integer not null default 0;
