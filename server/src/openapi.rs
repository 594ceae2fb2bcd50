//! The API document: `GET /api/openapi.json` (OpenAPI 3.1) and `GET /api/docs` (the same,
//! as a page for people). Both are generated from [`OPERATIONS`], one table of every route
//! the API and webhook routers serve; a test (`tests/api/openapi.rs`) takes the paths from the
//! server's route table, probes each path's methods on the running server, and fails when the
//! two differ. (A table rather than per-handler annotations: the
//! handlers' bodies are hand-checked JSON with stable error codes, which the table's
//! descriptions and the README document.)

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Map, Value};

/// One operation: method, path (axum syntax, `{param}`), the API-key scope it needs
/// (`none`, `submit`, `send`, `read`, `admin`, `session` for the signed-in user, `signature`
/// for provider webhooks), a tag, a summary, its query parameters, its request body, and
/// every status it answers with (beyond those all authenticated operations share).
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub query: &'static [Param],
    pub body: Body,
    /// Every status this operation answers with (success first).
    pub statuses: &'static [u16],
    /// The success body's JSON schema, where it is described (else "an object").
    pub response: Option<&'static str>,
}

/// A query parameter: name, JSON schema (as JSON text), description.
pub struct Param(pub &'static str, pub &'static str, pub &'static str);

/// A request body: JSON with this schema, a provider's form, or none.
#[derive(Clone, Copy)]
pub enum Body {
    None,
    Json(&'static str),
    /// `application/x-www-form-urlencoded` with this schema (provider webhooks).
    Form(&'static str),
    /// Whatever the provider sends, checked against its signature.
    Raw,
    /// `multipart/form-data` with this schema (a file upload).
    Multipart(&'static str),
}

const fn op(method: &'static str, path: &'static str, scope: &'static str, tag: &'static str, summary: &'static str) -> Op {
    Op { method, path, scope, tag, summary, query: &[], body: Body::None, statuses: &[200], response: None }
}

impl Op {
    const fn q(mut self, query: &'static [Param]) -> Self {
        self.query = query;
        self
    }
    const fn json(mut self, schema: &'static str) -> Self {
        self.body = Body::Json(schema);
        self
    }
    const fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    const fn st(mut self, statuses: &'static [u16]) -> Self {
        self.statuses = statuses;
        self
    }
    const fn resp(mut self, schema: &'static str) -> Self {
        self.response = Some(schema);
        self
    }
}

/// An automation rule (README, "Automations").
const RULE: &str = r#"{"type": "object", "required": ["name", "trigger", "actions"], "properties": {
    "name": {"type": "string"}, "enabled": {"type": "boolean"}, "stop_processing": {"type": "boolean"},
    "trigger": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string",
        "enum": ["drop.status_changed", "drop.status_held", "message.inbound", "api.event", "schedule.cron",
            "contact.tag_added", "contact.tag_removed"]}}},
    "conditions": {"type": "object", "properties": {
        "all": {"type": "array", "items": {"type": "object", "required": ["field", "op"]}},
        "any": {"type": "array", "items": {"type": "object", "required": ["field", "op"]}}}},
    "actions": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": ["send_template", "send_text", "notify_users", "call_webhook", "add_tag", "remove_tag"]}}}}}}"#;

/// A page of automation runs.
const RUNS: &str = r#"{"type": "object", "required": ["runs"], "properties": {"next_before": {"type": ["integer", "null"]},
    "runs": {"type": "array", "items": {"type": "object", "required": ["id", "status", "trigger", "subject", "actions", "started_at"], "properties": {
        "id": {"type": "integer"}, "status": {"type": "string", "enum": ["succeeded", "partial", "failed", "skipped", "condition_error"]},
        "trigger": {"type": "string"}, "subject": {"type": "string"}, "detail": {"type": "string"}, "context": {"type": "object"},
        "started_at": {"type": "string", "format": "date-time"},
        "actions": {"type": "array", "items": {"type": "object", "required": ["type", "status"], "properties": {
            "type": {"type": "string"}, "status": {"type": "string", "enum": ["done", "skipped", "failed"]},
            "recipient": {"type": ["string", "null"]}, "message_id": {"type": ["integer", "null"]},
            "detail": {"type": "string"}, "error": {"type": ["string", "null"]}}}}}}}}}"#;

