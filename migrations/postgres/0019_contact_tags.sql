-- Contact tags (issue 14, item 1, first part): names unique without regard to case, and who
-- added each tag to a contact (a user, a rule, the API).
create table tag (
    tag_id bigint generated always as identity primary key,
    name text not null,
    name_key text not null unique,        -- lower-cased name
    created_at bigint not null
);

create table contact_tag (
    contact_id bigint not null references contact (contact_id) on delete cascade,
    tag_id bigint not null references tag (tag_id) on delete cascade,
    added_by text not null,
    added_at bigint not null,
    primary key (contact_id, tag_id)
);
create index contact_tag_tag on contact_tag (tag_id, contact_id);
