//! `/settings/webhooks` (admins): endpoints other systems give for Dropcheck's events
//! (Standard Webhooks). A new or rotated secret is shown once (kept in the session until the
//! next page load, so it shows without JavaScript too); `?endpoint=ID` shows that endpoint's
//! deliveries with each attempt and **Send again**.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub event_types: String,
    /// "on", or why it is off.
    pub state: String,
    pub enabled: bool,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: String,
    pub kind: String,
    pub status: String,
    pub created: String,
    /// Each attempt in a line: "1 · HTTP 500 · 12 ms".
    pub attempts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhooksPageData {
    pub me: Me,
    pub endpoints: Vec<EndpointView>,
    /// A secret just made: (endpoint URL, secret), shown this once.
    pub new_secret: Option<(String, String)>,
    /// The endpoint whose deliveries are shown, and they.
    pub selected: Option<(i64, String, Vec<DeliveryView>)>,
}

#[cfg(feature = "ssr")]
const SESSION_NEW_SECRET: &str = "new_webhook_secret";

#[cfg(feature = "ssr")]
async fn remember_secret(url: String, secret: String) -> Result<(), AppError> {
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    session.insert(SESSION_NEW_SECRET, (url, secret)).await.map_err(crate::ssr::session_failed)
}

#[cfg(feature = "ssr")]
fn id_of(raw: &str) -> Result<i64, AppError> {
    raw.trim().parse().map_err(|_| crate::ssr::refuse("endpoint_not_found", "There is no such endpoint."))
}

#[server(prefix = "/rpc", endpoint = "webhooks_page")]
pub async fn webhooks_page(endpoint: Option<String>) -> Result<WebhooksPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    let new_secret: Option<(String, String)> = session.remove(SESSION_NEW_SECRET).await.map_err(crate::ssr::session_failed)?;
    let now = dropcheck_core::now_ms();
    let endpoints = st
        .store
        .webhook_endpoints()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|e| EndpointView {
            id: e.id,
            url: e.url,
            event_types: e.event_types.join(", "),
            state: if e.enabled { "on".into() } else { format!("off — {}", e.disabled_reason.unwrap_or_default()) },
            enabled: e.enabled,
            note: match (e.failing_since, e.previous_secret_until) {
                (Some(t), _) => format!("failing since {}", dropcheck_core::ago(t, now)),
                (None, Some(t)) => format!("the old secret signs too until {}", dropcheck_core::fmt_time(t)),
                _ => String::new(),
            },
        })
        .collect();
    let selected = match endpoint.filter(|e| !e.is_empty()) {
        Some(raw) => {
            let e = st.store.webhook_endpoint(id_of(&raw)?).await.map_err(fail)?;
            let deliveries = st
                .store
                .webhook_deliveries(e.id, 50)
                .await
                .map_err(fail)?
                .into_iter()
                .map(|d| DeliveryView {
                    id: d.id,
                    webhook_id: d.message_id,
                    kind: d.kind,
                    status: d.status,
                    created: dropcheck_core::fmt_time(d.created_at),
                    attempts: d
                        .attempt_log
                        .iter()
                        .map(|a| {
                            let what = match (a.status_code, &a.error) {
                                (Some(s), _) => format!("HTTP {s}"),
                                (None, Some(e)) => e.clone(),
                                (None, None) => "no answer".into(),
                            };
                            format!("{} · {what} · {} ms", a.n, a.duration_ms)
                        })
                        .collect(),
                })
                .collect();
            Some((e.id, e.url, deliveries))
        }
        None => None,
    };
    Ok(WebhooksPageData { me: crate::ui::me_of(&user), endpoints, new_secret, selected })
}

#[server(prefix = "/rpc", endpoint = "create_webhook_endpoint")]
pub async fn create_webhook_endpoint(url: String, event_types: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let types: Vec<String> = event_types.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    let (e, secret) = st.store.create_webhook_endpoint(&url, &types, st.settings.webhook_allow_private).await.map_err(fail)?;
    tracing::info!(endpoint = e.id, url = %e.url, by = %user.email, "webhook endpoint created");
    remember_secret(e.url, secret).await
}

#[server(prefix = "/rpc", endpoint = "rotate_webhook_secret")]
pub async fn rotate_webhook_secret(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id = id_of(&id)?;
    let secret = st.store.rotate_webhook_secret(id).await.map_err(fail)?;
    let e = st.store.webhook_endpoint(id).await.map_err(fail)?;
    tracing::info!(endpoint = id, by = %user.email, "webhook secret rotated");
    remember_secret(e.url, secret).await
}

#[server(prefix = "/rpc", endpoint = "delete_webhook_endpoint")]
pub async fn delete_webhook_endpoint(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id = id_of(&id)?;
    st.store.delete_webhook_endpoint(id).await.map_err(fail)?;
    tracing::info!(endpoint = id, by = %user.email, "webhook endpoint deleted");
    leptos_axum::redirect("/settings/webhooks");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "replay_webhook_delivery")]
