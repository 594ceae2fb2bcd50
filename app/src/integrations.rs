//! `/settings/integrations`: every signed-in user links their WhatsApp number here (SPEC
//! 6.4); admins also see the active provider and the webhook addresses to paste into the
//! provider's console.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::err_text;
use crate::model::Me;
use crate::pages::{ErrorBox, Layout};
use crate::settings::field;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub phone: String,
    pub verified: bool,
    pub since: String,
    pub locked: bool,
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationsPageData {
    pub me: Me,
    pub provider: String,
    pub webhooks: Vec<(String, String)>,
    pub link: Option<LinkView>,
    /// A code just issued: (phone, code), shown this once.
    pub new_code: Option<(String, String)>,
}

#[cfg(feature = "ssr")]
const SESSION_NEW_CODE: &str = "link_code";

#[server(prefix = "/rpc", endpoint = "integrations_data")]
pub async fn integrations_data() -> Result<IntegrationsPageData, ServerFnError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
    let new_code: Option<(String, String)> = session.remove(SESSION_NEW_CODE).await.map_err(|e| ServerFnError::new(e.to_string()))?;
    let now = dropcheck_core::now_ms();
    let link = st.store.phone_link(user.user_id).await.map_err(fail)?.map(|l| LinkView {
        verified: l.is_verified(),
        locked: l.is_locked(),
        expired: !l.is_verified() && l.code_expires_at.is_none_or(|e| e < now),
        since: dropcheck_core::fmt_time(l.verified_at.unwrap_or(l.created_at)),
        phone: l.phone,
    });
    let base = st.settings.public_url.trim_end_matches('/').to_string();
    let webhooks = match st.settings.provider.as_str() {
        "twilio" => vec![
            ("Twilio: “A message comes in”".to_string(), format!("{base}/webhooks/twilio")),
            ("Twilio: status callback".to_string(), format!("{base}/webhooks/twilio/status")),
        ],
        "meta" => vec![("Meta: callback URL (GET verify, POST events)".to_string(), format!("{base}/webhooks/meta"))],
        _ => vec![("Sandbox: the simulator posts to".to_string(), format!("{base}/webhooks/twilio"))],
    };
    let me = crate::api::me_of(&user);
    Ok(IntegrationsPageData {
        provider: if me.admin { st.settings.provider.clone() } else { String::new() },
        webhooks: if me.admin { webhooks } else { vec![] },
        me,
        link,
        new_code,
    })
}

#[server(prefix = "/rpc", endpoint = "start_link")]
pub async fn start_link(phone: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let phone = dropcheck_core::domain::Phone::parse(&phone).map_err(|e| ServerFnError::new(e.message))?;
    let code = st.store.start_phone_link(user.user_id, &phone, dropcheck_core::now_ms()).await.map_err(fail)?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
    session.insert(SESSION_NEW_CODE, (code.phone.as_str().to_string(), code.code)).await.map_err(|e| ServerFnError::new(e.to_string()))?;
    tracing::info!(user_id = user.user_id, "phone link started");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "unlink")]
pub async fn unlink() -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    st.store.unlink_phone(user.user_id, None).await.map_err(fail)?;
    tracing::info!(user_id = user.user_id, "phone unlinked");
    Ok(())
}

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let start = ServerAction::<StartLink>::new();
    let remove = ServerAction::<Unlink>::new();
    let data = Resource::new(move || (start.version().get(), remove.version().get()), |_| integrations_data());
    view! {
        <Title text="Integrations · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Ok(d) => d,
                    Err(e) => return view! { <main class="p-8"><ErrorBox msg=err_text(&e)/></main> }.into_any(),
                };
                view! {
                    <Layout me=d.me.clone()>
                        <h1 class="mb-4 text-2xl font-semibold">"Integrations"</h1>
                        {move || start.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox msg=err_text(&e)/> })}
                        {move || remove.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox msg=err_text(&e)/> })}
                        <section class="rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="phone-link">
                            <h2 class="text-lg font-semibold">"Your WhatsApp number"</h2>
                            {match d.link.clone() {
                                Some(l) if l.verified => view! {
                                    <p class="mt-2 text-sm" id="link-status" data-state="verified">
                                        <span class="font-mono">{l.phone.clone()}</span>
                                        <span class="ml-2 rounded bg-emerald-100 px-2 py-0.5 text-xs font-semibold text-emerald-800">"✓ verified"</span>
                                        <span class="ml-2 text-slate-500">{format!("since {}", l.since)}</span>
                                    </p>
                                    <ActionForm action=remove>
                                        <button id="unlink" type="submit" class="mt-3 rounded border border-red-300 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50">"Unlink"</button>
                                    </ActionForm>
                                }.into_any(),
                                other => view! {
                                    {other.map(|l| view! {
                                        <p class="mt-2 text-sm text-slate-600" id="link-status" data-state="pending">
                                            <span class="font-mono">{l.phone.clone()}</span>
                                            {if l.locked { " — locked after too many wrong codes; start again." }
                                             else if l.expired { " — the code has expired; start again." }
                                             else { " — waiting for the VERIFY message." }}
                                        </p>
                                    })}
                                    {d.new_code.clone().map(|(phone, code)| view! {
                                        <div id="link-code" class="mt-3 rounded-lg border border-amber-300 bg-amber-50 p-4 text-sm">
                                            <p>"From WhatsApp on " <span class="font-mono">{phone}</span> ", send this to the Dropcheck number within 10 minutes:"</p>
                                            <p class="mt-2 font-mono text-2xl font-bold tracking-widest" id="link-code-value">{format!("VERIFY {code}")}</p>
                                            <p class="mt-2 text-slate-600">"Then reload this page. The code works once and is not shown again."</p>
                                        </div>
                                    })}
                                    <ActionForm action=start>
                                        <label class="mt-3 block max-w-sm text-sm font-medium">"Number (international format, e.g. +27 64 041 2391)"
                                            <input id="link-phone" name="phone" type="tel" required autocomplete="tel" class=field()/>
                                        </label>
                                        <button id="start-link" type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Get a code"</button>
                                    </ActionForm>
                                }.into_any(),
                            }}
                        </section>
                        {d.me.admin.then(|| view! {
                            <section class="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="provider">
                                <h2 class="text-lg font-semibold">"WhatsApp provider"</h2>
                                <p class="mt-1 text-sm">"Active: " <strong id="active-provider">{d.provider.clone()}</strong>
                                    <span class="text-slate-500">" (set by " <code>"DROPCHECK_PROVIDER"</code> " and the provider's variables; see the README)"</span></p>
                                <p class="mt-3 text-sm font-medium">"Webhook addresses for the provider's console"</p>
                                <ul class="mt-1 space-y-1 text-sm">
                                    {d.webhooks.clone().into_iter().map(|(what, url)| view! {
                                        <li><span class="text-slate-600">{what}": "</span><code class="select-all rounded bg-slate-100 px-1.5 py-0.5">{url}</code></li>
                                    }).collect_view()}
                                </ul>
                            </section>
                        })}
                    </Layout>
                }.into_any()
            })}
        </Transition>
    }
}
