//! The drops list (`/`): counts by status, filters, the table and its pages.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropRowView {
    pub number: String,
    pub status: String,
    pub status_label: String,
    pub project: String,
    pub contractor: String,
    pub photo_steps: i64,
    pub step_count: i64,
    pub round: i64,
    pub activity_ago: String,
    pub activity_at: String,
    /// Open flags of the usable-photo checks.
    pub open_flags: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectOption {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropsPageData {
    pub me: Me,
    pub counts: Vec<StatusCount>,
    pub total: i64,
    pub rows: Vec<DropRowView>,
    pub next_cursor: Option<String>,
    pub projects: Vec<ProjectOption>,
}

#[allow(clippy::too_many_arguments)]
#[server(prefix = "/rpc", endpoint = "drops_page")]
pub async fn drops_page(
    status: Option<String>,
    project: Option<String>,
    contractor: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    flagged: Option<String>,
    cursor: Option<String>,
) -> Result<DropsPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::store::{Cursor, DropQuery};
    use dropcheck_core::{ago, fmt_time, now_ms};
    let (st, user) = require_user().await?;
    let nonempty = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let bad = |e: dropcheck_core::InputError| fail(e.into());
    let filter = DropQuery { status, project, contractor, q, from, to, flagged }.filter().map_err(bad)?;
    let cursor = nonempty(cursor).map(|c| Cursor::parse(&c)).transpose().map_err(bad)?;
    let (rows, next) = st.store.list_drops(&filter, cursor, 50).await.map_err(fail)?;
    let counts = st.store.status_counts().await.map_err(fail)?;
    let projects = st.store.projects().await.map_err(fail)?;
    let now = now_ms();
    Ok(DropsPageData {
        me: me_of(&user),
        total: counts.iter().map(|(_, n)| n).sum(),
        counts: counts.into_iter().map(|(s, n)| StatusCount { status: s.as_str().into(), label: s.label().into(), count: n }).collect(),
        rows: rows
            .into_iter()
            .map(|r| DropRowView {
                status_label: r.status.label().to_string(),
                number: r.drop_number.to_string(),
                status: r.status.as_str().to_string(),
                project: r.project,
                contractor: match (r.contractor_name.filter(|n| !n.is_empty()), r.contractor_phone) {
                    (Some(n), Some(p)) => format!("{n} · {p}"),
                    (None, Some(p)) => p.to_string(),
                    _ => "—".into(),
                },
                photo_steps: r.photo_steps,
                step_count: r.step_count,
                round: r.round,
                activity_ago: ago(r.activity_at, now),
                activity_at: fmt_time(r.activity_at),
                open_flags: r.open_flags,
            })
            .collect(),
        next_cursor: next.map(|c| c.encode()),
        projects: projects.into_iter().map(|p| ProjectOption { id: p.project_id.get(), name: p.name }).collect(),
    })
}

#[component]
pub fn DropsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| query.read().get(k).filter(|v| !v.is_empty());
    // Bumped by the live stream when any drop changes (new drops, photos, status changes).
    let live = RwSignal::new(0u64);
    let data = Resource::new(
        move || (q("status"), q("project"), q("contractor"), q("q"), q("from"), q("to"), q("flagged"), q("cursor"), live.get()),
        |(status, project, contractor, q, from, to, flagged, cursor, _)| {
            drops_page(status, project, contractor, q, from, to, flagged, cursor)
        },
    );
    #[cfg(feature = "hydrate")]
    {
        crate::browser::shortcuts::install_list();
        Effect::new(move |_| crate::browser::live::live("/live/drops".into(), live));
    }
    page("Drops · Dropcheck", data, Some(("/login", "Sign in")), move |d| view! { <DropsView d=d/> })
}

