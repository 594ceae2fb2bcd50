//! `/stats/contractors`: the contractor scorecards (issue 15, item 1) — per contractor, over
//! the drops they started in the period (one project or all): drops that reached review,
//! approved, first time right, the steps sent back, the median times from feedback to
//! resubmission and to approval, photo flags. Sorted by any column through plain links; each
//! row opens the contractor's drops. A GET form: no JavaScript needed.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardRow {
    pub phone: String,
    pub name: String,
    pub drops: i64,
    pub approved: i64,
    pub approved_first_time: i64,
    /// 0–100, or -1 with nothing approved (sorts last).
    pub ftr_percent: i64,
    /// "3 ×2 · 7 ×1", most sent back first.
    pub rejections: String,
    pub rejected_total: i64,
    pub median_resubmit: Option<i64>,
    pub median_approval: Option<i64>,
    pub flags: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardsPageData {
    pub me: Me,
    pub projects: Vec<String>,
    pub project: String,
    pub days: i64,
    pub sort: String,
    pub rows: Vec<CardRow>,
}

/// The columns one can sort by: (key, heading).
const COLUMNS: &[(&str, &str)] = &[
    ("name", "Contractor"),
    ("drops", "Drops"),
    ("approved", "Approved"),
    ("ftr", "First time right"),
    ("rejected", "Steps sent back"),
    ("resubmit", "Median fix time"),
    ("approval", "Median time to approval"),
    ("flags", "Photo flags"),
];

/// Seconds as "2 h 05 min", "3 d 4 h", "45 s".
pub fn duration_text(secs: Option<i64>) -> String {
    let Some(s) = secs else { return "—".into() };
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn sort_rows(rows: &mut [CardRow], sort: &str) {
    match sort {
        "name" => rows.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.phone.cmp(&b.phone))),
        "approved" => rows.sort_by(|a, b| b.approved.cmp(&a.approved)),
        "ftr" => rows.sort_by(|a, b| b.ftr_percent.cmp(&a.ftr_percent)),
        "rejected" => rows.sort_by(|a, b| b.rejected_total.cmp(&a.rejected_total)),
        // Slowest first; no data last.
        "resubmit" => rows.sort_by(|a, b| b.median_resubmit.unwrap_or(-1).cmp(&a.median_resubmit.unwrap_or(-1))),
        "approval" => rows.sort_by(|a, b| b.median_approval.unwrap_or(-1).cmp(&a.median_approval.unwrap_or(-1))),
        "flags" => rows.sort_by(|a, b| b.flags.cmp(&a.flags)),
        _ => rows.sort_by(|a, b| b.drops.cmp(&a.drops)),
    }
}

#[server(prefix = "/rpc", endpoint = "scorecards_page")]
pub async fn scorecards_page(project: Option<String>, days: Option<String>, sort: Option<String>) -> Result<ScorecardsPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let blank = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let days: i64 = match blank(days) {
        None => 30,
        Some(d) => d.parse().map_err(|_| refuse("invalid_days", "days is a number from 1 to 366"))?,
    };
    let projects: Vec<String> = st.store.projects().await.map_err(fail)?.into_iter().map(|p| p.name).collect();
    let project = blank(project).unwrap_or_default();
    let project_id = if project.is_empty() {
        None
    } else {
        let p = st.store.project_by_name(&project).await.map_err(fail)?;
        Some(p.ok_or_else(|| refuse("project_not_found", &format!("There is no project named {project}.")))?.project_id.get())
    };
    let cards = st.store.scorecards(project_id, days, dropcheck_core::now_ms()).await.map_err(fail)?;
    let sort = blank(sort).filter(|s| COLUMNS.iter().any(|(k, _)| k == s)).unwrap_or_else(|| "drops".into());
    let mut rows: Vec<CardRow> = cards
        .into_iter()
        .map(|c| {
            let mut by_step: Vec<(i64, i64)> = c.rejections_by_step.iter().map(|(s, n)| (*s, *n)).collect();
            by_step.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            CardRow {
                rejections: by_step.iter().map(|(s, n)| format!("{s} ×{n}")).collect::<Vec<_>>().join(" · "),
                rejected_total: by_step.iter().map(|(_, n)| n).sum(),
                ftr_percent: c.first_time_right_rate.map_or(-1, |r| (r * 100.0).round() as i64),
                phone: c.phone,
                name: c.name,
                drops: c.drops,
                approved: c.approved,
                approved_first_time: c.approved_first_time,
                median_resubmit: c.median_resubmit_seconds,
                median_approval: c.median_approval_seconds,
                flags: c.flags,
            }
        })
        .collect();
    sort_rows(&mut rows, &sort);
    Ok(ScorecardsPageData { me: me_of(&user), projects, project, days, sort, rows })
}

