-- One transaction per inbound event (issue 11, item 1).
--
-- Every outbound message names its cause: "reply:<provider message id>:<n>" for the n-th
-- reply to an inbound message, "review:<drop id>:<round>:incomplete" for review feedback,
-- "api:<caller's Idempotency-Key>" or a random one per API request. A redelivery, a
-- reprocess or a retried transaction can then never queue a second copy.
alter table message add column idempotency_key text;
create unique index message_idempotency on message (idempotency_key);

-- Burst acknowledgments waiting to be sent are found by key and by number without a scan.
create index message_open_batch on message (batch_key) where batch_key is not null;
create index message_open_batch_phone on message (phone) where batch_key is not null;

-- The per-number reply limit (10 a minute), kept by the transaction that sends a reply
-- instead of counting the outbox: the times (unix ms) of the number's replies in the last
-- minute, comma-separated.
alter table conversation add column recent_replies text not null default '';
