//! The one leaf every page builds on: who is signed in ([`Me`]), the frame of a signed-in page
//! ([`Layout`]), the skeleton of a page that loads its data ([`page`]), the error box, badges,
//! form classes and delivery ticks. Features import this module and never each other.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub admin: bool,
}

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    use crate::ssr::*;
    let user = match signed_in() {
        Some(u) => Some(u),
        None => {
            let st = state()?;
            let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
            session_user(&session, &st.store).await.map_err(fail)?
        }
    };
    Ok(user.as_ref().map(me_of))
}

#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    let id = session.id().map(|i| i.to_string());
    session.flush().await.map_err(crate::ssr::session_failed)?;
    if let (Some(id), Ok(st)) = (id, crate::ssr::state()) {
        st.settings.live.session_ended(&id); // its live streams close now
    }
    leptos_axum::redirect("/login");
    Ok(())
}

#[cfg(feature = "ssr")]
pub fn me_of(u: &dropcheck_core::store::User) -> Me {
    Me { email: u.email.clone(), admin: u.role() == dropcheck_core::domain::Role::Admin }
}

/// The frame of every signed-in page: navigation, who is signed in, sign-out.
#[component]
pub fn Layout(me: Me, children: Children) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="bg-slate-900 text-white">
            <nav class="mx-auto flex max-w-7xl items-center gap-6 px-4 py-3 text-sm">
                <a href="/" class="flex items-center gap-2 text-base font-semibold tracking-tight">
                    <span class="inline-block h-6 w-6 rounded-md bg-emerald-400 text-center font-bold text-slate-900">"✓"</span>
                    "Dropcheck"
                </a>
                <a href="/" class="text-slate-300 hover:text-white">"Drops"</a>
                <a href="/messages" class="text-slate-300 hover:text-white">"Messages"</a>
                <a href="/contacts" class="text-slate-300 hover:text-white">"Contacts"</a>
                <a href="/sandbox" class="text-slate-300 hover:text-white">"Sandbox"</a>
                <a href="/stats" class="text-slate-300 hover:text-white">"Stats"</a>
                {me.admin.then(|| view! {
                    <a href="/automations" class="text-slate-300 hover:text-white">"Automations"</a>
                    <a href="/broadcasts" class="text-slate-300 hover:text-white">"Broadcasts"</a>
                })}
                // Settings in one menu (a <details>: opens without JavaScript).
                <details class="relative" id="settings-menu">
                    <summary class="cursor-pointer list-none text-slate-300 hover:text-white">"Settings ▾"</summary>
                    <div class="absolute left-0 z-30 mt-2 w-48 rounded-md bg-white py-1 text-slate-800 shadow-lg ring-1 ring-slate-200">
                        <a href="/settings/integrations" class="block px-3 py-1.5 hover:bg-slate-100">"Integrations"</a>
                        {me.admin.then(|| view! {
                            <a href="/settings/templates" class="block px-3 py-1.5 hover:bg-slate-100">"Templates"</a>
                            <a href="/settings/api-keys" class="block px-3 py-1.5 hover:bg-slate-100">"API keys"</a>
                            <a href="/settings/webhooks" class="block px-3 py-1.5 hover:bg-slate-100">"Webhooks"</a>
                            <a href="/settings/projects" class="block px-3 py-1.5 hover:bg-slate-100">"Projects"</a>
                            <a href="/settings/users" class="block px-3 py-1.5 hover:bg-slate-100">"Users"</a>
                            <a href="/events" class="block px-3 py-1.5 hover:bg-slate-100">"Webhook ledger"</a>
                        })}
                        <a href="/api/docs" rel="external" class="block px-3 py-1.5 hover:bg-slate-100">"API reference"</a>
                    </div>
                </details>
                <span class="ml-auto text-slate-400" id="signed-in-as">{me.email.clone()}</span>
                <ActionForm action=logout>
                    <button type="submit" class="rounded border border-slate-600 px-2 py-1 text-slate-200 hover:bg-slate-800">"Sign out"</button>
                </ActionForm>
            </nav>
        </header>
        <main class="mx-auto max-w-7xl px-4 py-6">{children()}</main>
    }
}

/// The skeleton of a page that loads its data: its title, "Loading…" until the data is there
/// (the server renders the page once it is, `SsrMode::Async`), then the page, or the error
/// with a link on (`back`: the address and its text).
pub fn page<T, V, F>(
    title: impl Into<leptos::text_prop::TextProp>,
    data: Resource<Result<T, AppError>>,
    back: Option<(&'static str, &'static str)>,
    render: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    let title = title.into();
    view! {
        <Title text=title/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(d) => render(d).into_any(),
                        Err(e) => error_page(e, back),
                    }
                })
            }}
        </Transition>
    }
}

