//! A project's vision-check settings per step (`/settings/projects`, admins): the question put
//! to the vision model (else one built from the step's name and description), the values to
//! read off the photo (a meter reading, the ONT's serial, the speeds of a speed test), and
//! whether an answer suggesting a retake goes back to the contractor at once (off by default).
//! They apply while a vision model is configured under Settings → Integrations.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepVisionView {
    pub step: i64,
    pub name: String,
    pub prompt: String,
    /// "Meter reading, ONT serial"
    pub values: String,
    pub auto_retake: bool,
}

/// Saves one step's vision settings; `values` is a comma-separated list of labels.
#[server(prefix = "/rpc", endpoint = "save_step_vision")]
pub async fn save_step_vision(
    project_id: String,
    step: String,
    prompt: String,
    values: String,
    auto_retake: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::store::StepVision;
    let (st, _) = require_admin().await?;
    let id: i64 = project_id.trim().parse().map_err(|_| refuse("invalid_id", "not a project"))?;
    let step: i64 = step.trim().parse().map_err(|_| refuse("invalid_step", "not a step number"))?;
    let prompt = Some(prompt.trim().to_string()).filter(|p| !p.is_empty());
    let values = values.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect();
    let v = StepVision { step, prompt, values, auto_retake: auto_retake.is_some() };
    st.store.set_step_vision(ProjectId(id), &v).await.map_err(fail)
}

#[component]
pub fn StepVisionSettings(project_id: i64, steps: Vec<StepVisionView>, save: ServerAction<SaveStepVision>) -> impl IntoView {
    view! {
        <details class="vision-steps mt-4 border-t border-slate-100 pt-3">
            <summary class="cursor-pointer select-none text-sm font-medium">"Vision check: questions and values per step"</summary>
            <p class="mt-2 text-sm text-slate-500">
                "Used while a vision model is set under Settings → Integrations. Leave a question blank to ask whether the photo shows what the step's description says."
            </p>
            <div class="mt-2 space-y-2">
                {steps.into_iter().map(|s| view! {
                    <ActionForm action=save>
                        <input type="hidden" name="project_id" value=project_id.to_string()/>
                        <input type="hidden" name="step" value=s.step.to_string()/>
                        <div class="step-vision grid items-end gap-2 rounded-md border border-slate-100 p-2 md:grid-cols-[10rem_1fr_14rem_auto_auto]" data-step=s.step.to_string()>
                            <span class="text-sm font-medium">{format!("{}. {}", s.step, s.name)}</span>
                            <label class="text-xs font-medium text-slate-600">"Question (optional)"
                                <input name="prompt" value=s.prompt.clone() maxlength="1000" class=field()/>
                            </label>
                            <label class="text-xs font-medium text-slate-600">"Values to read, comma-separated"
                                <input name="values" value=s.values.clone() placeholder="e.g. Meter reading" class=field()/>
                            </label>
                            <label class="flex items-center gap-1 text-xs" title="An answer suggesting a retake is sent to the contractor at once">
                                <input type="checkbox" name="auto_retake" value="on" checked=s.auto_retake/>"Send back automatically"
                            </label>
                            <button type="submit" class="rounded-md border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-50">"Save"</button>
                        </div>
                    </ActionForm>
                }).collect_view()}
            </div>
        </details>
    }
}
