//! The message history (`/messages`) and the built-in WhatsApp simulator (`/sandbox`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::err_text;
use crate::model::Me;
use crate::pages::{ErrorBox, Layout};

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
    /// What the failure means and what to do (PROTOCOLS' provider codes), if known.
    pub error_help: String,
    pub error_text: String,
    pub attempts: i64,
    /// A queued message whose last attempt failed: "retrying · next attempt in 40 s".
    pub retrying: String,
    pub drop_number: String,
    pub at: String,
    pub can_resend: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesPageData {
    pub me: Me,
    pub rows: Vec<MessageView>,
    pub next_cursor: Option<String>,
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}

#[cfg(feature = "ssr")]
fn message_view(m: dropcheck_core::store::MessageRow) -> MessageView {
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
        id: m.message_id,
        can_resend: m.direction == "out" && (m.status == "failed" || m.status == "undelivered"),
        error_help: dropcheck_core::providers::explain_error(&code).unwrap_or_default().to_string(),
        error_code: code,
        error_text: m.error_text.unwrap_or_default(),
        direction: m.direction,
        phone: m.phone,
        body: m.body,
        detail: message_detail(m.template.as_deref(), m.media_url.as_deref(), m.sent_as.as_deref()),
        status: m.status,
        attempts: m.attempts,
        drop_number: m.drop_number.unwrap_or_default(),
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

#[server(prefix = "/rpc", endpoint = "messages_page")]
pub async fn messages_page(
    phone: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    days: Option<String>,
    cursor: Option<String>,
) -> Result<MessagesPageData, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::outbox::MessageFilter;
    let (st, user) = require_user().await?;
    let days = match days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => Some(d.parse::<i64>().map_err(|_| crate::ssr::refuse("invalid_days", &format!("'{d}' is not a number of days")))?),
        None => None,
    };
    let filter = MessageFilter::parse(phone, direction, status, None, days, dropcheck_core::now_ms()).map_err(|e| fail(e.into()))?;
    let cursor = match cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().map_err(|_| crate::ssr::refuse("invalid_cursor", "That page link is not valid any more."))?),
        None => None,
    };
    let (rows, next) = st.store.list_messages(&filter, cursor, 50).await.map_err(fail)?;
    let c = st.store.outbox_counts().await.map_err(fail)?;
    Ok(MessagesPageData {
        me: crate::api::me_of(&user),
        rows: rows.into_iter().map(message_view).collect(),
        next_cursor: next.map(|n| n.to_string()),
        queued: c.queued + c.sending,
        sent: c.sent,
        delivered: c.delivered,
        read: c.read,
        failed: c.failed,
    })
}

#[server(prefix = "/rpc", endpoint = "resend_message")]
pub async fn resend_message(id: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let id: i64 = id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "That is not a message."))?;
    st.store.resend(id, dropcheck_core::now_ms()).await.map_err(fail)?;
    tracing::info!(message_id = id, user_id = user.user_id, "message queued again");
    Ok(())
}

fn select_class() -> &'static str {
    "mt-1 block rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm"
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

fn tick_class(status: &str) -> &'static str {
    match status {
        "read" => "text-sky-600",
        "delivered" | "sent" => "text-slate-600",
        "failed" | "undelivered" => "text-red-700 font-semibold",
        _ => "text-slate-500",
    }
}

