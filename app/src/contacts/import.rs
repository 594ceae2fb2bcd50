//! `/contacts/import` (choose a CSV file) and `/contacts/import/{id}` (map its columns,
//! preview, import, and the report with the rejected rows to download). The mapping form is
//! a GET form (Preview) whose Import button posts the same fields to the server.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::*;

#[component]
pub fn ImportPage() -> impl IntoView {
    let data = Resource::new(
        || (),
        |_| async {
            current_user()
                .await
                .and_then(|m| m.ok_or_else(|| AppError { code: "unauthenticated".into(), message: "Sign in first.".into() }))
        },
    );
    page("Import contacts · Dropcheck", data, Some(("/contacts", "Contacts")), move |me| {
        view! {
            <Layout me=me>
                <a href="/contacts" class="text-sm text-blue-700 underline">"← Contacts"</a>
                <h1 class="mb-1 mt-2 text-2xl font-semibold">"Import contacts"</h1>
                <p class="mb-4 max-w-2xl text-sm text-slate-500">
                    "A CSV file (UTF-8, a heading row, comma- or semicolon-separated, up to 10 MB). Next you say what each column "
                    "holds and see a preview with every row that cannot be imported and why; nothing is saved until you import. "
                    "Numbers already in Dropcheck are matched, never added twice."
                </p>
                {notice()}
                <form method="post" action="/contacts/upload" enctype="multipart/form-data" id="upload-form"
                    class="flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                    <label class="text-sm">"CSV file" <input type="file" name="file" accept=".csv,text/csv" required class="mt-1 block text-sm"/></label>
                    <button type="submit" class=primary_button()>"Upload and map columns"</button>
                </form>
            </Layout>
        }
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    pub dry_run: bool,
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub rejected: usize,
    /// (line, reason), the first 200
    pub rejected_rows: Vec<(u64, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportPageData {
    pub me: Me,
    pub id: i64,
    pub file_name: String,
    pub headers: Vec<String>,
    /// The first rows, for recognising the columns.
    pub samples: Vec<Vec<String>>,
    /// Each column's target (`phone`, `attribute:plan`, `ignore`…).
    pub targets: Vec<String>,
    /// Every target there is: (value, label).
    pub choices: Vec<(String, String)>,
    pub region: String,
    pub mode: String,
    pub fire: bool,
    pub preview: Option<Result<ReportView, String>>,
    /// The import's own report, once it ran.
    pub report: Option<ReportView>,
}

#[cfg(feature = "ssr")]
fn report_view(r: dropcheck_core::store::ImportReport) -> ReportView {
    ReportView {
        dry_run: r.dry_run,
        rows: r.rows,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        skipped: r.skipped,
        rejected: r.rejected,
        rejected_rows: r.rejected_rows.into_iter().take(200).map(|x| (x.line, x.reason)).collect(),
    }
}

/// `query`: the page's query string (the mapping form's fields: `c0`… `region`, `mode`,
/// `fire`, `preview`).
#[server(prefix = "/rpc", endpoint = "contact_import_page")]
pub async fn contact_import_page(id: String, query: String) -> Result<ImportPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::contacts::import::{ImportMapping, Target};
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| refuse("not_found", "There is no such import."))?;
    let (file_name, file, report) = st.store.import_file(id).await.map_err(fail)?;
    let defs = st.store.attribute_defs().await.map_err(fail)?;
    let pairs = dropcheck_core::contacts::import::form_pairs(&query);
    let asked = pairs.iter().any(|(k, _)| k == "preview");
    let mapping = if asked {
        ImportMapping::from_form(&file.headers, &pairs).map_err(|e| fail(e.into()))?
    } else {
        ImportMapping {
            columns: file.headers.iter().map(|h| (h.clone(), Target::guess(h, &defs).as_string())).collect(),
            default_region: Some("ZA".into()),
            ..Default::default()
        }
    };
    let preview = if asked && report.is_none() {
        Some(st.store.run_import(id, &mapping, true, &user.email.to_string()).await.map(report_view).map_err(|e| e.to_string()))
    } else {
        None
    };
    let mut choices: Vec<(String, String)> = [
        ("ignore", "— ignore —"),
        ("phone", "Phone number"),
        ("name", "Name"),
        ("tags", "Tags (comma- or ;-separated)"),
        ("birthday", "Birthday"),
        ("time_zone", "Time zone"),
        ("consent", "Consent (opted_in / opted_out)"),
    ]
    .iter()
    .map(|(v, l)| (v.to_string(), l.to_string()))
    .collect();
    choices.extend(defs.iter().map(|d| (format!("attribute:{}", d.key), format!("Attribute: {}", d.label))));
    Ok(ImportPageData {
        me: me_of(&user),
        id,
        file_name,
        targets: file.headers.iter().map(|h| mapping.columns.get(h).cloned().unwrap_or_else(|| "ignore".into())).collect(),
        samples: file.rows.iter().take(3).map(|(_, cells)| cells.clone()).collect(),
        headers: file.headers,
        choices,
        region: mapping.default_region.clone().unwrap_or_default(),
        mode: match mapping.mode {
            dropcheck_core::store::ImportMode::Skip => "skip",
            dropcheck_core::store::ImportMode::FillBlanks => "fill_blanks",
            dropcheck_core::store::ImportMode::Overwrite => "overwrite",
        }
        .into(),
        fire: mapping.fire_rules,
        preview,
        report: report.map(report_view),
    })
}

#[component]
pub fn ImportMapPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), query.read().to_query_string()),
        |(id, q)| contact_import_page(id, q),
    );
    page("Import contacts · Dropcheck", data, Some(("/contacts/import", "Import contacts")), move |d| view! { <ImportMapView d=d/> })
}

