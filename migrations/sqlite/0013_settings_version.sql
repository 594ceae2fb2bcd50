-- What the inbox reads of the settings (message templates, projects, their checklists, the
-- review reasons) is cached in memory and read again only when this number has moved. Every
-- change to those tables moves it, by trigger, in the transaction of the change: no code
-- path can forget to, and every replica sees another's change at its next batch.
create table settings_version (
    id integer primary key check (id = 1),
    version integer not null
);
insert into settings_version (id, version) values (1, 1);

create trigger message_template_ins after insert on message_template begin update settings_version set version = version + 1; end;
create trigger message_template_upd after update on message_template begin update settings_version set version = version + 1; end;
create trigger message_template_del after delete on message_template begin update settings_version set version = version + 1; end;
create trigger project_ins after insert on project begin update settings_version set version = version + 1; end;
create trigger project_upd after update on project begin update settings_version set version = version + 1; end;
create trigger project_del after delete on project begin update settings_version set version = version + 1; end;
create trigger checklist_step_ins after insert on checklist_step begin update settings_version set version = version + 1; end;
create trigger checklist_step_upd after update on checklist_step begin update settings_version set version = version + 1; end;
create trigger checklist_step_del after delete on checklist_step begin update settings_version set version = version + 1; end;
create trigger review_reason_ins after insert on review_reason begin update settings_version set version = version + 1; end;
create trigger review_reason_upd after update on review_reason begin update settings_version set version = version + 1; end;
create trigger review_reason_del after delete on review_reason begin update settings_version set version = version + 1; end;

-- Whether the number may have a photo acknowledgment waiting for the rest of its burst: a
-- reply that ends a burst looks for one only then (1 for every existing row: looked for once).
alter table conversation add column burst_open integer not null default 1;

-- The inbox's order checks (an earlier unfinished event of the same number?) look only at
-- unfinished events, not at the number's whole history: without this they read every event
-- the number ever sent, and slowed down as the history grew.
create index inbound_event_open on inbound_event (phone, event_id) where state in ('pending', 'processing');