/// A photo's usable-photo checks, in `GET /api/v1/drops/{number}`.
const DROP_DETAIL: &str = r#"{"type": "object", "required": ["drop_number", "status", "steps", "history"], "properties": {
    "drop_number": {"type": "string"}, "status": {"type": "string"}, "project": {"type": "string"}, "round": {"type": "integer"},
    "contractor": {"type": ["object", "null"], "properties": {"phone": {"type": "string"}, "name": {"type": "string"}}},
    "created_at": {"type": "string", "format": "date-time"}, "activity_at": {"type": "string", "format": "date-time"},
    "steps": {"type": "array", "items": {"type": "object", "properties": {
        "number": {"type": "integer"}, "name": {"type": "string"}, "verdict": {"type": "string"},
        "reason": {"type": ["string", "null"]}, "note": {"type": "string"}, "previous_verdict": {"type": ["string", "null"]},
        "photos": {"type": "array", "description": "newest first", "items": {"type": "object",
            "required": ["id", "sha256", "round", "received_at", "checks"], "properties": {
            "id": {"type": "integer"}, "sha256": {"type": "string"}, "mime_type": {"type": "string"}, "round": {"type": "integer"},
            "received_at": {"type": "string", "format": "date-time"}, "width": {"type": "integer"}, "height": {"type": "integer"},
            "checks": {"type": "array", "description": "usable-photo checks, measured when the photo arrived (empty: not checked)",
                "items": {"type": "object", "required": ["kind", "result", "value", "detail"], "properties": {
                "kind": {"type": "string", "enum": ["small", "dark", "overexposed", "blurred", "featureless", "reused", "possibly_reused", "vision"]},
                "result": {"type": "string", "enum": ["flag", "warn", "pass"]},
                "value": {"type": "number", "description": "long side px; mean luma 0-255; share of pixels at 250+; Laplacian variance; PDQ quality 0-100; for reused the PDQ distance (0: the same file); for possibly_reused the pHash distance of 64 bits (a warning only, with DROPCHECK_REUSE_HINTS on); for vision the model's confidence 0-1 (0: no answer)"},
                "match": {"type": ["object", "null"], "description": "reused, possibly_reused: the earlier photo", "properties": {
                    "photo_id": {"type": "integer"}, "drop_number": {"type": "string"}, "step": {"type": "integer"},
                    "distance": {"type": "number"}}},
                "suggestion": {"type": ["string", "null"], "enum": ["ok", "retake", null], "description": "vision: the model's suggestion (null: no answer, see detail)"},
                "values": {"type": ["object", "null"], "description": "vision: each value the step asks to read, by its label: what was read, or null", "additionalProperties": {"type": ["string", "null"]}},
                "model": {"type": ["string", "null"], "description": "vision: the model that answered"},
                "detail": {"type": "string"},
                "resolved_at": {"type": ["string", "null"], "format": "date-time", "description": "a flag dismissed or replaced by a new photo"},
                "resolved_by": {"type": ["string", "null"]}}}}}}}}}},
    "history": {"type": "array", "items": {"type": "object"}}}}"#;

const STR: &str = r#"{"type": "string"}"#;
const DAYS: Param = Param("days", r#"{"type": "integer", "minimum": 1, "maximum": 3660}"#, "the last N days");
const CURSOR: Param = Param("cursor", STR, "next_cursor of the previous page");
const FORMAT: Param = Param(
    "format",
    r#"{"type": "string", "enum": ["json", "csv"]}"#,
    "csv: every matching row as a streamed CSV file (RFC 4180, UTF-8, cells starting with = + - @ prefixed with '); cursor, limit and offset do not apply",
);
const LIMIT: Param = Param("limit", r#"{"type": "integer", "minimum": 1, "maximum": 200}"#, "rows per page (50)");
const TEMPLATE: &str = r#"{"type": "object", "required": ["body"], "properties": {
    "name": {"type": "string"}, "body": {"type": "string"}, "description": {"type": ["string", "null"]},
    "sample_vars": {"type": ["object", "null"]}, "provider_template": {"type": ["object", "null"]}, "enabled": {"type": ["boolean", "null"]}}}"#;
const CONTACT: &str = r#"{"type": "object", "additionalProperties": false, "properties": {
    "phone": {"type": "string"}, "name": {"type": ["string", "null"]}, "opted_out": {"type": ["boolean", "null"]},
    "consent": {"type": ["string", "null"], "enum": ["opted_in", "opted_out", "unknown", null], "description": "opted_in: may get marketing (broadcasts); unknown: transactional only"},
    "muted_types": {"type": ["array", "null"], "items": {"type": "string"}},
    "tags": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1, "maxLength": 50}, "description": "replaces the contact's tags"},
    "attributes": {"type": ["object", "null"], "description": "key → value of a defined attribute (null removes it); others are left as they are"},
    "birthday": {"type": ["object", "null"], "required": ["month", "day"], "properties": {"month": {"type": "integer", "minimum": 1, "maximum": 12},
        "day": {"type": "integer", "minimum": 1, "maximum": 31}, "year": {"type": ["integer", "null"]}}, "description": "null clears it"},
    "time_zone": {"type": ["string", "null"], "description": "IANA name, e.g. Africa/Johannesburg; null clears it"}}}"#;
