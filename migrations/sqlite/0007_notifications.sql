-- The notifications API (SPEC 7): a caller's reference for each message, and per-contact
-- preferences: message types (template names, space-separated) the contact does not want.
alter table message add column reference_id text;
alter table contact add column muted_types text;
