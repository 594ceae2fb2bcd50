-- Files a contractor sends that are not checklist photos (PDFs, other image types, audio,
-- video): stored content-addressed like photos and kept with the drop for the reviewer.
create table attachment (
    attachment_id bigint generated always as identity primary key,
    drop_id bigint references drop_job (drop_id) on delete set null,
    phone text not null,
    sha256 text not null,
    mime_type text not null,
    size_bytes bigint not null,
    provider_media_id text,
    received_at bigint not null
);
create index attachment_drop on attachment (drop_id, attachment_id);
