-- Settings → Integrations (issue 4): the provider and its credentials as an admin entered
-- them. `name` is the environment variable's name; a value from the environment wins.
-- Secret values are XChaCha20-Poly1305 ciphertexts ("v1:" + base64), never plain text.
create table integration_setting (
    name text primary key,
    value text not null,
    updated_at bigint not null,
    updated_by text not null
);
