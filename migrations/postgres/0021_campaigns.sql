-- Broadcasts (issue 14, item 6): an approved template to a tag's contacts. Each recipient
-- row is written when the campaign starts (eligible: pending; or excluded with the reason)
-- and queues its message once, under the idempotency key camp:{campaign}:{contact}.
create table campaign (
    campaign_id bigint generated always as identity primary key,
    name text not null,
    template text not null,
    variables text not null default '{}',  -- JSON: name → a Jinja2 text over the contact's variables
    tag text not null,
    status text not null default 'draft',  -- draft | running | paused | cancelled | done
    pace_per_minute bigint not null,
    daily_cap bigint not null,
    quiet_start bigint,                        -- minutes after local midnight, in the contact's zone
    quiet_end bigint,
    blocked_prefixes text not null,        -- JSON list of number prefixes not sent to (+1)
    frequency_hours bigint not null,           -- no contact gets two broadcasts closer than this
    detail text not null default '',       -- why it paused, stopped or finished
    created_by text not null,
    created_at bigint not null,
    started_at bigint,
    last_batch_at bigint,
    finished_at bigint
);

create table campaign_recipient (
    campaign_id bigint not null references campaign (campaign_id) on delete cascade,
    contact_id bigint not null references contact (contact_id) on delete cascade,
    phone text not null,
    status text not null,                  -- pending | queued | excluded | later | failed
    reason text not null default '',
    message_id bigint,
    next_at bigint not null default 0,
    queued_at bigint,
    primary key (campaign_id, contact_id)
);
create index campaign_recipient_due on campaign_recipient (campaign_id, status, next_at);
create index campaign_recipient_message on campaign_recipient (message_id);
create index campaign_recipient_contact on campaign_recipient (contact_id, queued_at);