#[component]
pub fn MessagesPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| query.read().get(k).filter(|v| !v.is_empty());
    let resend = ServerAction::<ResendMessage>::new();
    let data = Resource::new(
        move || (q("phone"), q("direction"), q("status"), q("days"), q("cursor"), resend.version().get()),
        |(phone, direction, status, days, cursor, _)| messages_page(phone, direction, status, days, cursor),
    );
    view! {
        <Title text="Messages · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <MessagesView d=d resend=resend/> }.into_any(),
                    Err(e) => view! { <main class="p-8"><ErrorBox msg=err_text(&e)/><a href="/messages" class="text-blue-700 underline">"All messages"</a></main> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn MessagesView(d: MessagesPageData, resend: ServerAction<ResendMessage>) -> impl IntoView {
    let query = use_query_map();
    let cur = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let next_href = d.next_cursor.clone().map(|c| {
        let mut q: Vec<String> = ["phone", "direction", "status", "days"]
            .iter()
            .filter_map(|k| query.read_untracked().get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", crate::pages::urlencode(&v))))
            .collect();
        q.push(format!("cursor={c}"));
        format!("/messages?{}", q.join("&"))
    });
    let stat = |label: &'static str, n: i64, status: &'static str, class: &'static str| {
        view! {
            <a href=format!("/messages?direction=out&status={status}") class=format!("rounded-lg border border-slate-200 bg-white px-4 py-2 shadow-sm hover:bg-slate-50 {class}")>
                <div class="text-xs text-slate-500">{label}</div>
                <div class="text-xl font-semibold">{n}</div>
            </a>
        }
    };
    view! {
        <Layout me=d.me.clone()>
            <h1 class="mb-4 text-2xl font-semibold">"Messages"</h1>
            <div class="mb-4 flex flex-wrap gap-3" id="message-counts">
                {stat("Queued", d.queued, "queued", "")}
                {stat("Sent", d.sent, "sent", "")}
                {stat("Delivered", d.delivered, "delivered", "")}
                {stat("Read", d.read, "read", "text-sky-700")}
                {stat("Failed", d.failed, "failed", "text-red-700")}
            </div>
            <form method="get" action="/messages" class="mb-4 flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                <label class="text-sm">"Number"
                    <input id="filter-phone" name="phone" value=cur("phone") placeholder="e.g. 27640412391" class=format!("{} w-44", select_class())/>
                </label>
                <label class="text-sm">"Direction"
                    <select id="filter-direction" name="direction" class=select_class()>
                        {[("", "Both"), ("in", "In"), ("out", "Out")].into_iter().map(|(v, l)| view! { <option value=v selected=cur("direction") == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"Status"
                    <select id="filter-status" name="status" class=select_class()>
                        {[("", "Any"), ("queued", "Queued"), ("sent", "Sent"), ("delivered", "Delivered"), ("read", "Read"), ("failed", "Failed"), ("received", "Received")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=cur("status") == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"Period"
                    <select id="filter-days" name="days" class=select_class()>
                        {[("", "All time"), ("1", "Last day"), ("7", "Last 7 days"), ("30", "Last 30 days")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=cur("days") == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-semibold text-white hover:bg-slate-900">"Filter"</button>
                <a href="/messages" class="text-sm text-slate-600 underline">"Clear"</a>
            </form>
            {move || resend.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox msg=err_text(&e)/> })}
            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="messages">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr><th class="px-3 py-2">"When"</th><th class="px-3 py-2">"Number"</th><th class="px-3 py-2">"Drop"</th>
                            <th class="px-3 py-2">"Message"</th><th class="px-3 py-2">"Status"</th><th class="px-3 py-2"></th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.is_empty().then(|| view! { <tr><td colspan="6" class="px-3 py-8 text-center text-slate-500">"No messages match."</td></tr> })}
                        {d.rows.into_iter().map(|m| view! {
                            <tr class="message-row align-top" data-id=m.id data-status=m.status.clone()>
                                <td class="whitespace-nowrap px-3 py-2 text-slate-500">{m.at.clone()}</td>
                                <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">
                                    {if m.direction == "in" { "← " } else { "→ " }}{m.phone.clone()}
                                </td>
                                <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">
                                    {(!m.drop_number.is_empty()).then(|| view! { <a class="text-blue-700 underline" href=format!("/drops/{}", m.drop_number)>{m.drop_number.clone()}</a> })}
                                </td>
                                <td class="max-w-xl px-3 py-2">
                                    <div class="whitespace-pre-wrap text-slate-800">{m.body.clone()}</div>
                                    {(!m.detail.is_empty()).then(|| view! { <div class="mt-0.5 break-all text-xs text-slate-400">{m.detail.clone()}</div> })}
                                    {(!m.error_code.is_empty()).then(|| view! {
                                        <div class="mt-1 rounded bg-red-50 px-2 py-1 text-xs text-red-800">
                                            <span class="font-semibold">{format!("Error {}: ", m.error_code)}</span>
                                            {if m.error_help.is_empty() { m.error_text.clone() } else { m.error_help.clone() }}
                                            {(!m.error_help.is_empty() && !m.error_text.is_empty() && m.error_help != m.error_text).then(|| view! { <span class="text-red-600">{format!(" ({})", m.error_text)}</span> })}
                                        </div>
                                    })}
                                </td>
                                <td class=format!("whitespace-nowrap px-3 py-2 {}", tick_class(&m.status))>
                                    {tick_label(&m.status)}
                                    {(m.attempts > 1).then(|| view! { <div class="text-xs text-slate-400">{format!("{} attempts", m.attempts)}</div> })}
                                    {(!m.retrying.is_empty()).then(|| view! { <div class="retrying text-xs text-amber-700">{m.retrying.clone()}</div> })}
                                </td>
                                <td class="px-3 py-2">
                                    {m.can_resend.then(|| view! {
                                        <ActionForm action=resend>
                                            <input type="hidden" name="id" value=m.id.to_string()/>
                                            <button type="submit" class="resend rounded border border-slate-300 px-2 py-1 text-xs hover:bg-slate-100">"Resend"</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            {next_href.map(|h| view! { <a href=h id="next-page" class="mt-4 inline-block rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">"Older messages →"</a> })}
        </Layout>
    }
}

// ------------------------------------------------------------------ sandbox

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxPageData {
    pub me: Me,
    /// `None` when another provider is active (the simulator is off).
    pub provider: String,
    pub phone: String,
    pub phones: Vec<String>,
    /// The conversation, oldest first.
    pub messages: Vec<MessageView>,
}

#[server(prefix = "/rpc", endpoint = "sandbox_page")]
pub async fn sandbox_page(phone: Option<String>) -> Result<SandboxPageData, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::outbox::MessageFilter;
    let (st, user) = require_user().await?;
    let phone = match phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => dropcheck_core::domain::Phone::parse(p).map_err(|e| fail(e.into()))?.as_str().to_string(),
        None => SANDBOX_DEFAULT_PHONE.to_string(),
    };
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    let filter = MessageFilter { phone: Some(digits), ..Default::default() };
    let (rows, _) = st.store.list_messages(&filter, None, 100).await.map_err(fail)?;
    let phones = st.store.contact_phones(20).await.map_err(fail)?;
    Ok(SandboxPageData {
        me: crate::api::me_of(&user),
        provider: st.settings.integrations.active().to_string(),
        // list_messages matches digits anywhere; keep this number's own messages.
        messages: rows.into_iter().rev().filter(|m| m.phone == phone).map(message_view).collect(),
        phone,
        phones,
    })
}

/// The number the simulator starts with.
pub const SANDBOX_DEFAULT_PHONE: &str = "+27640412391";

#[component]
pub fn SandboxPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.read().get("phone").filter(|v| !v.is_empty()), sandbox_page);
    view! {
        <Title text="Sandbox · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <SandboxView d=d/> }.into_any(),
                    Err(e) => view! { <main class="p-8"><ErrorBox msg=err_text(&e)/><a href="/sandbox" class="text-blue-700 underline">"Back to the sandbox"</a></main> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn SandboxView(d: SandboxPageData) -> impl IntoView {
    let enabled = d.provider == "sandbox";
    let phone = d.phone.clone();
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-4 flex flex-wrap items-end gap-4">
                <div>
                    <h1 class="text-2xl font-semibold">"WhatsApp sandbox"</h1>
                    <p class="text-sm text-slate-600">"Play a contractor: what you send here goes through the same signed webhook and processing as a real WhatsApp message."</p>
                </div>
                <form method="get" action="/sandbox" class="ml-auto flex items-end gap-2">
                    <label class="text-sm">"Phone"
                        <input id="sandbox-phone" name="phone" value=phone.clone() list="sandbox-phones" class="mt-1 block w-48 rounded-md border border-slate-300 px-2 py-1.5 font-mono text-sm"/>
                    </label>
                    <datalist id="sandbox-phones">{d.phones.iter().map(|p| view! { <option value=p.clone()></option> }).collect_view()}</datalist>
                    <button type="submit" class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm hover:bg-slate-100">"Open"</button>
                </form>
            </div>
            {(!enabled).then(|| view! {
                <ErrorBox msg=format!("The sandbox is off: the active provider is {}. Messages go to real phones.", d.provider)/>
            })}
            <div class="mx-auto max-w-2xl overflow-hidden rounded-2xl border border-slate-300 bg-[#efeae2] shadow">
                <div class="flex items-center gap-3 bg-emerald-700 px-4 py-3 text-white">
                    <span class="inline-block h-8 w-8 rounded-full bg-emerald-300 text-center font-bold leading-8 text-emerald-900">"D"</span>
                    <div><div class="font-semibold">"Dropcheck"</div><div class="text-xs text-emerald-100">{format!("chatting as {phone}")}</div></div>
                    <a href=format!("/sandbox?phone={}", crate::pages::urlencode(&phone)) id="sandbox-refresh" class="ml-auto rounded bg-emerald-800 px-2 py-1 text-xs hover:bg-emerald-900">"Refresh"</a>
                </div>
                <ol id="sandbox-chat" class="max-h-[60vh] space-y-2 overflow-y-auto p-4">
                    {d.messages.is_empty().then(|| view! { <li class="text-center text-sm text-slate-500">"No messages yet. Send a drop number to start, e.g. DR12345678."</li> })}
                    {d.messages.into_iter().map(|m| {
                        let mine = m.direction == "in";
                        view! {
                            <li class=if mine { "flex justify-end" } else { "flex justify-start" }>
                                <div class=if mine { "sandbox-sent max-w-[80%] rounded-lg bg-[#d9fdd3] px-3 py-2 text-sm shadow-sm" } else { "sandbox-received max-w-[80%] rounded-lg bg-white px-3 py-2 text-sm shadow-sm" }>
                                    <div class="whitespace-pre-wrap">{m.body.clone()}</div>
                                    <div class="mt-1 text-right text-[11px] text-slate-500">{m.at.clone()}{(!mine).then(|| format!(" · {}", tick_label(&m.status)))}</div>
                                </div>
                            </li>
                        }
                    }).collect_view()}
                </ol>
                <form method="post" action="/sandbox/send" enctype="multipart/form-data" class="space-y-2 border-t border-slate-300 bg-[#f0f2f5] p-3">
                    <input type="hidden" name="phone" value=phone.clone()/>
                    <div class="flex gap-2">
                        <input id="sandbox-text" name="body" placeholder="Type a message (or a caption for the photos)" autocomplete="off"
                               class="block w-full rounded-full border border-slate-300 px-4 py-2 text-sm"/>
                        <button id="sandbox-send" type="submit" disabled=!enabled class="rounded-full bg-emerald-600 px-4 py-2 text-sm font-semibold text-white hover:bg-emerald-700 disabled:opacity-50">"Send"</button>
                    </div>
                    <label class="flex items-center gap-2 text-xs text-slate-600">
                        "Attach"
                        <select id="sandbox-photos" name="photos" class="rounded border border-slate-300 bg-white px-1 py-0.5">
                            {(0..=12).map(|n| view! { <option value=n.to_string()>{if n == 0 { "no photos".to_string() } else if n == 1 { "1 generated photo".to_string() } else { format!("{n} generated photos") }}</option> }).collect_view()}
                        </select>
                        "or your own files"
                        <input id="sandbox-files" type="file" name="files" multiple accept="image/jpeg,image/png,application/pdf" class="text-xs"/>
                    </label>
                    <p class="text-xs text-slate-500">"Each photo or file is sent as its own WhatsApp message, like a phone does; the text is the first one's caption."</p>
                </form>
            </div>
        </Layout>
    }
}

// ------------------------------------------------------------------ webhook ledger

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptView {
    pub id: i64,
    pub provider: String,
    pub path: String,
    pub at: String,
    pub verdict: String,
    pub error: String,
    pub events: i64,
    pub duplicates: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub id: i64,
    pub receipt_id: i64,
    pub provider: String,
    pub kind: String,
    pub phone: String,
    pub state: String,
    pub attempts: i64,
    pub error: String,
    pub result: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPageData {
    pub me: Me,
    pub receipts: Vec<ReceiptView>,
    pub events: Vec<EventView>,
    pub pending: i64,
    pub done: i64,
    pub failed: i64,
}

#[server(prefix = "/rpc", endpoint = "events_page")]
pub async fn events_page() -> Result<EventsPageData, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::fmt_time;
    let (st, user) = require_admin().await?;
    let receipts = st.store.recent_receipts(50).await.map_err(fail)?;
    let events = st.store.recent_events(100).await.map_err(fail)?;
    let (pending, done, failed) = st.store.event_counts().await.map_err(fail)?;
    Ok(EventsPageData {
        me: crate::api::me_of(&user),
        receipts: receipts
            .into_iter()
            .map(|r| ReceiptView {
                id: r.receipt_id,
                provider: r.provider,
                path: r.path,
                at: fmt_time(r.received_at),
                verdict: r.verdict,
                error: r.error.unwrap_or_default(),
                events: r.event_count,
                duplicates: r.duplicate_count,
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| EventView {
                id: e.event_id,
                receipt_id: e.receipt_id.unwrap_or(0),
                provider: e.provider,
                kind: e.kind,
                phone: e.phone,
                state: e.state,
                attempts: e.attempts,
                error: e.error.unwrap_or_default(),
                result: e.result.unwrap_or_default(),
                at: fmt_time(e.received_at),
            })
            .collect(),
        pending,
        done,
        failed,
    })
}

#[server(prefix = "/rpc", endpoint = "reprocess_event")]
pub async fn reprocess_event(id: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "That is not an event."))?;
    st.store.requeue_event(id, dropcheck_core::now_ms()).await.map_err(fail)?;
    tracing::info!(event = id, user_id = user.user_id, "event queued for reprocessing");
    Ok(())
}

#[component]
pub fn EventsPage() -> impl IntoView {
    let reprocess = ServerAction::<ReprocessEvent>::new();
    let data = Resource::new(move || reprocess.version().get(), |_| events_page());
    view! {
        <Title text="Webhook ledger · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <EventsView d=d reprocess=reprocess/> }.into_any(),
                    Err(e) => view! { <main class="p-8"><ErrorBox msg=err_text(&e)/></main> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn state_class(state: &str) -> &'static str {
    match state {
        "done" | "accepted" => "bg-green-50 text-green-800 ring-green-600/20",
        "pending" | "processing" => "bg-amber-50 text-amber-800 ring-amber-600/20",
        _ => "bg-red-50 text-red-800 ring-red-600/20",
    }
}

#[component]
fn EventsView(d: EventsPageData, reprocess: ServerAction<ReprocessEvent>) -> impl IntoView {
    let pill = |s: String| {
        let class = format!("rounded-full px-2 py-0.5 text-xs font-semibold ring-1 ring-inset {}", state_class(&s));
        view! { <span class=class>{s}</span> }
    };
    view! {
        <Layout me=d.me.clone()>
            <h1 class="mb-1 text-2xl font-semibold">"Webhook ledger"</h1>
            <p class="mb-4 text-sm text-slate-600">
                "Every signed webhook request as received, and the events it carried. Requests with a bad signature are refused (403) and not stored; "
                "well-signed but malformed ones are kept here as rejected."
            </p>
            <div class="mb-4 flex gap-3 text-sm" id="event-counts">
                <span class="rounded-lg border border-slate-200 bg-white px-3 py-1.5 shadow-sm">{format!("{} waiting", d.pending)}</span>
                <span class="rounded-lg border border-slate-200 bg-white px-3 py-1.5 shadow-sm">{format!("{} processed", d.done)}</span>
                <span class="rounded-lg border border-slate-200 bg-white px-3 py-1.5 text-red-700 shadow-sm">{format!("{} failed", d.failed)}</span>
            </div>
            {move || reprocess.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox msg=err_text(&e)/> })}
            <div class="grid gap-6 xl:grid-cols-2">
                <section>
                    <h2 class="mb-2 font-semibold">"Events"</h2>
                    <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                        <table class="min-w-full divide-y divide-slate-200 text-sm" id="events">
                            <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                                <tr><th class="px-3 py-2">"#"</th><th class="px-3 py-2">"Received"</th><th class="px-3 py-2">"What"</th><th class="px-3 py-2">"State"</th><th class="px-3 py-2">"Result"</th><th></th></tr>
                            </thead>
                            <tbody class="divide-y divide-slate-100">
                                {d.events.is_empty().then(|| view! { <tr><td colspan="6" class="px-3 py-6 text-center text-slate-500">"No events yet."</td></tr> })}
                                {d.events.into_iter().map(|e| view! {
                                    <tr class="event-row align-top" data-state=e.state.clone()>
                                        <td class="px-3 py-2 text-slate-500">{e.id}</td>
                                        <td class="whitespace-nowrap px-3 py-2 text-slate-500">{e.at.clone()}</td>
                                        <td class="px-3 py-2">{format!("{} {}", e.provider, e.kind)}<div class="font-mono text-xs text-slate-500">{e.phone.clone()}</div></td>
                                        <td class="px-3 py-2">{pill(e.state.clone())}{(e.attempts > 1).then(|| view! { <div class="text-xs text-slate-400">{format!("{} attempts", e.attempts)}</div> })}</td>
                                        <td class="max-w-xs px-3 py-2 text-xs">
                                            <div class="text-slate-700">{e.result.clone()}</div>
                                            {(!e.error.is_empty()).then(|| view! { <div class="text-red-700">{e.error.clone()}</div> })}
                                        </td>
                                        <td class="px-3 py-2">
                                            {(e.state == "failed" || e.state == "done").then(|| view! {
                                                <ActionForm action=reprocess>
                                                    <input type="hidden" name="id" value=e.id.to_string()/>
                                                    <button type="submit" class="rounded border border-slate-300 px-2 py-1 text-xs hover:bg-slate-100">"Reprocess"</button>
                                                </ActionForm>
                                            })}
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                </section>
                <section>
                    <h2 class="mb-2 font-semibold">"Requests"</h2>
                    <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                        <table class="min-w-full divide-y divide-slate-200 text-sm" id="receipts">
                            <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                                <tr><th class="px-3 py-2">"#"</th><th class="px-3 py-2">"Received"</th><th class="px-3 py-2">"Route"</th><th class="px-3 py-2">"Verdict"</th><th class="px-3 py-2">"Events"</th></tr>
                            </thead>
                            <tbody class="divide-y divide-slate-100">
                                {d.receipts.into_iter().map(|r| view! {
                                    <tr class="receipt-row align-top" data-verdict=r.verdict.clone()>
                                        <td class="px-3 py-2 text-slate-500">{r.id}</td>
                                        <td class="whitespace-nowrap px-3 py-2 text-slate-500">{r.at.clone()}</td>
                                        <td class="px-3 py-2 font-mono text-xs">{format!("{} {}", r.provider, r.path)}</td>
                                        <td class="px-3 py-2">{pill(r.verdict.clone())}{(!r.error.is_empty()).then(|| view! { <div class="mt-1 text-xs text-red-700">{r.error.clone()}</div> })}</td>
                                        <td class="px-3 py-2 text-xs">{format!("{} new", r.events)}{(r.duplicates > 0).then(|| format!(", {} redelivered", r.duplicates))}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                </section>
            </div>
        </Layout>
    }
}
