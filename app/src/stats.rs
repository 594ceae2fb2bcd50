//! `/stats`: delivery statistics (sent / delivered / read / failed per day, failure reasons)
//! and QA statistics (drops reviewed per day, first-time-right rate, median time from
//! feedback to resubmission), as SVG charts drawn on the server: readable without JavaScript.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    pub label: String,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub reviewed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsPageData {
    pub me: Me,
    pub days: i64,
    pub rows: Vec<DayRow>,
    /// (code, count, what it means)
    pub reasons: Vec<(String, i64, String)>,
    pub approved: i64,
    pub first_time_right: String,
    pub median_fix: String,
    pub resubmissions: i64,
    pub photos_checked: i64,
    pub photos_flagged: i64,
    /// (step, flags)
    pub flags_by_step: Vec<(i64, i64)>,
    /// (contractor, flags)
    pub flags_by_contractor: Vec<(String, i64)>,
}

#[server(prefix = "/rpc", endpoint = "stats_page")]
pub async fn stats_page(days: Option<String>) -> Result<StatsPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let days: i64 = match days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => 14,
        Some(d) => d.parse().map_err(|_| crate::ssr::refuse("invalid_days", "days is a number from 1 to 366"))?,
    };
    let s = st.store.stats(days, dropcheck_core::now_ms()).await.map_err(fail)?;
    let rows = s
        .days
        .iter()
        .map(|d| DayRow {
            label: dropcheck_core::fmt_time(d.day).chars().take(10).collect(),
            sent: d.sent,
            delivered: d.delivered,
            read: d.read,
            failed: d.failed,
            reviewed: d.reviewed,
        })
        .collect();
    let reasons = s
        .failure_reasons
        .iter()
        .map(|(code, n)| (code.clone(), *n, dropcheck_core::providers::explain_error(code).unwrap_or_default().to_string()))
        .collect();
    let median_fix = match s.median_fix_ms {
        None => "—".to_string(),
        Some(ms) if ms < 3_600_000 => format!("{} min", (ms + 59_999) / 60_000),
        Some(ms) if ms < 2 * 86_400_000 => format!("{:.1} h", ms as f64 / 3_600_000.0),
        Some(ms) => format!("{:.1} days", ms as f64 / 86_400_000.0),
    };
    Ok(StatsPageData {
        me: crate::ui::me_of(&user),
        days,
        rows,
        reasons,
        approved: s.approved,
        first_time_right: s.first_time_right().map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "—".into()),
        median_fix,
        resubmissions: s.resubmissions,
        photos_checked: s.photos_checked,
        photos_flagged: s.photos_flagged,
        flags_by_step: s.flags_by_step,
        flags_by_contractor: s
            .flags_by_contractor
            .into_iter()
            .map(|(name, phone, n)| {
                let who = match (name.is_empty(), phone.is_empty()) {
                    (_, true) => "no contractor".to_string(),
                    (true, false) => phone,
                    (false, false) => format!("{name} · {phone}"),
                };
                (who, n)
            })
            .collect(),
    })
}

#[component]
pub fn StatsPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.read().get("days"), stats_page);
    page("Statistics · Dropcheck", data, Some(("/stats", "Last 14 days")), move |d| view! { <StatsView d=d/> })
}

/// Chart geometry (SVG user units).
const W: f64 = 720.0;
const H: f64 = 180.0;
const PAD: f64 = 24.0;

/// A stacked bar chart: one bar per day, one segment per (value, colour class).
fn bars(
    id: &'static str,
    title: &'static str,
    rows: &[DayRow],
    segments: &[(&'static str, &'static str, fn(&DayRow) -> i64)],
) -> impl IntoView {
    let max = rows.iter().map(|r| segments.iter().map(|(_, _, f)| f(r)).sum::<i64>()).max().unwrap_or(0).max(1) as f64;
    let n = rows.len().max(1) as f64;
    let slot = (W - PAD) / n;
    let bar = (slot * 0.7).max(2.0);
    let mut rects = vec![];
    for (i, r) in rows.iter().enumerate() {
        let x = PAD + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = H - PAD;
        for (name, class, f) in segments {
            let v = f(r);
            if v == 0 {
                continue;
            }
            let h = (v as f64 / max) * (H - 2.0 * PAD);
            y -= h;
            rects.push(view! {
                <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{bar:.1}") height=format!("{h:.1}") class=*class>
                    <title>{format!("{}: {v} {name}", r.label)}</title>
                </rect>
            });
        }
    }
    let first = rows.first().map(|r| r.label.clone()).unwrap_or_default();
    let last = rows.last().map(|r| r.label.clone()).unwrap_or_default();
    view! {
        <figure class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
            <figcaption class="mb-2 flex flex-wrap items-center gap-3 text-sm font-semibold">
                {title}
                {segments.iter().map(|(name, class, _)| view! {
                    <span class="flex items-center gap-1 text-xs font-normal text-slate-600">
                        <svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" class=*class/></svg>{*name}
                    </span>
                }).collect_view()}
            </figcaption>
            <svg id=id viewBox=format!("0 0 {W} {H}") class="h-auto w-full" role="img" aria-label=title>
                <line x1=PAD y1=H - PAD x2=W y2=H - PAD class="stroke-slate-300"/>
                <text x=PAD y=PAD - 8.0 class="fill-slate-500 text-[10px]">{format!("max {max}")}</text>
                {rects}
                <text x=PAD y=H - 6.0 class="fill-slate-500 text-[10px]">{first}</text>
                <text x=W y=H - 6.0 text-anchor="end" class="fill-slate-500 text-[10px]">{last}</text>
            </svg>
        </figure>
    }
}

