-- Project settings (issue 10). A drop completes itself when every step has a photo, unless
-- its project waits for the contractor's `DR… DONE` (`wait_for_done`, off by default).
-- `created_by` says who created the project: an admin's e-mail, "API key <name>" for a
-- project `POST /api/submit-installation` created, "system" for the first start's default.
alter table project add column wait_for_done boolean not null default false;
alter table project add column created_by text not null default '';
