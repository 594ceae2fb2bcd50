-- Contact profiles (issue 14, item 1): birthday (month and day, an optional year), the
-- contact's time zone, consent (opted in / out, when and how), typed custom attributes, and
-- CSV imports with their rejected rows. `opted_out` stays the column every send checks;
-- `consent` says how the contact stands (unknown: transactional messages only).
alter table contact add column birthday_month integer;
alter table contact add column birthday_day integer;
alter table contact add column birthday_year integer;
alter table contact add column time_zone text;
alter table contact add column consent text not null default 'unknown';
alter table contact add column consent_at integer;
alter table contact add column consent_source text;
update contact set consent = 'opted_out' where opted_out = 1;
create index contact_birthday on contact (birthday_month, birthday_day);

create table attribute_def (
    key text primary key,
    label text not null,
    type text not null check (type in ('text', 'number', 'date', 'bool', 'enum', 'url')),
    options text not null default '',      -- enum: options separated by newlines
    created_at integer not null
);

create table contact_attribute (
    contact_id integer not null references contact (contact_id) on delete cascade,
    key text not null references attribute_def (key) on delete cascade,
    value text not null,                   -- canonical text of the typed value
    primary key (contact_id, key)
);
create index contact_attribute_value on contact_attribute (key, value);

create table contact_import (
    import_id integer primary key,
    file_name text not null,
    created_by text not null,
    created_at integer not null,
    csv text not null,
    report text,                           -- JSON, once the import ran
    rejected_csv text                      -- the rejected rows with their reasons, once it ran
);

-- A contact's (or a drop's) events, newest first, for its page.
create index domain_event_subject on domain_event (subject, event_id);

-- A rule's delay action: the run waits (status 'waiting') until resume_at, then a sweep
-- claims it and does the actions from resume_idx on, at the depth of the event that ran it.
alter table automation_run add column resume_at integer;
alter table automation_run add column resume_idx integer;
alter table automation_run add column depth integer not null default 0;
create index automation_run_waiting on automation_run (status, resume_at);