#[component]
fn StatsView(d: StatsPageData) -> impl IntoView {
    let delivery = bars(
        "delivery-chart",
        "Messages out per day",
        &d.rows,
        &[
            ("read", "fill-sky-500", |r| r.read),
            ("delivered", "fill-emerald-500", |r| r.delivered),
            ("sent", "fill-slate-400", |r| r.sent),
            ("failed", "fill-red-500", |r| r.failed),
        ],
    );
    let qa = bars("qa-chart", "Drops reviewed per day", &d.rows, &[("reviewed", "fill-blue-600", |r| r.reviewed)]);
    let total = |f: fn(&DayRow) -> i64| d.rows.iter().map(f).sum::<i64>();
    let (sent, delivered, read, failed, reviewed) =
        (total(|r| r.sent), total(|r| r.delivered), total(|r| r.read), total(|r| r.failed), total(|r| r.reviewed));
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-4 flex flex-wrap items-baseline gap-4">
                <h1 class="text-2xl font-semibold">"Statistics"</h1>
                {[7, 14, 30, 90].into_iter().map(|n| view! {
                    <a href=format!("/stats?days={n}") class=if n == d.days { "text-sm font-semibold text-slate-900" } else { "text-sm text-blue-700 underline" }>{format!("{n} days")}</a>
                }).collect_view()}
                <a href="/stats/contractors" id="scorecards-link" class="ml-auto text-sm text-blue-700 underline">"Contractor scorecards →"</a>
            </div>
            <dl class="mb-6 grid grid-cols-2 gap-3 md:grid-cols-4" id="stats-summary">
                <div class="rounded-lg border border-slate-200 bg-white p-3"><dt class="text-xs text-slate-500">"Drops reviewed"</dt><dd class="text-2xl font-semibold" id="stat-reviewed">{reviewed}</dd></div>
                <div class="rounded-lg border border-slate-200 bg-white p-3"><dt class="text-xs text-slate-500">{format!("First time right ({} approved)", d.approved)}</dt><dd class="text-2xl font-semibold" id="stat-ftr">{d.first_time_right.clone()}</dd></div>
                <div class="rounded-lg border border-slate-200 bg-white p-3"><dt class="text-xs text-slate-500">{format!("Median feedback → resubmission ({})", d.resubmissions)}</dt><dd class="text-2xl font-semibold" id="stat-fix">{d.median_fix.clone()}</dd></div>
                <div class="rounded-lg border border-slate-200 bg-white p-3"><dt class="text-xs text-slate-500">"Messages out: delivered or read / failed"</dt><dd class="text-2xl font-semibold" id="stat-delivery">{format!("{} / {}", delivered + read, failed)}</dd><dd class="text-xs text-slate-500">{format!("{sent} sent, not yet delivered")}</dd></div>
            </dl>
            <div class="grid gap-6 xl:grid-cols-2">
                {delivery}
                {qa}
            </div>
            <PhotoFlags d=d.clone()/>
            <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                <h2 class="text-sm font-semibold">"Why messages failed"</h2>
                {if d.reasons.is_empty() {
                    view! { <p class="mt-2 text-sm text-slate-500">"No failures in this period."</p> }.into_any()
                } else {
                    view! {
                        <table class="mt-2 min-w-full text-sm" id="failure-reasons">
                            <tbody class="divide-y divide-slate-100">
                                {d.reasons.clone().into_iter().map(|(code, n, help)| view! {
                                    <tr><td class="py-1.5 pr-4 font-mono text-xs">{code}</td><td class="py-1.5 pr-4 font-semibold">{n}</td><td class="py-1.5 text-slate-600">{help}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        </Layout>
    }
}

/// Photo flags in the period: how many photos were flagged, by step and by contractor.
#[component]
fn PhotoFlags(d: StatsPageData) -> impl IntoView {
    let share =
        if d.photos_checked > 0 { format!(" ({:.0}%)", d.photos_flagged as f64 * 100.0 / d.photos_checked as f64) } else { String::new() };
    let table = |id: &'static str, head: &'static str, rows: Vec<(String, i64)>| {
        view! {
            <table class="mt-2 min-w-full text-sm" id=id>
                <thead class="text-left text-xs text-slate-500"><tr><th class="py-1 pr-4 font-medium">{head}</th><th class="py-1 font-medium">"Flags"</th></tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {rows.into_iter().map(|(k, n)| view! { <tr><td class="py-1.5 pr-4">{k}</td><td class="py-1.5 font-semibold">{n}</td></tr> }).collect_view()}
                </tbody>
            </table>
        }
    };
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="photo-flags">
            <h2 class="text-sm font-semibold">"Photo checks"</h2>
            <p class="mt-1 text-sm text-slate-600" id="stat-flagged">
                {format!("{} of {} photos checked were flagged{share} (too small, too dark, over-exposed, blurred, featureless or reused).", d.photos_flagged, d.photos_checked)}
            </p>
            {(!d.flags_by_step.is_empty()).then(|| view! {
                <div class="grid gap-6 md:grid-cols-2">
                    {table("flags-by-step", "Step", d.flags_by_step.iter().map(|(s, n)| (format!("Step {s}"), *n)).collect())}
                    {table("flags-by-contractor", "Contractor", d.flags_by_contractor.clone())}
                </div>
            })}
        </section>
    }
}
