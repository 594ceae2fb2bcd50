-- Automation (issue 14): domain events recorded in the transaction of the change that caused
-- them, rules (trigger, conditions, actions as JSON), and a run log. A run's dedupe_key is
-- unique: an event runs a rule once (ev:{event}:{rule}), a held status once per episode
-- (held:{rule}:{drop}:{since}), however many servers share the database. Each action that
-- sends queues its message with the idempotency key auto:{run}:{idx}[:{phone}].
create table domain_event (
    event_id bigint generated always as identity primary key,
    type text not null,
    subject text not null default '',     -- DR12345678, +27…, or '' (an API event without one)
    payload text not null,                -- JSON: the event's data (a rule's context)
    origin text not null,                 -- system | api | inbound | automation
    depth bigint not null default 0,     -- events caused by a rule's action: its event's + 1
    idempotency_key text unique,
    occurred_at bigint not null
);
create index domain_event_type on domain_event (type, event_id);

create table automation_rule (
    rule_id bigint generated always as identity primary key,
    name text not null,
    enabled boolean not null default false,
    trigger_type text not null,
    definition text not null,             -- the rule as JSON, exactly as the API takes it
    version bigint not null default 1,
    builtin text unique,                  -- the built-in example's key
    created_at bigint not null,
    updated_at bigint not null
);
create index automation_rule_trigger on automation_rule (trigger_type, enabled, rule_id);

create table automation_run (
    run_id bigint generated always as identity primary key,
    rule_id bigint not null references automation_rule (rule_id) on delete cascade,
    rule_version bigint not null,
    trigger_type text not null,
    event_id bigint references domain_event (event_id),
    subject text not null default '',
    drop_id bigint references drop_job (drop_id) on delete cascade,
    contact_phone text,
    episode_at bigint,                   -- a held status: when the drop entered it
    dedupe_key text not null unique,
    status text not null,                 -- succeeded | partial | failed | skipped | condition_error
    detail text not null default '',
    context text not null,                -- JSON
    started_at bigint not null
);
create index automation_run_rule on automation_run (rule_id, run_id desc);
create index automation_run_held on automation_run (rule_id, drop_id, episode_at);
create index automation_run_contact on automation_run (contact_phone, run_id desc);

create table automation_run_action (
    run_id bigint not null references automation_run (run_id) on delete cascade,
    idx bigint not null,
    type text not null,
    recipient text not null default '',   -- the number a send went to (one row per recipient)
    status text not null,                 -- done | skipped | failed
    message_id bigint references message (message_id),
    detail text not null default '',
    primary key (run_id, idx, recipient)
);
