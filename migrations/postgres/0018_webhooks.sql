-- Outbound event webhooks by the Standard Webhooks specification (issue 14, item 5). A
-- domain event an endpoint subscribes to becomes a webhook_message (its id is the
-- `webhook-id` header, the same on every retry and replay; its body the exact bytes sent)
-- and a delivery per endpoint, both written in the event's transaction. Senders claim due
-- deliveries with a lease; every attempt is logged.
create table webhook_endpoint (
    endpoint_id bigint generated always as identity primary key,
    url text not null,
    event_types text not null,            -- JSON array of event types
    secret text not null,                 -- whsec_…, encrypted with the server's key
    previous_secret text,                 -- the one before a rotation, encrypted
    previous_until bigint,               -- …signed with as well until then (24 h)
    enabled bigint not null default 1,
    disabled_reason text,
    failing_since bigint,                -- the first failure since the last success
    created_at bigint not null
);

create table webhook_message (
    message_id text primary key,          -- msg_…: the webhook-id header
    event_id bigint references domain_event (event_id),
    type text not null,
    body text not null,
    created_at bigint not null
);

create table webhook_delivery (
    delivery_id bigint generated always as identity primary key,
    message_id text not null references webhook_message (message_id),
    endpoint_id bigint not null references webhook_endpoint (endpoint_id) on delete cascade,
    status text not null,                 -- pending | succeeded | failed | aborted
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    lease_until bigint,
    last_status bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    unique (message_id, endpoint_id)
);
create index webhook_delivery_due on webhook_delivery (next_attempt_at) where status = 'pending';
create index webhook_delivery_endpoint on webhook_delivery (endpoint_id, delivery_id desc);

create table webhook_attempt (
    delivery_id bigint not null references webhook_delivery (delivery_id) on delete cascade,
    n bigint not null,
    started_at bigint not null,
    status_code bigint,
    duration_ms bigint not null,
    error text,
    response_excerpt text,
    primary key (delivery_id, n)
);