/// What a server function answers when it refuses or fails: a stable code
/// (`invalid_transition`, `forbidden`, `internal`, …) and a sentence for people. The code
/// reaches the page: the error box carries it as `data-code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    /// The request itself failed (network, an answer that is not ours, …).
    fn from_server_fn_error(e: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        AppError::new("request_failed", e.to_string())
    }
}

/// A page whose data could not be loaded: the error and, when given, a way back. Not
/// generic, so every page shares one copy of it in the wasm.
fn error_page(e: AppError, back: Option<(&'static str, &'static str)>) -> AnyView {
    view! {
        <main class="p-8">
            <ErrorBox msg=e.message code=e.code/>
            {back.map(|(href, text)| view! { <a href=href class="text-blue-700 underline">{text}</a> })}
        </main>
    }
    .into_any()
}

/// An error for the user; `code` (the error's stable code, when there is one) is on
/// `data-code` for tools and tests.
#[component]
pub fn ErrorBox(msg: String, #[prop(optional, into)] code: Option<String>) -> impl IntoView {
    view! { <p role="alert" data-code=code class="error-box my-3 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{msg}</p> }
}

/// Shows the last error of an action, if any (also after a no-JavaScript round trip).
pub fn action_error<I, O>(action: ServerAction<I>) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
    ServerAction<I>: Copy,
{
    // Only the error is cloned out of the action's value, and the box is built by one
    // function that is not generic over the action.
    move || error_box(action.value().with(|v| v.as_ref().and_then(|r| r.as_ref().err()).cloned()))
}

/// The error box for an error, or nothing.
pub fn error_box(e: Option<AppError>) -> impl IntoView {
    e.map(|e| view! { <ErrorBox msg=e.message code=e.code/> })
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-md text-center">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-600">"There is nothing at this address."</p>
            <a href="/" class="mt-4 inline-block text-blue-700 underline">"Back to the drops"</a>
        </div>
    }
}

pub fn input_class() -> &'static str {
    "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-blue-500 focus:outline-none focus:ring-2 focus:ring-blue-200"
}

pub fn primary_button() -> &'static str {
    "rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-blue-700 focus:outline-none focus:ring-2 focus:ring-blue-300 disabled:opacity-50"
}

pub fn field() -> &'static str {
    "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-blue-500 focus:outline-none"
}

pub fn select_class() -> &'static str {
    "mt-1 block rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm"
}

#[component]
pub fn StatusBadge(status: String, label: String) -> impl IntoView {
    view! {
        <span class=format!("status-badge inline-flex items-center rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {}", badge_class(&status))
              data-status=status.clone()>
            {label}
        </span>
    }
}

pub const STATUSES: [(&str, &str); 5] = [
    ("collecting", "Collecting"),
    ("unreviewed", "Unreviewed"),
    ("incomplete", "Incomplete"),
    ("resubmitted", "Resubmitted"),
    ("approved", "Approved"),
];

/// Tailwind classes of a status badge: grey, blue, red, yellow, green from Collecting to Approved.
pub fn badge_class(status: &str) -> &'static str {
    match status {
        "collecting" => "bg-slate-100 text-slate-700 ring-slate-300",
        "unreviewed" => "bg-blue-100 text-blue-800 ring-blue-300",
        "incomplete" => "bg-red-100 text-red-800 ring-red-300",
        "resubmitted" => "bg-yellow-100 text-yellow-800 ring-yellow-300",
        "approved" => "bg-green-100 text-green-800 ring-green-300",
        _ => "bg-slate-100 text-slate-700 ring-slate-300",
    }
}

pub fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "bg-green-100 text-green-800",
        "missing" => "bg-red-100 text-red-800",
        "retake" => "bg-orange-100 text-orange-800",
        "rework" => "bg-purple-100 text-purple-800",
        _ => "bg-slate-100 text-slate-600",
    }
}

pub fn verdict_label(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "OK",
        "missing" => "Missing",
        "retake" => "Retake",
        "rework" => "Rework",
        _ => "Pending",
    }
}

