-- The drops list shows "photos on n of m steps" per row. Keeping both numbers on their rows
-- (maintained in the transactions that change photos or checklists) replaces two correlated
-- subqueries per listed drop.
alter table drop_job add column photo_steps integer not null default 0;
update drop_job set photo_steps = (select count(distinct ph.step_no) from photo ph where ph.drop_id = drop_job.drop_id);
alter table project add column step_count integer not null default 0;
update project set step_count = (select count(*) from checklist_step cs where cs.project_id = project.project_id);
