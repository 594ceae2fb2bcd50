//! Projects and their checklists (`/settings/projects`, admins).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub drop_pattern: String,
    /// One step per line: `Name | what the photo must show`.
    pub steps_text: String,
    pub step_count: usize,
    /// Drops wait for the contractor's `DONE` instead of completing themselves.
    pub wait_for_done: bool,
    /// "Created 2026-12-01 10:00 by API key Bridge", or by whom it is known.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectsPageData {
    pub me: Me,
    pub projects: Vec<ProjectView>,
}

#[server(prefix = "/rpc", endpoint = "projects_data")]
pub async fn projects_data() -> Result<ProjectsPageData, AppError> {
    use crate::ssr::*;
    let (st, me) = require_admin().await?;
    let mut out = vec![];
    for p in st.store.projects().await.map_err(fail)? {
        let steps = st.store.checklist(p.project_id).await.map_err(fail)?;
        out.push(ProjectView {
            id: p.project_id.get(),
            name: p.name,
            drop_pattern: p.drop_pattern,
            step_count: steps.len(),
            wait_for_done: p.wait_for_done,
            created: match p.created_by.as_str() {
                "" => format!("Created {}", dropcheck_core::fmt_time(p.created_at)),
                "system" => format!("Created {} at the first start", dropcheck_core::fmt_time(p.created_at)),
                by => format!("Created {} by {by}", dropcheck_core::fmt_time(p.created_at)),
            },
            steps_text: steps
                .iter()
                .map(|s| if s.description.is_empty() { s.name.clone() } else { format!("{} | {}", s.name, s.description) })
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(ProjectsPageData { me: me_of(&me), projects: out })
}

#[server(prefix = "/rpc", endpoint = "create_project")]
pub async fn create_project(name: String, drop_pattern: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let pattern = if drop_pattern.trim().is_empty() {
        dropcheck_core::domain::DEFAULT_DROP_PATTERN.to_string()
    } else {
        drop_pattern.trim().to_string()
    };
    st.store.create_project_by(&name, &pattern, &user.email).await.map_err(fail)?;
    Ok(())
}

/// Saves a project's drop pattern, checklist (one step per line, `Name | description`) and
/// whether its drops wait for `DONE` (a checkbox: absent when unticked).
#[server(prefix = "/rpc", endpoint = "save_project")]
pub async fn save_project(project_id: String, drop_pattern: String, steps: String, wait_for_done: Option<String>) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, _) = require_admin().await?;
    let id: i64 = project_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a project"))?;
    let steps: Vec<(String, String)> = steps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('|') {
            Some((n, d)) => (n.trim().to_string(), d.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    st.store.update_project(ProjectId(id), drop_pattern.trim(), &steps).await.map_err(fail)?;
    st.store.set_wait_for_done(ProjectId(id), wait_for_done.is_some()).await.map_err(fail)
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let save = ServerAction::<SaveProject>::new();
    let create = ServerAction::<CreateProject>::new();
    let data = Resource::new(move || (save.version().get(), create.version().get()), |_| projects_data());
    page("Projects · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me>
                <h1 class="mb-4 text-2xl font-semibold">"Projects and checklists"</h1>
                {action_error(save)}
                {action_error(create)}
                <div class="space-y-6">
                    {d.projects.into_iter().map(|p| view! {
                        <section class="project rounded-lg border border-slate-200 bg-white p-5 shadow-sm" data-project=p.name.clone()>
                            <h2 class="text-lg font-semibold">{p.name.clone()}</h2>
                            <p class="text-sm text-slate-500">{format!("{} steps · {}", p.step_count, p.created)}</p>
                            <ActionForm action=save>
                                <input type="hidden" name="project_id" value=p.id.to_string()/>
                                <label class="mt-3 block text-sm font-medium">"Drop number pattern (regular expression)"
                                    <input name="drop_pattern" value=p.drop_pattern.clone() class=format!("{} font-mono", field())/>
                                </label>
                                <label class="mt-3 block text-sm font-medium">"Checklist: one step per line, " <code>"Name | what the photo must show"</code>
                                    <textarea name="steps" rows="13" class=format!("{} font-mono", field())>{p.steps_text.clone()}</textarea>
                                </label>
                                <label class="mt-3 flex items-start gap-2 text-sm">
                                    <input type="checkbox" name="wait_for_done" value="on" checked=p.wait_for_done class="mt-0.5"/>
                                    <span>
                                        <span class="font-medium">"Wait for DONE"</span>
                                        <span class="block text-slate-500">"Off: a drop goes to review by itself once every step has a photo. On: it stays Collecting until the contractor sends DR… DONE."</span>
                                    </span>
                                </label>
                                <button type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save project"</button>
                            </ActionForm>
                        </section>
                    }).collect_view()}
                    <section class="rounded-lg border border-dashed border-slate-300 bg-white p-5">
                        <h2 class="text-lg font-semibold">"New project"</h2>
                        <p class="text-sm text-slate-500">"Starts with the default 12-step checklist."</p>
                        <ActionForm action=create>
                            <div class="mt-3 grid gap-3 md:grid-cols-3">
                                <label class="text-sm font-medium">"Name" <input name="name" required class=field()/></label>
                                <label class="text-sm font-medium">"Drop number pattern" <input name="drop_pattern" placeholder="^DR[0-9]{8}$" class=format!("{} font-mono", field())/></label>
                                <div class="flex items-end"><button type="submit" class="rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Create project"</button></div>
                            </div>
                        </ActionForm>
                    </section>
                </div>
            </Layout>
        }
    })
}
