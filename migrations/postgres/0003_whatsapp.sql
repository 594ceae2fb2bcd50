-- The WhatsApp loop: the webhook ledger, the inbound event inbox, conversation context,
-- photos waiting for a drop number, editable reply templates, and outbox columns.

-- Every webhook request whose signature verified, kept as received (replayable), with what
-- came of it: accepted (its events are in inbound_event) or rejected (malformed, kept for
-- inspection).
create table webhook_receipt (
    receipt_id bigint generated always as identity primary key,
    provider text not null,
    path text not null,
    received_at bigint not null,
    content_type text not null,
    body text not null,
    verdict text not null check (verdict in ('accepted', 'rejected')),
    error text,
    event_count bigint not null default 0,
    duplicate_count bigint not null default 0
);
create index webhook_receipt_time on webhook_receipt (received_at desc);

-- One row per message or status a webhook carried. (provider, dedupe_key) is unique, so a
-- redelivery has no second effect. Events of one phone are processed in event_id order.
create table inbound_event (
    event_id bigint generated always as identity primary key,
    receipt_id bigint references webhook_receipt (receipt_id) on delete set null,
    provider text not null,
    dedupe_key text not null,
    kind text not null,
    phone text not null default '',
    payload text not null,
    state text not null default 'pending' check (state in ('pending', 'processing', 'done', 'failed')),
    attempts bigint not null default 0,
    lease_until bigint,
    next_attempt_at bigint not null,
    error text,
    result text,
    received_at bigint not null,
    processed_at bigint,
    unique (provider, dedupe_key)
);
create index inbound_event_due on inbound_event (state, event_id);
create index inbound_event_phone on inbound_event (phone, event_id);

-- A contractor's conversation context: the active project and drop, idle-expired after 30 min.
create table conversation (
    phone text primary key,
    project_id bigint references project (project_id) on delete set null,
    drop_id bigint references drop_job (drop_id) on delete set null,
    updated_at bigint not null
);

-- Photos that arrived before a drop number; attached when one arrives within 30 minutes.
create table held_photo (
    held_id bigint generated always as identity primary key,
    phone text not null,
    sha256 text not null,
    mime_type text not null,
    size_bytes bigint not null,
    width bigint not null,
    height bigint not null,
    provider_media_id text,
    step_hint bigint,
    received_at bigint not null
);
create index held_photo_phone on held_photo (phone, received_at);

-- Reply and notification templates (minijinja); built-ins are seeded, admins edit them.
create table message_template (
    name text primary key,
    body text not null,
    enabled bigint not null default 1,
    updated_at bigint not null
);

alter table message add column lease_until bigint;
alter table message add column batch_key text;
create index message_phone on message (phone, message_id);