#[component]
fn DropsView(d: DropsPageData) -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let current_status = get("status");
    let keep = {
        // The filters other than status and cursor, kept when a badge is clicked.
        let mut parts = vec![];
        for k in ["project", "contractor", "q", "from", "to", "flagged"] {
            let v = get(k);
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(&v)));
            }
        }
        parts.join("&")
    };
    // `path` with a status and the other filters: the badges' links, and the CSV download's.
    let with_filters = {
        let keep = keep.clone();
        move |path: &str, status: &str| {
            let mut p = vec![];
            if !status.is_empty() {
                p.push(format!("status={}", urlencode(status)));
            }
            if !keep.is_empty() {
                p.push(keep.clone());
            }
            if p.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", p.join("&"))
            }
        }
    };
    let csv_link = with_filters("/drops.csv", &current_status);
    let link = move |status: &str| with_filters("/", status);
    let next_link = d.next_cursor.clone().map(|c| {
        let mut p = vec![format!("cursor={c}")];
        if !current_status.is_empty() {
            p.push(format!("status={current_status}"));
        }
        if !keep.is_empty() {
            p.push(keep.clone());
        }
        format!("/?{}", p.join("&"))
    });
    let is_first_page = get("cursor").is_empty();
    let all_active = current_status.is_empty();
    let project_sel = get("project");
    let kbd = |k: &'static str| view! { <kbd class="rounded bg-slate-100 px-1 ring-1 ring-slate-300">{k}</kbd> };
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-5 flex flex-wrap items-center gap-3">
                <h1 class="mr-4 text-2xl font-semibold tracking-tight">"Drops"</h1>
                <a href=link("") class=format!("count-badge rounded-full px-3 py-1 text-sm font-medium ring-1 ring-inset {}",
                        if all_active { "bg-slate-900 text-white ring-slate-900" } else { "bg-white text-slate-700 ring-slate-300 hover:bg-slate-100" })>
                    "All " <span class="font-semibold">{d.total}</span>
                </a>
                {d.counts.iter().map(|c| {
                    let active = c.status == current_status;
                    let cls = if active { format!("ring-2 ring-offset-1 {}", badge_class(&c.status)) } else { format!("hover:brightness-95 {}", badge_class(&c.status)) };
                    view! {
                        <a href=link(&c.status) data-filter=c.status.clone()
                           class=format!("count-badge rounded-full px-3 py-1 text-sm font-medium ring-1 ring-inset {cls}")>
                            {c.label.clone()} " " <span class="font-semibold">{c.count}</span>
                        </a>
                    }
                }).collect_view()}
                <a href=csv_link rel="external" download="drops.csv" id="download-csv" class="ml-auto rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-700 hover:bg-slate-50"
                   title="Every drop these filters select, as a CSV file">"Download CSV"</a>
                <a href="/next" rel="external" id="review-next" class="rounded-md bg-blue-600 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-blue-700">
                    "Review next " <kbd class="ml-1 rounded bg-blue-800 px-1.5 text-xs">"n"</kbd>
                </a>
            </div>
            {(get("waiting") == "none").then(|| view! {
                <p id="nothing-waiting" class="mb-4 rounded-md bg-green-50 px-4 py-3 text-sm text-green-800 ring-1 ring-green-200">
                    "Nothing is waiting for review right now: no drop is Unreviewed or Resubmitted."
                </p>
            })}
            <form method="get" action="/" class="mb-5 grid grid-cols-2 gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm md:grid-cols-8">
                <input type="hidden" name="status" value=current_status.clone()/>
                <label class="text-xs font-medium text-slate-600">"Project"
                    <select name="project" class=input_class()>
                        <option value="">"All projects"</option>
                        {d.projects.iter().map(|p| {
                            let id = p.id.to_string();
                            view! { <option value=id.clone() selected=id == project_sel>{p.name.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label class="text-xs font-medium text-slate-600">"Contractor"
                    <input name="contractor" value=get("contractor") placeholder="name or number" class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Drop number"
                    <input name="q" id="search" value=get("q") placeholder="DR…" class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Active from"
                    <input type="date" name="from" value=get("from") class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Active to"
                    <input type="date" name="to" value=get("to") class=input_class()/>
                </label>
                <label class="flex items-end gap-2 pb-2 text-sm text-slate-700">
                    <input type="checkbox" name="flagged" value="true" id="flagged-only" checked=get("flagged") == "true" class="h-4 w-4 rounded border-slate-300"/>
                    "Flagged photos only"
                </label>
                <div class="col-span-2 flex items-end gap-2">
                    <button type="submit" class=primary_button()>"Filter"</button>
                    <a href="/" class="rounded-md px-3 py-2 text-sm text-slate-600 hover:bg-slate-100">"Reset"</a>
                </div>
            </form>
            <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="drops-table">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr>
                            <th class="px-4 py-3">"Drop"</th>
                            <th class="px-4 py-3">"Status"</th>
                            <th class="px-4 py-3">"Project"</th>
                            <th class="px-4 py-3">"Contractor"</th>
                            <th class="px-4 py-3">"Photos"</th>
                            <th class="px-4 py-3">"Round"</th>
                            <th class="px-4 py-3">"Last activity"</th>
                        </tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.is_empty().then(|| if d.total == 0 {
                            // A fresh install: say how the first drop arrives.
                            view! {
                                <tr><td colspan="7" class="px-4 py-10 text-center text-slate-500" id="no-drops-yet">
                                    "No drops yet. A drop opens when a contractor sends its number (e.g. DR12345678) on WhatsApp; "
                                    <a href="/sandbox" class="text-blue-700 underline">"try it in the sandbox"</a> "."
                                </td></tr>
                            }.into_any()
                        } else {
                            view! { <tr><td colspan="7" class="px-4 py-10 text-center text-slate-500">"No drops match these filters."</td></tr> }.into_any()
                        })}
                        {d.rows.iter().map(|r| {
                            let href = format!("/drops/{}", r.number);
                            let complete = r.photo_steps >= r.step_count && r.step_count > 0;
                            view! {
                                <tr class="drop-row hover:bg-slate-50 focus-within:bg-blue-50" data-drop=r.number.clone()>
                                    <td class="px-4 py-2.5 font-mono font-semibold"><a href=href class="drop-link text-blue-700 hover:underline focus:outline-none focus:ring-2 focus:ring-blue-400 rounded">{r.number.clone()}</a></td>
                                    <td class="px-4 py-2.5"><StatusBadge status=r.status.clone() label=r.status_label.clone()/></td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.project.clone()}</td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.contractor.clone()}</td>
                                    <td class="px-4 py-2.5">
                                        <span class=if complete { "text-green-700" } else { "text-slate-600" }>{format!("{}/{}", r.photo_steps, r.step_count)}</span>
                                        {(r.open_flags > 0).then(|| view! {
                                            <span class="flag-badge ml-2 rounded-full bg-red-50 px-2 py-0.5 text-xs font-medium text-red-700 ring-1 ring-inset ring-red-200"
                                                  title="Photos the checks flagged (too dark, blurred…) that nobody has dismissed">
                                                {format!("⚑ {} flagged", r.open_flags)}
                                            </span>
                                        })}
                                    </td>
                                    <td class="px-4 py-2.5 text-slate-600">{r.round}</td>
                                    <td class="px-4 py-2.5 text-slate-600" title=r.activity_at.clone()>{r.activity_ago.clone()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <div class="mt-4 flex flex-wrap items-center gap-3 text-sm">
                {(!is_first_page).then(|| view! { <a href=link(&current_status) class="rounded-md border border-slate-300 bg-white px-3 py-1.5 hover:bg-slate-100">"← First page"</a> })}
                {next_link.map(|l| view! { <a href=l id="next-page" class="rounded-md border border-slate-300 bg-white px-3 py-1.5 hover:bg-slate-100">"Next page →"</a> })}
                <p class="ml-auto text-xs text-slate-500" id="list-keys">
                    "Keys: " {kbd("j")} " / " {kbd("k")} " rows · " {kbd("Enter")} " open · " {kbd("/")} " search · " {kbd("n")} " review next"
                </p>
            </div>
        </Layout>
    }
}
