//! Broadcasts (issue 14, item 6), for admins: `/broadcasts` lists them and starts a new one (a
//! template to the contacts with a tag, at a pace, under a daily cap, outside quiet hours);
//! `/broadcasts/{id}` shows a draft's preflight — who would get it and who not and why — with
//! **Start**, and a started one's progress with **Pause** / **Resume** / **Cancel**. The forms
//! post to the server's broadcast routes (`server/src/broadcasts_web.rs`): no JavaScript needed.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastLine {
    pub id: i64,
    pub name: String,
    pub template: String,
    pub tag: String,
    pub status: String,
    pub progress: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastsPageData {
    pub me: Me,
    pub rows: Vec<BroadcastLine>,
    /// The enabled templates a broadcast may send.
    pub templates: Vec<String>,
    pub tags: Vec<String>,
}

/// A campaign's status in words.
pub fn status_label(s: &str) -> &'static str {
    match s {
        "draft" => "Draft — not started",
        "running" => "Sending",
        "paused" => "Paused",
        "done" => "Done",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

fn status_class(s: &str) -> &'static str {
    match s {
        "running" => "bg-sky-100 text-sky-900",
        "paused" => "bg-amber-100 text-amber-900",
        "done" => "bg-emerald-100 text-emerald-900",
        "cancelled" => "bg-slate-200 text-slate-700",
        _ => "bg-slate-100 text-slate-700",
    }
}

/// What a recipient status means on the page.
fn recipient_label(s: &str) -> &'static str {
    match s {
        "pending" => "Waiting their turn",
        "queued" => "Handed to the send queue",
        "later" => "To try again later",
        "failed" => "Failed",
        "excluded" => "Excluded",
        _ => "Other",
    }
}

#[cfg(feature = "ssr")]
fn progress(recipients: &std::collections::BTreeMap<String, i64>) -> String {
    if recipients.is_empty() {
        return "—".into();
    }
    let n = |s: &str| recipients.get(s).copied().unwrap_or(0);
    let to_send: i64 = recipients.iter().filter(|(s, _)| s.as_str() != "excluded").map(|(_, n)| n).sum();
    let mut out = format!("{} of {to_send} queued", n("queued"));
    if n("failed") > 0 {
        out.push_str(&format!(" · {} failed", n("failed")));
    }
    if n("excluded") > 0 {
        out.push_str(&format!(" · {} excluded", n("excluded")));
    }
    out
}

#[server(prefix = "/rpc", endpoint = "broadcasts_page")]
pub async fn broadcasts_page() -> Result<BroadcastsPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let rows = st
        .store
        .campaigns(200)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|c| BroadcastLine {
            id: c.id,
            progress: progress(&c.recipients),
            name: c.name,
            template: c.template,
            tag: c.tag,
            status: c.status,
            created: format!("{}, {}", dropcheck_core::fmt_time(c.created_at), c.created_by),
        })
        .collect();
    let templates = st.store.templates().await.map_err(fail)?.into_iter().filter(|t| t.enabled).map(|t| t.name).collect();
    Ok(BroadcastsPageData { me: me_of(&user), rows, templates, tags: st.store.all_tags().await.map_err(fail)? })
}

#[component]
pub fn BroadcastsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| broadcasts_page());
    page("Broadcasts · Dropcheck", data, Some(("/broadcasts", "Broadcasts")), move |d| view! { <BroadcastsView d=d/> })
}