const ATTRIBUTE: &str = r#"{"type": "object", "required": ["key", "label", "type"], "additionalProperties": false, "properties": {
    "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"}, "label": {"type": "string", "minLength": 1, "maxLength": 80},
    "type": {"type": "string", "enum": ["text", "number", "date", "bool", "enum", "url"]},
    "options": {"type": "array", "items": {"type": "string"}, "description": "an enum's choices"}}}"#;
const IMPORT: &str = r#"{"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "CSV, UTF-8, a heading row; , or ; separated; at most 10 MB, 50 000 rows"},
    "mapping": {"type": "string", "description": "JSON object: heading → phone | name | birthday | time_zone | consent | tags | attribute:KEY | ignore (guessed from the headings when left out)"},
    "default_region": {"type": "string", "description": "country of numbers written without a country code, e.g. ZA"},
    "mode": {"type": "string", "enum": ["skip", "fill_blanks", "overwrite"], "description": "what to do with numbers that are contacts already (skip)"},
    "fire_rules": {"type": "string", "enum": ["true", "false"], "description": "run the contact events' rules (false)"},
    "dry_run": {"type": "string", "enum": ["true", "false"], "description": "say what it would do; write nothing"}}}"#;
const CAMPAIGN: &str = r#"{"type": "object", "required": ["name", "template", "tag"], "additionalProperties": false, "properties": {
    "name": {"type": "string"}, "template": {"type": "string"}, "tag": {"type": "string"},
    "variables": {"type": "object", "additionalProperties": {"type": "string"}},
    "pace_per_minute": {"type": "integer", "minimum": 1, "maximum": 1000}, "daily_cap": {"type": "integer", "minimum": 1, "maximum": 100000},
    "quiet_hours": {"type": ["object", "null"], "required": ["start", "end"], "properties": {"start": {"type": "string"}, "end": {"type": "string"}}},
    "blocked_prefixes": {"type": "array", "items": {"type": "string"}}, "frequency_hours": {"type": "integer", "minimum": 0, "maximum": 720}}}"#;
const LINK: &str = r#"{"type": "object", "required": ["phone"], "properties": {
    "phone": {"type": "string"}, "code": {"type": "string"}, "user": {"type": "string", "description": "e-mail, with an admin key"}}}"#;
const TWILIO_FORM: &str = r#"{"type": "object", "properties": {"MessageSid": {"type": "string"}, "From": {"type": "string"},
    "To": {"type": "string"}, "Body": {"type": "string"}, "NumMedia": {"type": "string"}, "MessageStatus": {"type": "string"}}}"#;

/// Statuses of a JSON body operation besides its own: malformed (400), too large (413), not
/// JSON (415), wrong shape or values (422).
const WITH_BODY: &[u16] = &[400, 413, 415, 422];

