//! The message history (`/messages`) with resend for failed messages.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

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

#[server(prefix = "/rpc", endpoint = "messages_page")]
pub async fn messages_page(
    phone: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    days: Option<String>,
    cursor: Option<String>,
) -> Result<MessagesPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::outbox::MessageFilter;
    let (st, user) = require_user().await?;
    let days = match days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => Some(d.parse::<i64>().map_err(|_| crate::ssr::refuse("invalid_days", &format!("'{d}' is not a number of days")))?),
        None => None,
    };
    let filter = MessageFilter::parse(phone, direction, status, None, days, dropcheck_core::now_ms()).map_err(|e| fail(e.into()))?;
    let cursor = match cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<MessageId>().map_err(|_| crate::ssr::refuse("invalid_cursor", "That page link is not valid any more."))?),
        None => None,
    };
    let (rows, next) = st.store.list_messages(&filter, cursor, 50).await.map_err(fail)?;
    let c = st.store.outbox_counts().await.map_err(fail)?;
    Ok(MessagesPageData {
        me: crate::ui::me_of(&user),
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
pub async fn resend_message(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let id: i64 = id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "That is not a message."))?;
    st.store.resend(MessageId(id), dropcheck_core::now_ms()).await.map_err(fail)?;
    tracing::info!(message_id = id, user_id = user.user_id.get(), "message queued again");
    Ok(())
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
    page("Messages · Dropcheck", data, Some(("/messages", "All messages")), move |d| view! { <MessagesView d=d resend=resend/> })
}

#[component]
fn MessagesView(d: MessagesPageData, resend: ServerAction<ResendMessage>) -> impl IntoView {
    let query = use_query_map();
    let cur = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let next_href = d.next_cursor.clone().map(|c| {
        let mut q: Vec<String> = ["phone", "direction", "status", "days"]
            .iter()
            .filter_map(|k| query.read_untracked().get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", crate::ui::urlencode(&v))))
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
                <span class="ml-auto">{csv_link(with_query("/messages.csv", &["phone", "direction", "status", "days"]), "messages.csv")}</span>
            </form>
            {action_error(resend)}
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
