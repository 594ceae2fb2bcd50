-- What the inbox reads of the settings (message templates, projects, their checklists, the
-- review reasons) is cached in memory and read again only when this number has moved. Every
-- change to those tables moves it, by trigger, in the transaction of the change: no code
-- path can forget to, and every replica sees another's change at its next batch.
create table settings_version (
    id integer primary key check (id = 1),
    version bigint not null
);
insert into settings_version (id, version) values (1, 1);

create function bump_settings_version() returns trigger language plpgsql as $$
begin
    update settings_version set version = version + 1;
    return null;
end
$$;

create trigger message_template_changed after insert or update or delete on message_template
    for each row execute function bump_settings_version();
create trigger project_changed after insert or update or delete on project
    for each row execute function bump_settings_version();
create trigger checklist_step_changed after insert or update or delete on checklist_step
    for each row execute function bump_settings_version();
create trigger review_reason_changed after insert or update or delete on review_reason
    for each row execute function bump_settings_version();

-- Whether the number may have a photo acknowledgment waiting for the rest of its burst: a
-- reply that ends a burst looks for one only then (1 for every existing row: looked for once).
alter table conversation add column burst_open bigint not null default 1;

-- The inbox's order checks (an earlier unfinished event of the same number?) look only at
-- unfinished events, not at the number's whole history: without this they read every event
-- the number ever sent, and slowed down as the history grew.
create index inbound_event_open on inbound_event (phone, event_id) where state in ('pending', 'processing');