pub const OPERATIONS: &[Op] = &[
    op("get", "/health", "none", "service", "Health: {success, status, message, database, uptime_seconds}"),
    op("get", "/db/test", "none", "service", "Database check: {success, message, database}; 503 when unreachable").st(&[200, 503]),
    op("get", "/api/openapi.json", "none", "service", "This document"),
    op("get", "/api/docs", "none", "service", "This document as a page (HTML)"),
    op(
        "post",
        "/api/submit-installation",
        "submit",
        "drops",
        "Register a drop: {drop_number, contractor_number, project_name} → {success, action: created|exists, drop_number, message}",
    )
    .json(
        r#"{"type": "object", "required": ["drop_number", "contractor_number", "project_name"], "properties": {
        "drop_number": {"type": "string"}, "contractor_number": {"type": "string"}, "project_name": {"type": "string"}}}"#,
    )
    .st(&[200, 404, 409]),
    op("post", "/api/resubmit", "submit", "drops", "Incomplete → Resubmitted: {drop_number}")
        .json(r#"{"type": "object", "required": ["drop_number"], "properties": {"drop_number": {"type": "string"}}}"#)
        .st(&[200, 404, 409]),
    op("get", "/api/v1/drops", "read", "drops", "List drops → {drops, next_cursor}")
        .q(&[
            Param(
                "status",
                r#"{"type": "string", "enum": ["collecting", "unreviewed", "incomplete", "resubmitted", "approved"]}"#,
                "one status",
            ),
            Param("project", STR, "project name"),
            Param("contractor", r#"{"type": "string", "maxLength": 200}"#, "phone or name, substring"),
            Param("q", r#"{"type": "string", "maxLength": 200}"#, "drop number, substring"),
            Param("flagged", r#"{"type": "boolean"}"#, "true: only drops with an open photo flag (each drop has open_flags)"),
            CURSOR,
            LIMIT,
            FORMAT,
        ])
        .st(&[200, 400, 404, 422]),
    op("get", "/api/v1/drops/{number}/evidence.pdf", "read", "drops", "The drop's evidence pack (PDF): drop, project, contractor, status, round and dates; per step the current photo (earlier ones smaller), verdict, reason, note, reviewer and time, each photo's received time, SHA-256 and checks; the timeline. Searchable text")
        .st(&[200, 404, 422]),
    op("get", "/api/v1/drops/{number}", "read", "drops", "One drop with steps, photos (and their checks) and history")
        .st(&[200, 404, 422])
        .resp(DROP_DETAIL),
    op(
        "post",
        "/api/v1/drops/{number}/review",
        "admin",
        "drops",
        "Verdicts and an action (save | incomplete | approve); 409 when the lifecycle forbids it",
    )
    .json(
        r#"{"type": "object", "properties": {
            "steps": {"type": "object", "additionalProperties": {"type": "object", "required": ["verdict"], "properties": {
                "verdict": {"type": "string", "enum": ["pending", "ok", "missing", "retake", "rework"]},
                "reason": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]}}}},
            "action": {"type": ["string", "null"], "enum": ["save", "incomplete", "approve", null]}}}"#,
    )
    .st(&[200, 404, 409]),
    op("get", "/api/v1/messages", "read", "messages", "Message history → {messages, next_cursor}")
        .q(&[
            Param("phone", r#"{"type": "string", "maxLength": 200}"#, "digits of the number, substring"),
            Param("direction", r#"{"type": "string", "enum": ["in", "out"]}"#, "in or out"),
            Param("status", STR, "delivery status"),
            Param("drop", STR, "drop number"),
            DAYS,
            CURSOR,
            LIMIT,
            FORMAT,
        ])
        .st(&[200, 400, 422]),
    op("post", "/api/v1/messages/{id}/resend", "send", "messages", "Queue a failed message again").st(&[200, 404, 409]),
    op(
        "post",
        "/send",
        "send",
        "messages",
        "Queue a free-form message: {to, message, media_url?}; with an Idempotency-Key header a retry returns the first message",
    )
    .json(
        r#"{"type": "object", "required": ["to", "message"], "properties": {
            "to": {"type": "string"}, "message": {"type": "string"}, "media_url": {"type": ["string", "null"]}}}"#,
    )
    .st(&[200, 409]),
    op("get", "/api/v1/templates", "read", "templates", "List templates"),
    op(
        "post",
        "/api/v1/templates",
        "admin",
        "templates",
        "Create a template; 422 template_syntax / unknown_variable / invalid_provider_template",
    )
    .json(TEMPLATE)
    .st(&[201, 409]),
    op("get", "/api/v1/templates/{name}", "read", "templates", "One template").st(&[200, 404]),
    op("put", "/api/v1/templates/{name}", "admin", "templates", "Update a template; refused edits are not stored")
        .json(TEMPLATE)
        .st(&[200, 404]),
    op("get", "/api/v1/automations", "read", "automations", "Every rule → {automations: [rule with id, version, built_in, description, last_run_at]}"),
    op("post", "/api/v1/automations", "admin", "automations", "Create a rule; 422 invalid_rule says what is wrong").json(RULE).st(&[201]),
    op("get", "/api/v1/automations/{id}", "read", "automations", "One rule").st(&[200, 404]),
    op("put", "/api/v1/automations/{id}", "admin", "automations", "Replace a rule (its version goes up)").json(RULE).st(&[200, 404]),
    op("delete", "/api/v1/automations/{id}", "admin", "automations", "Delete a rule and its runs; the built-in example: 409 builtin_rule")
        .st(&[204, 404, 409]),
    op(
        "post",
        "/api/v1/automations/{id}/dry-run",
        "read",
        "automations",
        "What the rule would do for a sample event (an object of the trigger's variables): {status, trigger_matches, conditions, \
         condition_error, actions: [{type, status: would_send | skipped | failed, recipient, text, error}]}; writes nothing",
    )
    .json(r#"{"type": "object"}"#)
    .st(&[200, 404]),
    op("get", "/api/v1/automations/{id}/runs", "read", "automations", "The run log, newest first → {runs, next_before}")
        .q(&[
            Param("before", r#"{"type": "integer"}"#, "runs older than this run id (the previous page's next_before)"),
            Param("limit", r#"{"type": "integer", "minimum": 1, "maximum": 500}"#, "runs per page (50)"),
        ])
        .st(&[200, 400, 404, 422])
        .resp(RUNS),
    op(
        "post",
        "/api/v1/events",
        "send",
        "automations",
        "Post an event for api.event rules: {type, data} → 202 {event_id, duplicate}; the same Idempotency-Key again is the same event",
    )
    .json(
        r#"{"type": "object", "required": ["type"], "additionalProperties": false, "properties": {
            "type": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$"}, "data": {"type": "object"}}}"#,
    )
    .st(&[202]),
    op("get", "/api/v1/webhook-endpoints", "admin", "webhooks", "Outbound event webhook endpoints → {endpoints: [{id, url, event_types, enabled, disabled_reason, failing_since, previous_secret_valid_until, created_at}]}"),
    op(
        "post",
        "/api/v1/webhook-endpoints",
        "admin",
        "webhooks",
        "Add an endpoint: {url, event_types} → 201 with its whsec_ secret (shown once); 422 invalid_url (https, and no private address unless DROPCHECK_WEBHOOK_ALLOW_PRIVATE), invalid_event_types",
    )
    .json(r#"{"type": "object", "required": ["url", "event_types"], "additionalProperties": false, "properties": {
        "url": {"type": "string"}, "event_types": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "string"}}}}"#)
    .st(&[201]),
    op("get", "/api/v1/webhook-endpoints/{id}", "admin", "webhooks", "One endpoint").st(&[200, 404]),
    op("delete", "/api/v1/webhook-endpoints/{id}", "admin", "webhooks", "Remove an endpoint and its delivery log").st(&[204, 404]),
    op(
        "post",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "admin",
        "webhooks",
        "A new secret (shown once); the old one keeps signing for 24 h (both signatures sent); a disabled endpoint is enabled again",
    )
    .st(&[200, 404]),
    op(
        "get",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        "admin",
        "webhooks",
        "The delivery log, newest first → {deliveries: [{id, webhook_id, type, status, attempts, next_attempt_at, last_status, last_error, created_at, attempt_log: [{n, started_at, status, duration_ms, error, response}]}]}",
    )
    .st(&[200, 404]),
    op("post", "/api/v1/webhook-endpoints/{id}/replay", "admin", "webhooks", "Send every failed delivery since a time again, with the same webhook-id: {since} → 202 {replayed}")
        .json(r#"{"type": "object", "required": ["since"], "additionalProperties": false, "properties": {"since": {"type": "string", "format": "date-time"}}}"#)
        .st(&[202, 404]),
    op("post", "/api/v1/webhook-deliveries/{id}/replay", "admin", "webhooks", "Send one delivery again now, with the same webhook-id → 202").st(&[202, 404]),
    op("get", "/api/v1/contacts", "read", "contacts", "Contacts, newest first → {contacts: [{phone, name, tags, attributes, birthday, time_zone, consent: {status, at, source}, opted_out, muted_types, last_inbound_at, created_at}], total}")
        .q(&[
            Param("q", r#"{"type": "string", "maxLength": 200}"#, "part of the number or the name"),
            Param("tag", STR, "a tag (without regard to case)"),
            Param("attribute", STR, "key:value of a custom attribute"),
            Param("consent", r#"{"type": "string", "enum": ["opted_in", "opted_out", "unknown"]}"#, "consent"),
            Param("limit", r#"{"type": "integer", "minimum": 1, "maximum": 1000}"#, "rows (100)"),
            Param("offset", r#"{"type": "integer", "minimum": 0}"#, "rows to skip"),
            FORMAT,
        ])
        .st(&[200, 400, 422]),
    op("post", "/api/v1/contacts", "admin", "contacts", "Create a contact: {phone, name?, consent?, tags?, attributes?, birthday?, time_zone?, muted_types?}; records contact.created (and runs its rules)")
        .json(CONTACT)
        .st(&[201, 409]),
    op("get", "/api/v1/contacts/{phone}", "read", "contacts", "One contact").st(&[200, 404, 422]),
    op("put", "/api/v1/contacts/{phone}", "admin", "contacts", "Change the fields given (attributes one by one; tags replaced); records contact.updated with the changed fields, contact.opted_out, the tag events")
        .json(CONTACT)
        .st(&[200, 404]),
    op("post", "/api/v1/contacts/import", "admin", "contacts", "Import a CSV file → {import_id, rows, created, updated, unchanged, skipped, rejected, rejected_rows: [{line, reason}], mapping, rejected_csv}; numbers already contacts are matched, never created twice")
        .body(Body::Multipart(IMPORT))
        .st(&[200, 400, 413, 422]),
    op("get", "/api/v1/contacts/imports/{id}/rejected.csv", "read", "contacts", "An import's rejected rows with line and reason (CSV); 409 before it ran").st(&[200, 404, 409, 422]),
    op("get", "/api/v1/contact-attributes", "read", "contacts", "Custom attribute definitions → {attributes: [{key, label, type, options}]}"),
    op("post", "/api/v1/contact-attributes", "admin", "contacts", "Define an attribute, or change a key's label and options (its type only while no contact has a value: 409 attribute_in_use)")
        .json(ATTRIBUTE)
        .st(&[200, 409]),
    op("delete", "/api/v1/contact-attributes/{key}", "admin", "contacts", "Remove an attribute and every contact's value for it").st(&[204, 404]),
    op("post", "/api/v1/campaigns", "admin", "campaigns", "A broadcast (a draft): {name, template, tag, variables?, pace_per_minute? (60), daily_cap? (1000), quiet_hours? {start, end}, blocked_prefixes? ([\"+1\"]), frequency_hours? (24)} → the campaign with its preflight: eligible, excluded by reason")
        .json(CAMPAIGN)
        .st(&[201]),
    op("get", "/api/v1/stats/contractors", "read", "stats", "Contractor scorecards over the drops started in the period → {project, days, contractors: [{phone, name, drops, approved, approved_first_time, first_time_right_rate (0–1 or null), rejections_by_step: {\"3\": 2}, median_resubmit_seconds, median_approval_seconds, flags}]}")
        .q(&[
            Param("project", r#"{"type": "string"}"#, "a project's name (all projects when left out)"),
            Param("days", r#"{"type": "integer", "minimum": 1, "maximum": 366}"#, "the period, days back from now (30)"),
        ])
        .st(&[200, 400, 404, 422]),
    op("get", "/api/v1/campaigns", "read", "campaigns", "The latest 200 campaigns, newest first → {campaigns: [{id, name, template, tag, status, detail, recipients: {status: n}, created_by, created_at, started_at, finished_at}]}"),
    op("get", "/api/v1/campaigns/{id}", "read", "campaigns", "A campaign: {id, …settings, status: draft|running|paused|cancelled|done, detail, eligible, excluded: {reason: n}, recipients: {pending, queued, later, failed, excluded}, created_at, started_at, finished_at}").st(&[200, 404, 422]),
    op("post", "/api/v1/campaigns/{id}/{action}", "admin", "campaigns", "action: start (a draft; or resume a paused one), pause, cancel → the campaign; 409 invalid_transition; 422 invalid_action").st(&[200, 404, 409, 422]),
    op("get", "/metrics", "admin", "operations", "Prometheus metrics (OpenMetrics text): webhook requests by provider and outcome, signature refusals, sends by provider, result and error code, event processing time, inbox backlog and its oldest event's age, outbound messages by status, photo checks, automation runs, webhook deliveries. Also on DROPCHECK_METRICS_ADDR without a key"),
    op("get", "/api/notifications/health", "none", "notifications", "{status: healthy, message, uptime_seconds, provider, queue}"),
    op(
        "post",
        "/api/notifications/send-message",
        "send",
        "notifications",
        "{phone, message_type, context, reference_id?, immediate?}; immediate sends now and returns the provider status; \
         with an Idempotency-Key header (1–255 visible ASCII) a retry returns the first message and queues nothing",
    )
    .json(
        r#"{"type": "object", "required": ["phone", "message_type"], "properties": {
        "phone": {"type": "string"}, "message_type": {"type": "string"}, "context": {"type": ["object", "null"]},
        "reference_id": {"type": ["string", "null"]}, "immediate": {"type": "boolean"}}}"#,
    )
    .st(&[200, 409]),
    op("get", "/api/notifications/history", "read", "notifications", "Outbound history")
        .q(&[
            Param("phone", r#"{"type": "string", "maxLength": 200}"#, "number"),
            Param("status", STR, "delivery status"),
            DAYS,
            CURSOR,
            LIMIT,
        ])
        .st(&[200, 400, 422]),
    op("get", "/api/notifications/statistics", "read", "notifications", "Totals and rates by status and message type")
        .q(&[DAYS])
        .st(&[200, 400, 422]),
    op("get", "/api/notifications/templates", "read", "notifications", "As GET /api/v1/templates"),
    op("post", "/api/notifications/templates", "admin", "notifications", "As POST /api/v1/templates").json(TEMPLATE).st(&[201, 409]),
    op("get", "/api/notifications/templates/{name}", "read", "notifications", "As GET /api/v1/templates/{name}").st(&[200, 404]),
    op("put", "/api/notifications/templates/{name}", "admin", "notifications", "As PUT /api/v1/templates/{name}")
        .json(TEMPLATE)
        .st(&[200, 404]),
    op("post", "/api/notifications/process-queue", "send", "notifications", "Wake the sender now"),
    op("post", "/api/notifications/resend/{id}", "send", "notifications", "As POST /api/v1/messages/{id}/resend").st(&[200, 404, 409]),
    op(
        "post",
        "/api/integrations/whatsapp/link",
        "session",
        "phone linking",
        "Start linking {phone} (admin key: with user); returns the 6-digit code",
    )
    .json(LINK)
    .st(&[200, 404, 409]),
    op(
        "post",
        "/api/integrations/whatsapp/verify",
        "session",
        "phone linking",
        "{phone, code}: 422 wrong_code, 410 code_expired, 429 code_locked, 409 code_used",
    )
    .json(LINK)
    .st(&[200, 404, 409, 410, 429]),
    op("post", "/api/integrations/whatsapp/unlink", "session", "phone linking", "{phone}").json(LINK).st(&[200, 404]),
    op("get", "/api/integrations/whatsapp/webhook", "none", "phone linking", "{status: ok, service: whatsapp-webhook, provider}"),
    op(
        "post",
        "/webhooks/twilio",
        "signature",
        "webhooks",
        "Twilio inbound messages (X-Twilio-Signature); 200 (TwiML) only after the event is stored",
    )
    .body(Body::Form(TWILIO_FORM))
    .st(&[200, 400, 403, 404, 413, 503]),
    op("post", "/webhooks/twilio/status", "signature", "webhooks", "Twilio status callbacks")
        .body(Body::Form(TWILIO_FORM))
        .st(&[200, 400, 403, 404, 413, 503]),
    op(
        "get",
        "/webhooks/meta",
        "none",
        "webhooks",
        "Meta subscription handshake: echoes hub.challenge (text) when hub.verify_token matches",
    )
    .q(&[Param("hub.mode", STR, "subscribe"), Param("hub.verify_token", STR, "the verify token"), Param("hub.challenge", STR, "echoed")])
    .st(&[200, 400, 403, 404]),
    op("post", "/webhooks/meta", "signature", "webhooks", "Meta messages and statuses (X-Hub-Signature-256)")
        .body(Body::Raw)
        .st(&[200, 400, 403, 404, 413, 503]),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> crate::routes::Routes<S> {
    crate::routes::Routes::new().route("/api/openapi.json", get(openapi_json)).route("/api/docs", get(docs_page))
}

fn schema(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the OpenAPI schema of {what} is not JSON: {e}"))
}

fn describe(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Malformed request (JSON syntax, query)",
        401 => "No API key or session, or an unknown or revoked key",
        403 => "The key lacks the scope (webhooks: the signature does not match)",
        404 => "Not found",
        409 => "Not allowed in the current state",
        410 => "Expired",
        413 => "The body is too large",
        415 => "Not JSON",
        422 => "Understood but not acceptable: a stable code names what",
        429 => "Too many attempts",
        503 => "Temporarily unable to store or reach the database, or overloaded (webhooks get Retry-After at once when the write queue is full, or after waiting at most 2 s); retry",
        _ => "See the summary",
    }
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let what = format!("{} {}", o.method, o.path);
        let mut params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if name == "id" { json!({"type": "integer", "format": "int64"}) } else { json!({"type": "string"}) };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        for Param(name, s, description) in o.query {
            params.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema(s, &what)}));
        }
        let security = match o.scope {
            "none" | "signature" => json!([]),
            "session" => json!([{"session": []}, {"apiKey": ["admin"]}]),
            scope => json!([{"apiKey": [scope]}, {"bearer": [scope]}]),
        };
        let mut statuses: Vec<u16> = o.statuses.to_vec();
        if !matches!(o.scope, "none" | "signature") {
            statuses.extend([401, 403]);
        }
        if matches!(o.body, Body::Json(_)) {
            statuses.extend(WITH_BODY);
        }
        statuses.sort_unstable();
        statuses.dedup();
        let mut responses = Map::new();
        for status in statuses {
            let content = match (status, o.path) {
                (200..=299, "/api/docs") => json!({"text/html": {}}),
                (200..=299, "/api/v1/drops/{number}/evidence.pdf") => {
                    json!({"application/pdf": {"schema": {"type": "string", "format": "binary"}}})
                }
                (200..=299, "/metrics") => json!({"application/openmetrics-text": {"schema": {"type": "string"}}}),
                (200..=299, "/webhooks/twilio" | "/webhooks/twilio/status") => json!({"text/xml": {}}),
                (200..=299, "/webhooks/meta") => json!({"text/plain": {}}),
                (200..=299, "/api/v1/contacts/imports/{id}/rejected.csv") => json!({"text/csv": {"schema": {"type": "string"}}}),
                (200..=299, "/api/v1/drops" | "/api/v1/messages" | "/api/v1/contacts") if o.method == "get" => json!({
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                }),
                (200..=299, _) => match o.response {
                    Some(s) => json!({"application/json": {"schema": schema(s, &what)}}),
                    None => json!({"application/json": {"schema": {"type": "object"}}}),
                },
                (_, p) if p.starts_with("/webhooks/") => json!({"text/plain": {}}),
                _ => json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}),
            };
            responses.insert(status.to_string(), json!({"description": describe(status), "content": content}));
        }
        let mut operation = json!({
            "tags": [o.tag],
            "summary": o.summary,
            "description": format!("Scope: {}", o.scope),
            "parameters": params,
            "security": security,
            "responses": responses,
        });
        match o.body {
            Body::None => {}
            Body::Json(s) => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema(s, &what)}}});
            }
            Body::Form(s) => {
                operation["requestBody"] =
                    json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": schema(s, &what)}}});
            }
            Body::Raw => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
            }
            Body::Multipart(s) => {
                operation["requestBody"] = json!({"required": true, "content": {"multipart/form-data": {"schema": schema(s, &what)}}});
            }
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dropcheck API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Drops, reviews, messages, templates, contacts, notifications and phone linking. Errors are {success: false, error: <code>, message}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "dropcheck_session"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "success": {"type": "boolean"}, "error": {"type": "string"}, "message": {"type": "string"}}}
            }
        }
    })
}

