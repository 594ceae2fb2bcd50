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
    /// The usable-photo checks' thresholds: (form field, label, value).
    pub thresholds: Vec<(String, String, String)>,
    /// Whether they are the project's own (else the defaults).
    pub thresholds_own: bool,
    /// "9, 10": steps whose photo is a screenshot.
    pub screenshot_steps: String,
    /// The contractor is asked again for a photo reused from another drop.
    pub ask_about_reuse: bool,
    /// The vision check's question, values and send-back per step.
    pub vision: Vec<super::project_vision::StepVisionView>,
}

/// The threshold fields of the photo-checks form: name, label. Shares are entered in percent.
#[cfg(feature = "ssr")]
const THRESHOLD_FIELDS: &[(&str, &str)] = &[
    ("small_flag", "Too small: flag under (long side, px)"),
    ("small_warn", "Too small: warn under (px)"),
    ("dark_flag", "Too dark: flag under (brightness 0–255)"),
    ("dark_warn", "Too dark: warn under"),
    ("dark_highlight", "Too dark: … when its brightest 1 % is under"),
    ("overexposed_flag", "Over-exposed: flag from (% blown out)"),
    ("overexposed_warn", "Over-exposed: warn from (%)"),
    ("blur_flag", "Blurred: flag under (sharpness)"),
    ("blur_tile_flag", "Blurred: … when its sharpest ninth is under"),
    ("blur_warn", "Blurred: warn under"),
    ("featureless_flag", "Featureless: flag under (detail 0–100)"),
    ("featureless_warn", "Featureless: warn under"),
];

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
        let checks = st.store.photo_check_settings(p.project_id).await.map_err(fail)?;
        let vision = st.store.step_vision(p.project_id).await.map_err(fail)?;
        let t = checks.thresholds;
        let values = [
            f64::from(t.small_flag),
            f64::from(t.small_warn),
            t.dark_flag,
            t.dark_warn,
            t.dark_highlight,
            t.overexposed_flag * 100.0,
            t.overexposed_warn * 100.0,
            t.blur_flag,
            t.blur_tile_flag,
            t.blur_warn,
            t.featureless_flag,
            t.featureless_warn,
        ];
        out.push(ProjectView {
            thresholds: THRESHOLD_FIELDS.iter().zip(values).map(|((n, l), v)| (n.to_string(), l.to_string(), short(v))).collect(),
            thresholds_own: checks.overridden,
            ask_about_reuse: t.ask_about_reuse,
            screenshot_steps: checks.screenshot_steps.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
            vision: vision
                .into_iter()
                .zip(&steps)
                .map(|(v, s)| super::project_vision::StepVisionView {
                    step: v.step,
                    name: s.name.clone(),
                    prompt: v.prompt.unwrap_or_default(),
                    values: v.values.join(", "),
                    auto_retake: v.auto_retake,
                })
                .collect(),
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

/// A threshold as typed: at most four decimals, no trailing zeros.
#[cfg(feature = "ssr")]
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
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

/// Saves a project's photo-check thresholds (the defaults when every value is the default's)
/// and its screenshot steps ("9, 10").
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/rpc", endpoint = "save_photo_checks")]
pub async fn save_photo_checks(
    project_id: String,
    small_flag: String,
    small_warn: String,
    dark_flag: String,
    dark_warn: String,
    dark_highlight: String,
    overexposed_flag: String,
    overexposed_warn: String,
    blur_flag: String,
    blur_tile_flag: String,
    blur_warn: String,
    featureless_flag: String,
    featureless_warn: String,
    screenshot_steps: String,
    ask_about_reuse: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::photo_checks::Thresholds;
    let (st, _) = require_admin().await?;
    let id: i64 = project_id.trim().parse().map_err(|_| refuse("invalid_id", "not a project"))?;
    let num = |name: &str, v: &str| -> Result<f64, AppError> {
        v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| {
            let label = THRESHOLD_FIELDS.iter().find(|(n, _)| *n == name).map_or(name, |(_, l)| l);
            refuse("invalid_thresholds", &format!("{label}: '{}' is not a number of 0 or more", v.trim()))
        })
    };
    let px = |name: &str, v: &str| -> Result<u32, AppError> { Ok(num(name, v)?.round().min(f64::from(u32::MAX)) as u32) };
    let t = Thresholds {
        small_flag: px("small_flag", &small_flag)?,
        small_warn: px("small_warn", &small_warn)?,
        dark_flag: num("dark_flag", &dark_flag)?,
        dark_warn: num("dark_warn", &dark_warn)?,
        dark_highlight: num("dark_highlight", &dark_highlight)?,
        overexposed_flag: num("overexposed_flag", &overexposed_flag)? / 100.0,
        overexposed_warn: num("overexposed_warn", &overexposed_warn)? / 100.0,
        blur_flag: num("blur_flag", &blur_flag)?,
        blur_tile_flag: num("blur_tile_flag", &blur_tile_flag)?,
        blur_warn: num("blur_warn", &blur_warn)?,
        featureless_flag: num("featureless_flag", &featureless_flag)?,
        featureless_warn: num("featureless_warn", &featureless_warn)?,
        ask_about_reuse: ask_about_reuse.is_some(),
    };
    let mut steps = vec![];
    for part in screenshot_steps.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        steps.push(part.parse::<i64>().map_err(|_| refuse("invalid_step", &format!("'{part}' is not a step number")))?);
    }
    let own = (t != Thresholds::default()).then_some(&t);
    st.store.set_photo_check_settings(ProjectId(id), own, &steps).await.map_err(fail)
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let save = ServerAction::<SaveProject>::new();
    let create = ServerAction::<CreateProject>::new();
    let checks = ServerAction::<SavePhotoChecks>::new();
    let vision = ServerAction::<super::project_vision::SaveStepVision>::new();
    let data = Resource::new(
        move || (save.version().get(), create.version().get(), checks.version().get(), vision.version().get()),
        |_| projects_data(),
    );
    page("Projects · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me>
                <h1 class="mb-4 text-2xl font-semibold">"Projects and checklists"</h1>
                {action_error(save)}
                {action_error(create)}
                {action_error(checks)}
                {action_error(vision)}
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
                            <details class="photo-checks mt-4 border-t border-slate-100 pt-3">
                                <summary class="cursor-pointer select-none text-sm font-medium">
                                    {if p.thresholds_own { "Photo checks: this project's thresholds" } else { "Photo checks: the default thresholds" }}
                                </summary>
                                <p class="mt-2 text-sm text-slate-500">"A photo is checked when it arrives; a flagged one is filed and the contractor is asked to take it again. Changes apply to photos from now on."</p>
                                <ActionForm action=checks>
                                    <input type="hidden" name="project_id" value=p.id.to_string()/>
                                    <div class="mt-2 grid gap-3 md:grid-cols-3">
                                        {p.thresholds.iter().map(|(name, label, value)| view! {
                                            <label class="text-xs font-medium text-slate-600">{label.clone()}
                                                <input name=name.clone() value=value.clone() inputmode="decimal" required class=field()/>
                                            </label>
                                        }).collect_view()}
                                    </div>
                                    <label class="mt-3 block text-sm font-medium">"Screenshot steps (focus and exposure are not checked), e.g. 9, 10"
                                        <input name="screenshot_steps" value=p.screenshot_steps.clone() class=field()/>
                                    </label>
                                    <label class="mt-3 flex items-start gap-2 text-sm">
                                        <input type="checkbox" name="ask_about_reuse" value="on" checked=p.ask_about_reuse class="mt-0.5"/>
                                        <span>
                                            <span class="font-medium">"Ask the contractor about reused photos"</span>
                                            <span class="block text-slate-500">"Off: a photo already on another drop is flagged for the reviewer only. On: the acknowledgment also asks the contractor for a new photo."</span>
                                        </span>
                                    </label>
                                    <button type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save photo checks"</button>
                                </ActionForm>
                            </details>
                            <super::project_vision::StepVisionSettings project_id=p.id steps=p.vision.clone() save=vision/>
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