fn report_box(r: ReportView, id: i64) -> impl IntoView {
    let stat = |label: &'static str, n: usize| view! { <div class="rounded border border-slate-200 bg-white px-3 py-1.5"><div class="text-xs text-slate-500">{label}</div><div class="text-lg font-semibold">{n}</div></div> };
    let title = if r.dry_run { "Preview — nothing is saved yet" } else { "Imported" };
    view! {
        <section id=if r.dry_run { "preview" } else { "report" } class="mb-4 rounded-lg border border-slate-200 bg-slate-50 p-4">
            <h2 class="mb-2 font-semibold">{title}</h2>
            <div class="mb-3 flex flex-wrap gap-2 text-sm">
                {stat("Rows", r.rows)}{stat(if r.dry_run { "Would create" } else { "Created" }, r.created)}
                {stat(if r.dry_run { "Would update" } else { "Updated" }, r.updated)}{stat("Unchanged", r.unchanged)}
                {stat("Skipped (already contacts)", r.skipped)}{stat("Rejected", r.rejected)}
            </div>
            {(!r.dry_run && r.rejected > 0).then(|| view! {
                <a id="rejected-download" rel="external" download="rejected-rows.csv" class="mb-2 inline-block text-sm text-blue-700 underline" href=format!("/contacts/import/{id}/rejected.csv")>"Download the rejected rows (CSV with the reasons)"</a>
            })}
            {(!r.rejected_rows.is_empty()).then(|| view! {
                <table class="text-sm" id="rejected-rows">
                    <thead class="text-left text-xs uppercase text-slate-500"><tr><th class="pr-4">"Line"</th><th>"Why"</th></tr></thead>
                    <tbody>{r.rejected_rows.into_iter().map(|(line, why)| view! { <tr><td class="pr-4 font-mono">{line}</td><td class="text-red-800">{why}</td></tr> }).collect_view()}</tbody>
                </table>
            })}
        </section>
    }
}

#[component]
fn ImportMapView(d: ImportPageData) -> impl IntoView {
    let id = d.id;
    let done = d.report.is_some();
    view! {
        <Layout me=d.me.clone()>
            <a href="/contacts/import" class="text-sm text-blue-700 underline">"← Another file"</a>
            <h1 class="mb-1 mt-2 text-2xl font-semibold">{format!("Import {}", d.file_name)}</h1>
            {d.report.clone().map(|r| view! { {report_box(r, id)} <a href="/contacts" class="text-sm text-blue-700 underline">"See the contacts"</a> })}
            {d.preview.clone().map(|p| match p {
                Ok(r) => report_box(r, id).into_any(),
                Err(e) => view! { <div role="alert" id="form-error" class="mb-4 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{e}</div> }.into_any(),
            })}
            {(!done).then(|| view! {
                <form method="get" action=format!("/contacts/import/{id}") id="mapping-form" class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                    <input type="hidden" name="preview" value="1"/>
                    <h2 class="mb-2 font-semibold">"What each column holds"</h2>
                    <table class="mb-4 text-sm">
                        <thead class="text-left text-xs uppercase text-slate-500"><tr><th class="pr-4">"Column"</th><th class="pr-4">"First rows"</th><th>"Is"</th></tr></thead>
                        <tbody>
                            {d.headers.iter().enumerate().map(|(i, h)| {
                                let samples: Vec<String> = d.samples.iter().filter_map(|r| r.get(i).cloned()).filter(|c| !c.is_empty()).collect();
                                let target = d.targets.get(i).cloned().unwrap_or_default();
                                view! {
                                    <tr>
                                        <td class="py-1 pr-4 font-medium">{h.clone()}</td>
                                        <td class="py-1 pr-4 text-slate-500">{samples.join(" · ")}</td>
                                        <td class="py-1">
                                            <select name=format!("c{i}") class=select_class() aria-label=format!("Column {h}")>
                                                {d.choices.iter().map(|(v, l)| view! { <option value=v.clone() selected=*v == target>{l.clone()}</option> }).collect_view()}
                                            </select>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <div class="mb-4 flex flex-wrap items-end gap-4 text-sm">
                        <label>"Numbers without a country code are in"
                            <input name="region" value=d.region.clone() maxlength="2" size="3" class=format!("{} ml-1 w-16 uppercase", select_class())/>
                        </label>
                        <label>"Numbers that are contacts already"
                            <select name="mode" class=format!("{} ml-1", select_class())>
                                {[("skip", "leave them as they are"), ("fill_blanks", "fill in what they lack"), ("overwrite", "overwrite with the file")]
                                    .into_iter().map(|(v, l)| view! { <option value=v selected=d.mode == v>{l}</option> }).collect_view()}
                            </select>
                        </label>
                        <label class="flex items-center gap-1"><input type="checkbox" name="fire" checked=d.fire/>"Run automations for these contacts"</label>
                    </div>
                    <div class="flex gap-3">
                        <button type="submit" id="preview-button" class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-semibold hover:bg-slate-100">"Preview"</button>
                        <button type="submit" id="import-button" formmethod="post" formaction=format!("/contacts/import/{id}/run") class=primary_button()>"Import"</button>
                    </div>
                </form>
            })}
        </Layout>
    }
}