async fn openapi_json() -> Json<Value> {
    Json(document())
}

async fn docs_page() -> Response {
    let mut rows = String::new();
    let mut tag = "";
    for o in OPERATIONS {
        if o.tag != tag {
            tag = o.tag;
            rows.push_str(&format!(
                r#"<tr><th colspan="4" class="bg-slate-100 px-3 py-2 text-left text-xs uppercase text-slate-600">{}</th></tr>"#,
                crate::web::html_escape(tag)
            ));
        }
        rows.push_str(&format!(
            r#"<tr class="align-top"><td class="px-3 py-1.5 font-mono text-xs font-semibold uppercase">{}</td><td class="px-3 py-1.5 font-mono text-xs">{}</td><td class="px-3 py-1.5 text-xs">{}</td><td class="px-3 py-1.5 text-sm text-slate-700">{}</td></tr>"#,
            o.method,
            crate::web::html_escape(o.path),
            o.scope,
            crate::web::html_escape(o.summary)
        ));
    }
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>API · Dropcheck</title>
<link rel="stylesheet" href="/pkg/dropcheck.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto max-w-6xl px-4 py-6">
<h1 class="text-2xl font-semibold">Dropcheck API</h1>
<p class="mt-1 text-sm text-slate-600">Send an API key in <code>X-API-Key</code> or <code>Authorization: Bearer</code> (scopes: submit, send, read, admin; keys under Settings → API keys). Errors are <code>{{"success": false, "error": code, "message": text}}</code>. Machine-readable: <a class="text-blue-700 underline" href="/api/openapi.json">/api/openapi.json</a>.</p>
<table id="operations" class="mt-4 min-w-full divide-y divide-slate-200 rounded-lg bg-white text-left shadow-sm"><thead><tr class="text-xs uppercase text-slate-500"><th class="px-3 py-2">method</th><th class="px-3 py-2">path</th><th class="px-3 py-2">scope</th><th class="px-3 py-2">what</th></tr></thead>
<tbody class="divide-y divide-slate-100">{rows}</tbody></table></main></body></html>"#
    );
    ([(header::CACHE_CONTROL, "no-cache")], Html(body)).into_response()
}
