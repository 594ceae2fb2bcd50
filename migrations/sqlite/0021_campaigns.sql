-- Broadcasts (issue 14, item 6): an approved template to a tag's contacts. Each recipient
-- row is written when the campaign starts (eligible: pending; or excluded with the reason)
-- and queues its message once, under the idempotency key camp:{campaign}:{contact}.
create table campaign (
    campaign_id integer primary key,
    name text not null,
    template text not null,
    variables text not null default '{}',  -- JSON: name → a Jinja2 text over the contact's variables
    tag text not null,
    status text not null default 'draft',  -- draft | running | paused | cancelled | done
    pace_per_minute integer not null,
    daily_cap integer not null,
    quiet_start integer,                        -- minutes after local midnight, in the contact's zone
    quiet_end integer,
    blocked_prefixes text not null,        -- JSON list of number prefixes not sent to (+1)
    frequency_hours integer not null,           -- no contact gets two broadcasts closer than this
    detail text not null default '',       -- why it paused, stopped or finished
    created_by text not null,
    created_at integer not null,
    started_at integer,
    last_batch_at integer,
    finished_at integer
);

create table campaign_recipient (
    campaign_id integer not null references campaign (campaign_id) on delete cascade,
    contact_id integer not null references contact (contact_id) on delete cascade,
    phone text not null,
    status text not null,                  -- pending | queued | excluded | later | failed
    reason text not null default '',
    message_id integer,
    next_at integer not null default 0,
    queued_at integer,
    primary key (campaign_id, contact_id)
);
create index campaign_recipient_due on campaign_recipient (campaign_id, status, next_at);
create index campaign_recipient_message on campaign_recipient (message_id);
create index campaign_recipient_contact on campaign_recipient (contact_id, queued_at);
