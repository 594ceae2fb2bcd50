-- Sign-in throttling (issue 9): one row per throttled key — an account at an address
-- ("acct:<email> <address>") or an address ("addr:<address>"). An attempt is claimed (the
-- counter raised) before the password is checked, in one conditional upsert, so parallel
-- attempts can never pass the limit. A key at its limit is locked for a time that doubles
-- with each consecutive lockout (`lockouts`); a success clears the account's row.
create table login_throttle (
    key text primary key,
    failures integer not null,
    window_start bigint not null,
    locked_until bigint not null default 0,
    lockouts integer not null default 0
);
drop table login_failure;

-- Live updates (issue 9): one query a second per server answers "did anything change?" for
-- every open page; the newest message change is read from this index, not a scan.
create index message_updated on message (updated_at);
