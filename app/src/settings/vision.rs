//! Settings → Integrations, the vision model (admins): the OpenAI-compatible endpoint, the
//! model and its key that check each photo against its step (off while none is set). Saved
//! through the same settings as the provider's (a value from the environment wins; the key is
//! stored encrypted and shown only as "set · …abcd").

use leptos::prelude::*;

use super::fields::{field_row, FieldView};
use crate::ui::*;

/// Saves the vision model's settings (admins); a blank key keeps the stored one, a blank
/// endpoint and model turn the check off.
#[server(prefix = "/rpc", endpoint = "save_vision")]
pub async fn save_vision(
    dropcheck_vision_url: Option<String>,
    dropcheck_vision_model: Option<String>,
    dropcheck_vision_api_key: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::integrations::{VISION_API_KEY, VISION_MODEL, VISION_URL};
    let (st, user) = require_admin().await?;
    // A box left blank may arrive as no field at all: a blank endpoint or model clears it
    // (turning the check off), a blank key keeps the stored one.
    let mut values = vec![
        (VISION_URL.to_string(), dropcheck_vision_url.unwrap_or_default()),
        (VISION_MODEL.to_string(), dropcheck_vision_model.unwrap_or_default()),
    ];
    values.extend(dropcheck_vision_api_key.map(|k| (VISION_API_KEY.to_string(), k)));
    st.settings.integrations.save(None, values, &user).await.map_err(fail)
}

#[component]
pub fn VisionSection(fields: Vec<FieldView>, save: ServerAction<SaveVision>) -> impl IntoView {
    let fields: Vec<FieldView> = fields.into_iter().filter(|f| f.provider == "vision").collect();
    let set = |name: &str| fields.iter().any(|f| f.name == name && !f.shown.is_empty());
    let on = set("DROPCHECK_VISION_URL") && set("DROPCHECK_VISION_MODEL");
    let model = fields.iter().find(|f| f.name == "DROPCHECK_VISION_MODEL").map(|f| f.shown.clone()).unwrap_or_default();
    let saved = move || matches!(save.value().get(), Some(Ok(())));
    // Every setting from the server's environment: nothing to save here.
    let fixed = fields.iter().all(|f| f.source == "environment" || f.env_only);
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="vision">
            <h2 class="text-lg font-semibold">"Vision check (optional)"</h2>
            <p class="mt-1 text-sm" id="vision-state" data-on=on.to_string()>
                {if on {
                    format!("On: every photo is also shown to {model}, and its answer appears on the drop page as a suggestion.")
                } else {
                    "Off: set an endpoint and a model to have each photo checked against its step by a vision model.".to_string()
                }}
            </p>
            <p class="mt-1 text-xs text-slate-500">
                "Any OpenAI-compatible chat-completions API (OpenAI, Ollama, vLLM). The check runs after the contractor's reply, never before it; per-step questions and values to read are under Settings → Projects."
            </p>
            {action_error(save)}
            <Show when=saved>
                <p id="vision-saved" role="status" class="my-3 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">"Saved. Photos filed from now on are checked with these settings."</p>
            </Show>
            <ActionForm action=save>
                <div class="grid gap-x-6 lg:grid-cols-3">{fields.clone().into_iter().map(field_row).collect_view()}</div>
                {if fixed {
                    view! { <p class="mt-3 text-xs text-slate-500">"Set in the server's environment; change them there."</p> }.into_any()
                } else {
                    view! { <button id="save-vision" type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save vision settings"</button> }.into_any()
                }}
            </ActionForm>
        </section>
    }
}
