//! The webhook ledger (`/events`, admins): receipts as they came in and the inbound events
//! they produced, with reprocess.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

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
pub async fn events_page() -> Result<EventsPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::fmt_time;
    let (st, user) = require_admin().await?;
    let receipts = st.store.recent_receipts(50).await.map_err(fail)?;
    let events = st.store.recent_events(100).await.map_err(fail)?;
    let (pending, done, failed) = st.store.event_counts().await.map_err(fail)?;
    Ok(EventsPageData {
        me: crate::ui::me_of(&user),
        receipts: receipts
            .into_iter()
            .map(|r| ReceiptView {
                id: r.receipt_id.get(),
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
                id: e.event_id.get(),
                receipt_id: e.receipt_id.map_or(0, |r| r.get()),
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
pub async fn reprocess_event(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "That is not an event."))?;
    st.store.requeue_event(EventId(id), dropcheck_core::now_ms()).await.map_err(fail)?;
    tracing::info!(event = id, user_id = user.user_id.get(), "event queued for reprocessing");
    Ok(())
}

#[component]
pub fn EventsPage() -> impl IntoView {
    let reprocess = ServerAction::<ReprocessEvent>::new();
    let data = Resource::new(move || reprocess.version().get(), |_| events_page());
    page("Webhook ledger · Dropcheck", data, None, move |d| view! { <EventsView d=d reprocess=reprocess/> })
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
            {action_error(reprocess)}
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