/// WhatsApp-style ticks for a status.
pub fn tick_label(status: &str) -> &'static str {
    match status {
        "queued" | "sending" => "🕓 queued",
        "sent" => "✓ sent",
        "delivered" => "✓✓ delivered",
        "read" => "✓✓ read",
        "failed" | "undelivered" => "⚠ failed",
        "received" => "received",
        _ => "",
    }
}

pub fn tick_class(status: &str) -> &'static str {
    match status {
        "read" => "text-sky-600",
        "delivered" | "sent" => "text-slate-600",
        "failed" | "undelivered" => "text-red-700 font-semibold",
        _ => "text-slate-500",
    }
}

/// Minimal query-string encoding for filter values typed by users.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A message as the pages show it (the history, the sandbox's conversation, a drop's
/// timeline), formatted on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: i64,
    pub direction: String,
    pub phone: String,
    pub body: String,
    /// The template, attached media and how it went out, as one line (may be empty).
    pub detail: String,
    pub status: String,
    pub error_code: String,
    /// What the failure means and what to do (from the provider's error code), if known.
    pub error_help: String,
    pub error_text: String,
    pub attempts: i64,
    /// A queued message whose last attempt failed: "retrying · next attempt in 40 s".
    pub retrying: String,
    pub drop_number: String,
    pub at: String,
    pub can_resend: bool,
}

#[cfg(feature = "ssr")]
pub fn message_view(m: dropcheck_core::store::MessageRow) -> MessageView {
    let code = m.error_code.clone().unwrap_or_default();
    let retrying = match (m.status.as_str(), m.next_attempt_at) {
        ("queued", Some(next)) if m.error_code.is_some() => {
            let secs = (next - dropcheck_core::now_ms()) / 1000;
            let when = match secs {
                ..=0 => "now".to_string(),
                1..=89 => format!("in {secs} s"),
                90..=5399 => format!("in {} min", (secs + 30) / 60),
                _ => format!("at {}", dropcheck_core::fmt_time(next)),
            };
            format!("retrying · next attempt {when}")
        }
        _ => String::new(),
    };
    MessageView {
        retrying,
        id: m.message_id.get(),
        can_resend: m.resendable(),
        error_help: dropcheck_core::providers::explain_error(&code).unwrap_or_default().to_string(),
        error_code: code,
        error_text: m.error_text.unwrap_or_default(),
        direction: m.direction.as_str().to_string(),
        phone: m.phone.to_string(),
        body: m.body,
        detail: message_detail(m.template.as_deref(), m.media_url.as_deref(), m.sent_as.as_deref()),
        status: m.status,
        attempts: m.attempts,
        drop_number: m.drop_number.map(|d| d.to_string()).unwrap_or_default(),
        at: dropcheck_core::fmt_time(m.created_at),
    }
}

#[cfg(feature = "ssr")]
fn message_detail(template: Option<&str>, media_url: Option<&str>, sent_as: Option<&str>) -> String {
    let mut parts = vec![];
    if let Some(t) = template {
        parts.push(format!("template {t}"));
    }
    if let Some(u) = media_url {
        parts.push(format!("with media {u}"));
    }
    if let Some(p) = sent_as.and_then(|s| s.strip_prefix("template:")) {
        parts.push(format!("sent as the approved provider template {p} (outside the 24-hour window)"));
    }
    parts.join(" · ")
}

/// A flash for pages whose forms post to a server route and come back: `?saved=1` after a
/// change, `?error=…` when refused (the contact and broadcast pages).
pub fn notice() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let saved = query.read_untracked().get("saved").is_some();
    let error = query.read_untracked().get("error").filter(|e| !e.is_empty());
    view! {
        {saved.then(|| view! { <div id="saved" class="mb-4 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-900">"Saved."</div> })}
        {error.map(|e| view! { <div id="form-error" role="alert" class="mb-4 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{e}</div> })}
    }
}

/// `base` with the current page's query values for `keys` (the blank ones left out): a list's
/// "Download CSV" link carries the list's filters.
pub fn with_query(base: &str, keys: &[&str]) -> String {
    let query = leptos_router::hooks::use_query_map();
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| query.read_untracked().get(k).filter(|v| !v.trim().is_empty()).map(|v| format!("{k}={}", urlencode(&v))))
        .collect();
    if parts.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", parts.join("&"))
    }
}

/// The "Download CSV" link of a list (a plain download, outside the client router).
pub fn csv_link(href: String, file: &'static str) -> impl IntoView {
    view! {
        <a href=href rel="external" download=file id="download-csv"
            class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-700 hover:bg-slate-50">"Download CSV"</a>
    }
}
