//! Settings → Integrations, MyOperator (admins): the account the notifications API's messages
//! are sent from, as the predecessor notification service did. Send-only: MyOperator documents
//! no inbound webhook, so contractors' messages still need Twilio, Meta or the sandbox above.
//! Saved through the same settings as the provider's (a value from the environment wins; the
//! API key is stored encrypted and shown only as "set · …abcd").

use leptos::prelude::*;

use super::fields::{field_row, FieldView};
use crate::ui::*;

/// Saves MyOperator's settings (admins); a blank key keeps the stored one; company, number and
/// account left blank turn it off.
#[server(prefix = "/rpc", endpoint = "save_myoperator")]
pub async fn save_myoperator(
    myoperator_api_key: Option<String>,
    myoperator_company_id: Option<String>,
    myoperator_phone_number_id: Option<String>,
    myoperator_waba_id: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::integrations::{MYOPERATOR_API_KEY, MYOPERATOR_COMPANY_ID, MYOPERATOR_PHONE_NUMBER_ID, MYOPERATOR_WABA_ID};
    let (st, user) = require_admin().await?;
    let mut values = vec![
        (MYOPERATOR_COMPANY_ID.to_string(), myoperator_company_id.unwrap_or_default()),
        (MYOPERATOR_PHONE_NUMBER_ID.to_string(), myoperator_phone_number_id.unwrap_or_default()),
        (MYOPERATOR_WABA_ID.to_string(), myoperator_waba_id.unwrap_or_default()),
    ];
    values.extend(myoperator_api_key.map(|k| (MYOPERATOR_API_KEY.to_string(), k)));
    st.settings.integrations.save(None, values, &user).await.map_err(fail)
}

#[component]
pub fn MyOperatorSection(fields: Vec<FieldView>, active: String, save: ServerAction<SaveMyoperator>) -> impl IntoView {
    let fields: Vec<FieldView> = fields.into_iter().filter(|f| f.provider == "myoperator").collect();
    let set = |name: &str| fields.iter().any(|f| f.name == name && !f.shown.is_empty());
    let on = ["MYOPERATOR_API_KEY", "MYOPERATOR_COMPANY_ID", "MYOPERATOR_PHONE_NUMBER_ID", "MYOPERATOR_WABA_ID"].iter().all(|n| set(n));
    let saved = move || matches!(save.value().get(), Some(Ok(())));
    let fixed = fields.iter().all(|f| f.source == "environment" || f.env_only);
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="myoperator">
            <h2 class="text-lg font-semibold">"MyOperator (notifications, send-only)"</h2>
            <p class="mt-1 text-sm" id="myoperator-state" data-on=on.to_string()>
                {if on {
                    format!("On: messages queued through the notifications API (/api/notifications/send-message) go out through MyOperator; everything else — the contractors' conversation, feedback, reminders, broadcasts — through {active}.")
                } else {
                    format!("Off: every message goes out through {active}. Set the four values to send the notifications API's messages through MyOperator, as the previous notification service did.")
                }}
            </p>
            <p class="mt-1 text-xs text-slate-500">
                "MyOperator documents no webhook for incoming messages: contractors' messages and delivery ticks need Twilio, Meta or the sandbox (the provider above). A message sent through MyOperator shows as sent; templates outside the 24-hour window are the Meta templates set on each template."
            </p>
            {action_error(save)}
            <Show when=saved>
                <p id="myoperator-saved" role="status" class="my-3 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">"Saved."</p>
            </Show>
            <ActionForm action=save>
                <div class="grid gap-x-6 lg:grid-cols-3">{fields.clone().into_iter().map(field_row).collect_view()}</div>
                {if fixed {
                    view! { <p class="mt-3 text-xs text-slate-500">"Set in the server's environment; change them there."</p> }.into_any()
                } else {
                    view! { <button id="save-myoperator" type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save MyOperator settings"</button> }.into_any()
                }}
            </ActionForm>
        </section>
    }
}
