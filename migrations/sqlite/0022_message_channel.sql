-- MyOperator for notifications (issue 15, item 4): which channel a message goes out on.
-- 'notifications': queued through the notifications API (sent through MyOperator when it is
-- configured); 'conversation': everything else (the active provider).
alter table message add column channel text not null default 'conversation';