#[component]
pub fn ScorecardsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| query.read().get(k).filter(|v| !v.is_empty());
    let data = Resource::new(move || (q("project"), q("days"), q("sort")), |(p, d, s)| scorecards_page(p, d, s));
    page("Contractor scorecards · Dropcheck", data, Some(("/stats/contractors", "Contractor scorecards")), move |d| {
        view! { <ScorecardsView d=d/> }
    })
}

#[component]
fn ScorecardsView(d: ScorecardsPageData) -> impl IntoView {
    let sort_href = {
        let (project, days) = (d.project.clone(), d.days);
        move |key: &str| format!("/stats/contractors?project={}&days={days}&sort={key}", urlencode(&project))
    };
    let th = "px-3 py-2";
    view! {
        <Layout me=d.me.clone()>
            <a href="/stats" class="text-sm text-blue-700 underline">"← Statistics"</a>
            <h1 class="mb-1 mt-2 text-2xl font-semibold">"Contractor scorecards"</h1>
            <p class="mb-4 max-w-3xl text-sm text-slate-500">
                "Per contractor, over the drops they started in the period that reached review: how many were approved and how "
                "many of those in the first round, which steps reviewers sent back (each feedback counts each step it lists), the "
                "median time from feedback to resubmission and from the first message to approval, and photo check flags."
            </p>
            <form method="get" action="/stats/contractors" id="scorecard-filters" class="mb-4 flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                <label class="text-sm">"Project"
                    <select name="project" class=select_class()>
                        <option value="">"All projects"</option>
                        {d.projects.iter().map(|p| view! { <option value=p.clone() selected=*p == d.project>{p.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"Period"
                    <select name="days" class=select_class()>
                        {[7i64, 30, 90, 365].into_iter().map(|n| view! { <option value=n.to_string() selected=n == d.days>{format!("Last {n} days")}</option> }).collect_view()}
                    </select>
                </label>
                <input type="hidden" name="sort" value=d.sort.clone()/>
                <button type="submit" class="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-semibold text-white hover:bg-slate-900">"Show"</button>
            </form>
            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="scorecards">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr>
                            {COLUMNS.iter().map(|(key, heading)| {
                                let current = d.sort == *key;
                                view! {
                                    <th class=th aria-sort=if current { "descending" } else { "none" }>
                                        <a href=sort_href(key) class=if current { "text-slate-900 underline" } else { "hover:underline" } data-sort=*key>
                                            {*heading}{current.then_some(" ▾")}
                                        </a>
                                    </th>
                                }
                            }).collect_view()}
                        </tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.is_empty().then(|| view! { <tr><td colspan="8" class="px-3 py-3 text-slate-500">"No contractor started a drop that reached review in this period."</td></tr> })}
                        {d.rows.into_iter().map(|r| view! {
                            <tr class="scorecard-row" data-phone=r.phone.clone()>
                                <td class="px-3 py-2">
                                    <a class="text-blue-700 underline" href=format!("/?contractor={}", urlencode(&r.phone))>
                                        {if r.name.is_empty() { r.phone.clone() } else { r.name.clone() }}
                                    </a>
                                    <div class="font-mono text-xs text-slate-500">{r.phone.clone()}</div>
                                </td>
                                <td class="px-3 py-2" data-col="drops">{r.drops}</td>
                                <td class="px-3 py-2" data-col="approved">{r.approved}</td>
                                <td class="px-3 py-2" data-col="ftr">
                                    {if r.ftr_percent < 0 { "—".to_string() } else { format!("{}% ({} of {})", r.ftr_percent, r.approved_first_time, r.approved) }}
                                </td>
                                <td class="px-3 py-2" data-col="rejected">{if r.rejections.is_empty() { "—".to_string() } else { format!("step {}", r.rejections) }}</td>
                                <td class="px-3 py-2" data-col="resubmit">{duration_text(r.median_resubmit)}</td>
                                <td class="px-3 py-2" data-col="approval">{duration_text(r.median_approval)}</td>
                                <td class="px-3 py-2" data-col="flags">{r.flags}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </Layout>
    }
}
