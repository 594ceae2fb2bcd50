-- Retries until a deadline, not for a number of attempts (issue 11, item 4): a message
-- retries transient failures until `retry_from` (null: `created_at`) plus the retry horizon
-- (`DROPCHECK_RETRY_FOR_SECONDS`, 24 h). A resend starts a new series (`retry_from` = then).
alter table message add column retry_from bigint;