pub async fn replay_webhook_delivery(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, _) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| refuse("delivery_not_found", "There is no such delivery."))?;
    st.store.replay_webhook_delivery(id).await.map_err(fail)
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let create = ServerAction::<CreateWebhookEndpoint>::new();
    let rotate = ServerAction::<RotateWebhookSecret>::new();
    let delete = ServerAction::<DeleteWebhookEndpoint>::new();
    let replay = ServerAction::<ReplayWebhookDelivery>::new();
    let data = Resource::new(
        move || {
            (query.read().get("endpoint"), create.version().get(), rotate.version().get(), delete.version().get(), replay.version().get())
        },
        |(e, ..)| webhooks_page(e),
    );
    page("Webhooks · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me.clone()>
                <h1 class="mb-1 text-2xl font-semibold">"Webhooks"</h1>
                <p class="mb-4 text-sm text-slate-500">
                    "Other systems receive Dropcheck's events, signed by the Standard Webhooks specification (any of its libraries verifies them), "
                    "retried for about a day and logged. Event types: drop.status_changed, message.inbound, contact.created, contact.updated, contact.opted_out, contact.tag_added, contact.tag_removed, "
                    "or a type posted to POST /api/v1/events."
                </p>
                {action_error(create)}
                {action_error(rotate)}
                {action_error(delete)}
                {action_error(replay)}
                {d.new_secret.clone().map(|(url, secret)| view! {
                    <div id="new-webhook-secret" class="mb-4 rounded-lg border border-amber-300 bg-amber-50 p-4">
                        <p class="text-sm font-semibold text-amber-900">{format!("The signing secret of {url} — copy it now; it is not shown again:")}</p>
                        <code id="new-webhook-secret-value" class="mt-2 block select-all break-all rounded bg-white px-3 py-2 font-mono text-sm">{secret}</code>
                    </div>
                })}
                <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                    <table class="min-w-full divide-y divide-slate-200 text-sm" id="webhook-endpoints">
                        <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                            <tr><th class="px-4 py-3">"Address"</th><th class="px-4 py-3">"Events"</th><th class="px-4 py-3">"State"</th><th class="px-4 py-3"></th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {d.endpoints.is_empty().then(|| view! { <tr><td colspan="4" class="px-4 py-6 text-center text-slate-500">"No endpoints yet."</td></tr> })}
                            {d.endpoints.into_iter().map(|e| view! {
                                <tr data-endpoint=e.url.clone()>
                                    <td class="px-4 py-2.5 font-mono text-xs">
                                        <a class="text-blue-700 underline" href=format!("/settings/webhooks?endpoint={}", e.id)>{e.url.clone()}</a>
                                    </td>
                                    <td class="px-4 py-2.5">{e.event_types.clone()}</td>
                                    <td class="px-4 py-2.5">
                                        <span class=if e.enabled { "text-emerald-700" } else { "text-red-700" }>{e.state.clone()}</span>
                                        <span class="block text-xs text-slate-500">{e.note.clone()}</span>
                                    </td>
                                    <td class="flex gap-2 px-4 py-2.5">
                                        <ActionForm action=rotate>
                                            <input type="hidden" name="id" value=e.id.to_string()/>
                                            <button type="submit" class="rounded border border-slate-300 px-2 py-1 text-xs hover:bg-slate-50">"New secret"</button>
                                        </ActionForm>
                                        <ActionForm action=delete>
                                            <input type="hidden" name="id" value=e.id.to_string()/>
                                            <button type="submit" class="rounded border border-red-300 px-2 py-1 text-xs text-red-700 hover:bg-red-50">"Remove"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {d.selected.clone().map(|(_, url, deliveries)| view! {
                    <section class="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="webhook-deliveries">
                        <h2 class="text-lg font-semibold">{format!("Deliveries to {url}")}</h2>
                        {deliveries.is_empty().then(|| view! { <p class="mt-2 text-sm text-slate-500">"Nothing sent yet."</p> })}
                        <ul class="mt-2 divide-y divide-slate-100 text-sm">
                            {deliveries.into_iter().map(|dl| view! {
                                <li class="py-2" data-delivery=dl.id.to_string()>
                                    <span class="font-mono text-xs">{dl.webhook_id.clone()}</span>" · "{dl.kind.clone()}" · "<b>{dl.status.clone()}</b>" · "{dl.created.clone()}
                                    <span class="block text-xs text-slate-500">{dl.attempts.join(" — ")}</span>
                                    <ActionForm action=replay>
                                        <input type="hidden" name="id" value=dl.id.to_string()/>
                                        <button type="submit" class="mt-1 rounded border border-slate-300 px-2 py-0.5 text-xs hover:bg-slate-50">"Send again"</button>
                                    </ActionForm>
                                </li>
                            }).collect_view()}
                        </ul>
                    </section>
                })}
                <section class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-5">
                    <h2 class="text-lg font-semibold">"Add an endpoint"</h2>
                    <ActionForm action=create>
                        <label class="mt-3 block max-w-xl text-sm font-medium">"Address (https)"
                            <input id="webhook-url" name="url" required maxlength="2000" placeholder="https://erp.example.com/hooks/dropcheck" class=field()/>
                        </label>
                        <label class="mt-3 block max-w-xl text-sm font-medium">"Event types (comma-separated)"
                            <input id="webhook-types" name="event_types" required value="drop.status_changed" class=field()/>
                        </label>
                        <button id="create-webhook" type="submit" class=format!("mt-3 {}", primary_button())>"Add endpoint"</button>
                    </ActionForm>
                </section>
            </Layout>
        }
    })
}