#[component]
fn BroadcastsView(d: BroadcastsPageData) -> impl IntoView {
    // A refused form comes back with what was typed (`server/src/broadcasts_web.rs`).
    let query = use_query_map();
    let typed = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let or = |v: String, default: &str| if v.is_empty() { default.to_string() } else { v };
    view! {
        <Layout me=d.me.clone()>
            <h1 class="mb-1 text-2xl font-semibold">"Broadcasts"</h1>
            <p class="mb-4 max-w-3xl text-sm text-slate-500">
                "An approved template to every contact with a tag — only those opted in for marketing, never to an opted-out, "
                "muted or blocked-region number, at most one broadcast per contact in the frequency window — at a pace, under a "
                "daily cap, and never in a contact's quiet hours (their time zone, else UTC). A new broadcast is a draft: its "
                "page shows who would get it and who not, and nothing goes until you press Start."
            </p>
            {notice()}
            <div class="mb-6 overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="broadcasts">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr><th class="px-3 py-2">"Name"</th><th class="px-3 py-2">"Template"</th><th class="px-3 py-2">"To tag"</th>
                            <th class="px-3 py-2">"Status"</th><th class="px-3 py-2">"Progress"</th><th class="px-3 py-2">"Created"</th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.is_empty().then(|| view! { <tr><td colspan="6" class="px-3 py-3 text-slate-500">"No broadcasts yet."</td></tr> })}
                        {d.rows.into_iter().map(|b| view! {
                            <tr class="broadcast-row" data-id=b.id>
                                <td class="px-3 py-2"><a class="text-blue-700 underline" href=format!("/broadcasts/{}", b.id)>{b.name.clone()}</a></td>
                                <td class="px-3 py-2 font-mono text-xs">{b.template.clone()}</td>
                                <td class="px-3 py-2">{b.tag.clone()}</td>
                                <td class="px-3 py-2"><span class=format!("rounded px-1.5 py-0.5 text-xs {}", status_class(&b.status))>{status_label(&b.status)}</span></td>
                                <td class="px-3 py-2">{b.progress.clone()}</td>
                                <td class="whitespace-nowrap px-3 py-2 text-slate-500">{b.created.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                <h2 class="mb-3 text-lg font-semibold">"New broadcast"</h2>
                {d.tags.is_empty().then(|| view! {
                    <p class="mb-3 text-sm text-amber-800">"No contact has a tag yet: tag contacts (or import them with a tags column) first."</p>
                })}
                <form method="post" action="/broadcasts" id="new-broadcast" class="grid max-w-3xl grid-cols-1 gap-3 sm:grid-cols-2">
                    <label class="text-sm">"Name" <input name="name" required maxlength="120" value=typed("name") placeholder="March fibre offer" class=input_class()/></label>
                    <label class="text-sm">"Template"
                        <select name="template" required class=input_class()>
                            {d.templates.iter().map(|t| view! { <option value=t.clone() selected=typed("template") == *t>{t.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="text-sm">"To the contacts tagged"
                        <select name="tag" required class=input_class()>
                            {d.tags.iter().map(|t| view! { <option value=t.clone() selected=typed("tag").eq_ignore_ascii_case(t)>{t.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="text-sm">"Frequency cap (hours; 0: none)"
                        <input name="frequency_hours" type="number" min="0" max="720" value=or(typed("frequency_hours"), "24") class=input_class()/>
                    </label>
                    <label class="text-sm">"Pace (messages a minute)"
                        <input name="pace_per_minute" type="number" min="1" max="1000" value=or(typed("pace_per_minute"), "60") class=input_class()/>
                    </label>
                    <label class="text-sm">"Daily cap (messages in 24 hours)"
                        <input name="daily_cap" type="number" min="1" max="100000" value=or(typed("daily_cap"), "1000") class=input_class()/>
                    </label>
                    <label class="text-sm">"Quiet from (contact's time)"
                        <input name="quiet_start" type="time" value=typed("quiet_start") class=input_class()/>
                    </label>
                    <label class="text-sm">"Quiet until"
                        <input name="quiet_end" type="time" value=typed("quiet_end") class=input_class()/>
                    </label>
                    <label class="text-sm sm:col-span-2">"Blocked number prefixes (comma-separated; Meta refuses marketing templates to +1)"
                        <input name="blocked_prefixes" value=or(typed("blocked_prefixes"), "+1") class=input_class()/>
                    </label>
                    <label class="text-sm sm:col-span-2">"Template variables, one per line as " <code>"name = text"</code> " (the text may use the contact's " <code>"{{ name }}"</code> ", " <code>"{{ phone }}"</code> " and attributes)"
                        <textarea name="variables" rows="3" class=input_class() placeholder="name = {{ name }}">{typed("variables")}</textarea>
                    </label>
                    <div class="sm:col-span-2">
                        <button type="submit" id="create-broadcast" class=primary_button()>"Create the draft and check who gets it"</button>
                    </div>
                </form>
            </section>
        </Layout>
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastPageData {
    pub me: Me,
    pub id: i64,
    pub name: String,
    pub template: String,
    pub tag: String,
    pub status: String,
    pub detail: String,
    pub eligible: i64,
    /// (reason, how many)
    pub excluded: Vec<(String, i64)>,
    /// (status, how many), once started.
    pub recipients: Vec<(String, i64)>,
    /// "60 a minute, at most 1000 a day; quiet 21:00–08:00; …"
    pub rules: String,
    pub variables: Vec<(String, String)>,
    pub created: String,
    pub started: String,
    pub finished: String,
}

#[server(prefix = "/rpc", endpoint = "broadcast_page")]
pub async fn broadcast_page(id: String) -> Result<BroadcastPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| refuse("campaign_not_found", "There is no such broadcast."))?;
    let c = st.store.campaign(id).await.map_err(fail)?;
    let s = &c.spec;
    let mut rules = vec![format!("{} a minute, at most {} in 24 hours", s.pace_per_minute, s.daily_cap)];
    if let Some(q) = &s.quiet_hours {
        rules.push(format!("quiet {}–{} in each contact's time zone", q.start, q.end));
    }
    rules.push(if s.frequency_hours == 0 {
        "no frequency cap".into()
    } else {
        format!("not to a contact who had a broadcast in the last {} h", s.frequency_hours)
    });
    if !s.blocked_prefixes.is_empty() {
        rules.push(format!("never to {}", s.blocked_prefixes.join(", ")));
    }
    Ok(BroadcastPageData {
        me: me_of(&user),
        id,
        name: s.name.clone(),
        template: s.template.clone(),
        tag: s.tag.clone(),
        detail: c.detail.clone(),
        eligible: c.eligible,
        excluded: c.excluded.clone().into_iter().collect(),
        recipients: c.recipients.clone().into_iter().collect(),
        rules: rules.join("; "),
        variables: s.variables.clone().into_iter().collect(),
        created: format!("{}, by {}", dropcheck_core::fmt_time(c.created_at), c.created_by),
        started: c.started_at.map(dropcheck_core::fmt_time).unwrap_or_default(),
        finished: c.finished_at.map(dropcheck_core::fmt_time).unwrap_or_default(),
        status: c.status,
    })
}

#[component]
pub fn BroadcastPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(move || params.read().get("id").unwrap_or_default(), broadcast_page);
    page("Broadcast · Dropcheck", data, Some(("/broadcasts", "Broadcasts")), move |d| view! { <BroadcastView d=d/> })
}

#[component]
fn BroadcastView(d: BroadcastPageData) -> impl IntoView {
    let id = d.id;
    let act = move |action: &'static str, label: &'static str, class: &'static str| {
        view! {
            <form method="post" action=format!("/broadcasts/{id}/{action}")>
                <button type="submit" id=format!("broadcast-{action}") class=class>{label}</button>
            </form>
        }
    };
    let secondary = "rounded-md border border-slate-300 bg-white px-3 py-2 text-sm font-semibold hover:bg-slate-100";
    let danger = "rounded-md border border-red-300 bg-white px-3 py-2 text-sm font-semibold text-red-800 hover:bg-red-50";
    let status = d.status.clone();
    let draft = status == "draft";
    let count = |n: i64| if n == 1 { "1 contact".to_string() } else { format!("{n} contacts") };
    view! {
        <Layout me=d.me.clone()>
            <a href="/broadcasts" class="text-sm text-blue-700 underline">"← Broadcasts"</a>
            <div class="mb-1 mt-2 flex flex-wrap items-baseline gap-3">
                <h1 class="text-2xl font-semibold">{d.name.clone()}</h1>
                <span id="broadcast-status" class=format!("rounded px-1.5 py-0.5 text-xs {}", status_class(&status))>{status_label(&status)}</span>
            </div>
            <p class="mb-4 text-sm text-slate-600">
                "Template " <code>{d.template.clone()}</code> " to the contacts tagged " <strong>{d.tag.clone()}</strong> "; " {d.rules.clone()} "."
            </p>
            {notice()}
            {(!d.detail.is_empty()).then(|| view! {
                <div id="broadcast-detail" role="status" class="mb-4 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">{d.detail.clone()}</div>
            })}
            <section class="mb-4 rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="preflight">
                <h2 class="mb-2 font-semibold">{if draft { "Who would get it (if started now)" } else { "Recipients" }}</h2>
                <p class="mb-2 text-lg" id="eligible">
                    <strong>{count(d.eligible)}</strong>{if draft { " would get it." } else { " to send to." }}
                </p>
                {(!d.excluded.is_empty()).then(|| view! {
                    <h3 class="text-sm font-semibold text-slate-600">"Excluded, and why"</h3>
                    <ul class="mb-2 list-disc pl-5 text-sm" id="excluded">
                        {d.excluded.iter().map(|(why, n)| view! { <li>{format!("{}: {why}", count(*n))}</li> }).collect_view()}
                    </ul>
                })}
                {(!d.recipients.is_empty()).then(|| view! {
                    <table class="text-sm" id="progress">
                        <tbody>
                            {d.recipients.iter().map(|(s, n)| view! {
                                <tr data-status=s.clone()><td class="pr-4 text-slate-600">{recipient_label(s)}</td><td class="font-semibold">{*n}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                })}
                {(!d.variables.is_empty()).then(|| view! {
                    <p class="mt-2 text-xs text-slate-500">
                        "Variables: " {d.variables.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("; ")}
                    </p>
                })}
            </section>
            <div class="mb-4 flex flex-wrap gap-3">
                {draft.then(|| act("start", "Start sending", "rounded-md bg-emerald-600 px-3 py-2 text-sm font-semibold text-white hover:bg-emerald-700"))}
                {(status == "running").then(|| act("pause", "Pause", secondary))}
                {(status == "paused").then(|| act("start", "Resume", secondary))}
                {matches!(status.as_str(), "draft" | "running" | "paused").then(|| act("cancel", "Cancel the broadcast", danger))}
            </div>
            <p class="text-xs text-slate-500">
                "Created " {d.created.clone()}
                {(!d.started.is_empty()).then(|| format!(" · started {}", d.started))}
                {(!d.finished.is_empty()).then(|| format!(" · ended {}", d.finished))}
                " · the page shows the state when it was opened; reload it to follow the progress."
            </p>
        </Layout>
    }
}
