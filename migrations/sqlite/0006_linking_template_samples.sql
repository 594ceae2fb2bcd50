-- Phone linking (SPEC 6.4): one row per user; the code is kept only as an HMAC under the
-- server's secret key, until it is used or the link is started again.
create table phone_link (
    user_id integer primary key references app_user (user_id) on delete cascade,
    phone text not null,
    code_hash text,
    code_expires_at integer,
    attempts integer not null default 0,
    verified_at integer,
    created_at integer not null
);
-- A number links to one account at a time.
create unique index phone_link_verified_phone on phone_link (phone) where verified_at is not null;
create index phone_link_phone on phone_link (phone);

-- Template editing: the sample variables the preview and the save check render with.
alter table message_template add column sample_vars text;
