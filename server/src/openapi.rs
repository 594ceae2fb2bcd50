//! The API document: `GET /api/openapi.json` (OpenAPI 3.1) and `GET /api/docs` (the same,
//! as a page for people). Both are generated from [`OPERATIONS`], one table of every route
//! the API and webhook routers serve; `tests/openapi.rs` reads the routers' source and fails
//! when a route is missing from it. (A table rather than per-handler annotations: the
//! handlers' bodies are hand-checked JSON with stable error codes, which the table's
//! descriptions and the README document.)

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// One operation: method, path (axum syntax, `{param}`), the API-key scope it needs
/// (`none`, `submit`, `send`, `read`, `admin`, `session` for the signed-in user, `signature`
/// for provider webhooks), a tag and a summary.
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
}

const fn op(method: &'static str, path: &'static str, scope: &'static str, tag: &'static str, summary: &'static str) -> Op {
    Op { method, path, scope, tag, summary }
}

pub const OPERATIONS: &[Op] = &[
    op("get", "/health", "none", "service", "Health: {success, status, message, database, uptime_seconds}"),
    op("get", "/db/test", "none", "service", "Database check: {success, message, database}; 503 when unreachable"),
    op("get", "/api/openapi.json", "none", "service", "This document"),
    op("get", "/api/docs", "none", "service", "This document as a page"),
    op(
        "post",
        "/api/submit-installation",
        "submit",
        "drops",
        "Register a drop: {drop_number, contractor_number, project_name} → {success, action: created|exists, drop_number, message}",
    ),
    op("post", "/api/resubmit", "submit", "drops", "Incomplete → Resubmitted: {drop_number}"),
    op("get", "/api/v1/drops", "read", "drops", "List drops: ?status=&project=&contractor=&q=&cursor=&limit= → {drops, next_cursor}"),
    op("get", "/api/v1/drops/{number}", "read", "drops", "One drop with steps, photos and history"),
    op(
        "post",
        "/api/v1/drops/{number}/review",
        "admin",
        "drops",
        "Verdicts and an action (save | incomplete | approve); 409 when the lifecycle forbids it",
    ),
    op("get", "/api/v1/messages", "read", "messages", "Message history: ?phone=&direction=&status=&drop=&days=&cursor=&limit="),
    op("post", "/api/v1/messages/{id}/resend", "send", "messages", "Queue a failed message again"),
    op("post", "/send", "send", "messages", "Queue a free-form message: {to, message, media_url?}"),
    op("get", "/api/v1/templates", "read", "templates", "List templates"),
    op(
        "post",
        "/api/v1/templates",
        "admin",
        "templates",
        "Create a template; 422 template_syntax / unknown_variable / invalid_provider_template",
    ),
    op("get", "/api/v1/templates/{name}", "read", "templates", "One template"),
    op("put", "/api/v1/templates/{name}", "admin", "templates", "Update a template; refused edits are not stored"),
    op("get", "/api/v1/contacts", "read", "contacts", "List contacts with their preferences"),
    op("post", "/api/v1/contacts", "admin", "contacts", "Create a contact: {phone, name?, opted_out?, muted_types?}"),
    op("get", "/api/v1/contacts/{phone}", "read", "contacts", "One contact"),
    op("put", "/api/v1/contacts/{phone}", "admin", "contacts", "Update name, opt-out and muted message types"),
    op("get", "/api/notifications/health", "none", "notifications", "{status: healthy, message, uptime_seconds, provider, queue}"),
    op(
        "post",
        "/api/notifications/send-message",
        "send",
        "notifications",
        "{phone, message_type, context, reference_id?, immediate?}; immediate sends now and returns the provider status",
    ),
    op("get", "/api/notifications/history", "read", "notifications", "Outbound history: ?phone=&status=&days="),
    op("get", "/api/notifications/statistics", "read", "notifications", "Totals and rates by status and message type: ?days=30"),
    op("get", "/api/notifications/templates", "read", "notifications", "As GET /api/v1/templates"),
    op("post", "/api/notifications/templates", "admin", "notifications", "As POST /api/v1/templates"),
    op("get", "/api/notifications/templates/{name}", "read", "notifications", "As GET /api/v1/templates/{name}"),
    op("put", "/api/notifications/templates/{name}", "admin", "notifications", "As PUT /api/v1/templates/{name}"),
    op("post", "/api/notifications/process-queue", "send", "notifications", "Wake the sender now"),
    op("post", "/api/notifications/resend/{id}", "send", "notifications", "As POST /api/v1/messages/{id}/resend"),
    op(
        "post",
        "/api/integrations/whatsapp/link",
        "session",
        "phone linking",
        "Start linking {phone} (admin key: with user); returns the 6-digit code",
    ),
    op(
        "post",
        "/api/integrations/whatsapp/verify",
        "session",
        "phone linking",
        "{phone, code}: 422 wrong_code, 410 code_expired, 429 code_locked, 409 code_used",
    ),
    op("post", "/api/integrations/whatsapp/unlink", "session", "phone linking", "{phone}"),
    op("get", "/api/integrations/whatsapp/webhook", "none", "phone linking", "{status: ok, service: whatsapp-webhook, provider}"),
    op(
        "post",
        "/webhooks/twilio",
        "signature",
        "webhooks",
        "Twilio inbound messages (X-Twilio-Signature); 200 only after the event is stored",
    ),
    op("post", "/webhooks/twilio/status", "signature", "webhooks", "Twilio status callbacks"),
    op("get", "/webhooks/meta", "none", "webhooks", "Meta subscription handshake (hub.verify_token, hub.challenge)"),
    op("post", "/webhooks/meta", "signature", "webhooks", "Meta messages and statuses (X-Hub-Signature-256)"),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/openapi.json", get(openapi_json)).route("/api/docs", get(docs_page))
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match o.scope {
            "none" | "signature" => json!([]),
            "session" => json!([{"session": []}, {"apiKey": ["admin"]}]),
            scope => json!([{"apiKey": [scope]}, {"bearer": [scope]}]),
        };
        let mut responses = Map::new();
        responses.insert("200".into(), json!({"description": "OK", "content": {"application/json": {}}}));
        if o.scope != "none" {
            responses.insert("4XX".into(), json!({"$ref": "#/components/responses/Error"}));
        }
        let operation = json!({
            "tags": [o.tag],
            "summary": o.summary,
            "description": format!("Scope: {}", o.scope),
            "parameters": params,
            "security": security,
            "responses": responses,
        });
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
            "responses": {
                "Error": {
                    "description": "A refusal with a stable code",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["error", "message"], "properties": {
                        "success": {"type": "boolean"}, "error": {"type": "string"}, "message": {"type": "string"}}}}}
                }
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
