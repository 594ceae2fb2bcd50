//! `/settings/integrations`: every signed-in user links their WhatsApp number here; admins also choose the WhatsApp provider and enter its credentials (values from
//! the environment win and are shown as such; secrets are stored encrypted and shown only as
//! "set · …abcd"), see the webhook addresses to paste into the provider's console and when
//! the last webhook arrived, and send a test message. The server implements the provider
//! side ([`crate::ssr::ProviderSettings`]).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::fields::{field_row, FieldView};
use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub phone: String,
    pub verified: bool,
    pub since: String,
    pub locked: bool,
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSeen {
    pub at: String,
    pub ok: bool,
    pub text: String,
}

/// The provider part of the page (admins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderPanel {
    /// The provider in effect now.
    pub active: String,
    /// The provider the settings choose (the same, unless a change is still being applied).
    pub chosen: String,
    /// `DROPCHECK_PROVIDER` is set in the environment: the choice is made there.
    pub chosen_by_env: bool,
    pub fields: Vec<FieldView>,
    pub webhooks: Vec<(String, String)>,
    pub last_webhook: Option<WebhookSeen>,
    /// "2026-12-01 10:02 by ann@example.com"
    pub updated: Option<String>,
    /// The stored settings cannot be read (e.g. the secret key changed).
    pub error: Option<String>,
}

/// What a test send came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSend {
    pub message_id: i64,
    pub phone: String,
    pub provider: String,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationsPageData {
    pub me: Me,
    pub link: Option<LinkView>,
    /// A code just issued: (phone, code), shown this once.
    pub new_code: Option<(String, String)>,
    /// Admins only.
    pub panel: Option<ProviderPanel>,
    /// The last test send, shown once (kept in the session so it shows without JavaScript).
    pub test: Option<TestSend>,
    /// Settings were just saved.
    pub saved: bool,
}

#[cfg(feature = "ssr")]
const SESSION_NEW_CODE: &str = "link_code";
#[cfg(feature = "ssr")]
const SESSION_TEST_SEND: &str = "test_send";
#[cfg(feature = "ssr")]
const SESSION_SAVED: &str = "provider_saved";

#[cfg(feature = "ssr")]
async fn session() -> Result<tower_sessions::Session, AppError> {
    leptos_axum::extract().await.map_err(crate::ssr::session_failed)
}

#[server(prefix = "/rpc", endpoint = "integrations_data")]
pub async fn integrations_data() -> Result<IntegrationsPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let session = session().await?;
    let e = crate::ssr::session_failed;
    let new_code: Option<(String, String)> = session.remove(SESSION_NEW_CODE).await.map_err(e)?;
    let now = dropcheck_core::now_ms();
    let link = st.store.phone_link(user.user_id).await.map_err(fail)?.map(|l| LinkView {
        verified: l.is_verified(),
        locked: l.is_locked(),
        expired: !l.is_verified() && l.code_expires_at.is_none_or(|e| e < now),
        since: dropcheck_core::fmt_time(l.verified_at.unwrap_or(l.created_at)),
        phone: l.phone.to_string(),
    });
    let me = crate::ui::me_of(&user);
    let (panel, test, saved) = if me.admin {
        (
            Some(panel_view(st.settings.integrations.panel().await.map_err(fail)?)),
            session.remove::<TestSend>(SESSION_TEST_SEND).await.map_err(e)?,
            session.remove::<bool>(SESSION_SAVED).await.map_err(e)?.unwrap_or(false),
        )
    } else {
        (None, None, false)
    };
    Ok(IntegrationsPageData { me, link, new_code, panel, test, saved })
}

#[cfg(feature = "ssr")]
fn panel_view(p: dropcheck_core::integrations::ProviderStatus) -> ProviderPanel {
    use dropcheck_core::fmt_time;
    use dropcheck_core::integrations::Source;
    ProviderPanel {
        active: p.active.as_str().to_string(),
        chosen: p.effective.provider.as_str().to_string(),
        chosen_by_env: p.effective.provider_source == Source::Environment,
        fields: p
            .effective
            .fields
            .iter()
            .map(|f| FieldView {
                name: f.field.name.to_string(),
                provider: f.field.section.as_str().to_string(),
                label: f.field.label.to_string(),
                help: f.field.help.to_string(),
                secret: f.field.secret,
                env_only: f.field.env_only,
                source: f.source.as_str().to_string(),
                shown: f.display(),
            })
            .collect(),
        webhooks: p.webhooks,
        last_webhook: p.last_webhook.map(|(at, refused)| match refused {
            Some(why) => WebhookSeen { at: fmt_time(at), ok: false, text: format!("refused: {why}") },
            None => WebhookSeen { at: fmt_time(at), ok: true, text: "signature verified, stored".into() },
        }),
        updated: p.updated.map(|(at, by)| format!("{} by {by}", fmt_time(at))),
        error: p.error,
    }
}

#[cfg(feature = "ssr")]
fn test_send_view(t: dropcheck_core::integrations::TestSendOutcome) -> TestSend {
    let m = t.message;
    let explained = m.error_code.as_deref().and_then(dropcheck_core::providers::explain_error);
    TestSend {
        message_id: m.message_id.get(),
        phone: m.phone.to_string(),
        provider: t.provider.as_str().to_string(),
        status: m.status,
        provider_message_id: m.provider_message_id,
        error: m.error_code.map(|code| {
            let text = m.error_text.unwrap_or_default();
            match explained {
                Some(x) => format!("{code}: {text} — {x}"),
                None => format!("{code}: {text}"),
            }
        }),
    }
}

/// Saves the provider and its settings (admins). Each setting is named after its
/// environment variable, in lower case; a blank secret keeps the stored one.
#[server(prefix = "/rpc", endpoint = "save_provider")]
#[allow(clippy::too_many_arguments)]
pub async fn save_provider(
    provider: Option<String>,
    twilio_account_sid: Option<String>,
    twilio_auth_token: Option<String>,
    twilio_whatsapp_number: Option<String>,
    meta_access_token: Option<String>,
    meta_phone_number_id: Option<String>,
    meta_app_secret: Option<String>,
    meta_verify_token: Option<String>,
    meta_api_version: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let values: Vec<(String, String)> = [
        ("TWILIO_ACCOUNT_SID", twilio_account_sid),
        ("TWILIO_AUTH_TOKEN", twilio_auth_token),
        ("TWILIO_WHATSAPP_NUMBER", twilio_whatsapp_number),
        ("META_ACCESS_TOKEN", meta_access_token),
        ("META_PHONE_NUMBER_ID", meta_phone_number_id),
        ("META_APP_SECRET", meta_app_secret),
        ("META_VERIFY_TOKEN", meta_verify_token),
        ("META_API_VERSION", meta_api_version),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| (name.to_string(), v)))
    .collect();
    st.settings.integrations.save(provider, values, &user).await.map_err(fail)?;
    session().await?.insert(SESSION_SAVED, true).await.map_err(crate::ssr::session_failed)?;
    Ok(())
}

/// Sends a test message through the active provider now (admins).
#[server(prefix = "/rpc", endpoint = "send_test_message")]
pub async fn send_test_message(phone: String) -> Result<TestSend, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let sent = test_send_view(st.settings.integrations.send_test(phone, &user).await.map_err(fail)?);
    session().await?.insert(SESSION_TEST_SEND, sent.clone()).await.map_err(crate::ssr::session_failed)?;
    Ok(sent)
}

#[server(prefix = "/rpc", endpoint = "start_link")]
pub async fn start_link(phone: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let phone = dropcheck_core::domain::Phone::parse(&phone).map_err(|e| fail(e.into()))?;
    let code = st.store.start_phone_link(user.user_id, &phone, dropcheck_core::now_ms()).await.map_err(fail)?;
    session().await?.insert(SESSION_NEW_CODE, (code.phone.as_str().to_string(), code.code)).await.map_err(crate::ssr::session_failed)?;
    tracing::info!(user_id = user.user_id.get(), "phone link started");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "unlink")]
pub async fn unlink() -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    st.store.unlink_phone(user.user_id, None).await.map_err(fail)?;
    tracing::info!(user_id = user.user_id.get(), "phone unlinked");
    Ok(())
}

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let start = ServerAction::<StartLink>::new();
    let remove = ServerAction::<Unlink>::new();
    let save = ServerAction::<SaveProvider>::new();
    let test = ServerAction::<SendTestMessage>::new();
    let (vision, myop) = (ServerAction::<super::vision::SaveVision>::new(), ServerAction::<super::myoperator::SaveMyoperator>::new());
    // After a successful save (with JavaScript) the form is reset to what the page then shows:
    // the page is rebuilt in place, which updates the inputs' default values but would leave
    // what the admin typed (a secret, say) in the boxes. After a refused save nothing is
    // reset, so the admin can correct what they typed.
    let provider_form = NodeRef::<leptos::html::Form>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(()))) {
            if let Some(form) = provider_form.get_untracked() {
                form.reset();
            }
        }
    });
    let data = Resource::new(
        move || {
            (
                start.version().get(),
                remove.version().get(),
                save.version().get(),
                test.version().get(),
                vision.version().get(),
                myop.version().get(),
            )
        },
        |_| integrations_data(),
    );
    page("Integrations · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me.clone()>
                <h1 class="mb-4 text-2xl font-semibold">"Integrations"</h1>
                {action_error(start)}
                {action_error(remove)}
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
                {d.panel.clone().map(|p| view! { <ProviderSection p=p.clone() test_result=d.test.clone() saved=d.saved save=save test=test form=provider_form/>
                    <super::vision::VisionSection fields=p.fields.clone() save=vision/>
                    <super::myoperator::MyOperatorSection fields=p.fields active=p.active.clone() save=myop/> })}
            </Layout>
        }
    })
}

#[component]
fn ProviderSection(
    p: ProviderPanel,
    test_result: Option<TestSend>,
    saved: bool,
    save: ServerAction<SaveProvider>,
    test: ServerAction<SendTestMessage>,
    form: NodeRef<leptos::html::Form>,
) -> impl IntoView {
    let choices = [
        ("sandbox", "Sandbox", "the built-in simulator (/sandbox); nothing reaches a real phone"),
        ("twilio", "Twilio", "WhatsApp through Twilio's Messaging API"),
        ("meta", "Meta WhatsApp Cloud API", "WhatsApp through Meta's Graph API"),
    ];
    let fields_of = |provider: &str| p.fields.iter().filter(|f| f.provider == provider).cloned().map(field_row).collect_view();
    let (twilio_fields, meta_fields) = (fields_of("twilio"), fields_of("meta"));
    let chosen_by_env = p.chosen_by_env;
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm" id="provider">
            <h2 class="text-lg font-semibold">"WhatsApp provider"</h2>
            <p class="mt-1 text-sm">"Active: " <strong id="active-provider">{p.active.clone()}</strong>
                {p.updated.clone().map(|u| view! { <span class="ml-2 text-slate-500">{format!("(settings saved {u})")}</span> })}
            </p>
            {p.error.clone().map(|m| view! { <ErrorBox msg=m/> })}
            {action_error(save)}
            {saved.then(|| view! { <p id="provider-saved" role="status" class="my-3 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">"Saved. The provider and its settings are in effect now."</p> })}
            <ActionForm action=save node_ref=form>
                <fieldset class="mt-3" disabled=chosen_by_env>
                    <legend class="text-sm font-medium">"Provider"
                        {chosen_by_env.then(|| view! { <span class="ml-2 font-normal text-slate-500">"(chosen by DROPCHECK_PROVIDER in the server's environment)"</span> })}
                    </legend>
                    <div class="mt-2 grid gap-2 sm:grid-cols-3">
                        {choices.into_iter().map(|(value, name, what)| view! {
                            <label class="flex cursor-pointer gap-2 rounded-md border border-slate-200 p-3 text-sm has-[:checked]:border-blue-500 has-[:checked]:bg-blue-50">
                                <input type="radio" name="provider" value=value id=format!("provider-{value}") checked=p.chosen == value class="mt-0.5"/>
                                <span><span class="font-semibold">{name}</span><span class="block text-xs text-slate-500">{what}</span></span>
                            </label>
                        }).collect_view()}
                    </div>
                </fieldset>
                <div class="mt-4 grid gap-6 lg:grid-cols-2">
                    <fieldset id="twilio-settings" class="rounded-md border border-slate-200 p-4">
                        <legend class="px-1 text-sm font-semibold">"Twilio"</legend>
                        {twilio_fields}
                    </fieldset>
                    <fieldset id="meta-settings" class="rounded-md border border-slate-200 p-4">
                        <legend class="px-1 text-sm font-semibold">"Meta WhatsApp Cloud API"</legend>
                        {meta_fields}
                    </fieldset>
                </div>
                <p class="mt-3 text-xs text-slate-500">"Secrets are stored encrypted and never shown again; a value set in the server's environment wins over one saved here."</p>
                <button id="save-provider" type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save provider settings"</button>
            </ActionForm>

            <h3 class="mt-6 text-sm font-semibold">"Webhook addresses for the provider's console"</h3>
            <ul class="mt-1 space-y-1 text-sm" id="webhook-urls">
                {p.webhooks.clone().into_iter().map(|(what, url)| view! {
                    <li><span class="text-slate-600">{what}": "</span><code class="select-all rounded bg-slate-100 px-1.5 py-0.5">{url}</code></li>
                }).collect_view()}
            </ul>
            <p class="mt-2 text-sm" id="last-webhook" data-ok=p.last_webhook.as_ref().map(|w| w.ok.to_string()).unwrap_or_default()>
                "Last webhook: "
                {match p.last_webhook.clone() {
                    Some(w) if w.ok => view! { <span>{w.at}" — "<span class="font-medium text-emerald-700">{format!("✓ {}", w.text)}</span></span> }.into_any(),
                    Some(w) => view! { <span>{w.at}" — "<span class="font-medium text-red-700">{format!("✗ {}", w.text)}</span></span> }.into_any(),
                    None => view! { <span class="text-slate-500">"none received from this provider yet"</span> }.into_any(),
                }}
            </p>

            <h3 class="mt-6 text-sm font-semibold">"Send a test message"</h3>
            {action_error(test)}
            {test_result.map(|t| {
                let ok = t.error.is_none();
                view! {
                    <div id="test-result" data-status=t.status.clone() class=if ok { "my-2 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm" } else { "my-2 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm" }>
                        <p>{format!("To {} through {}: {}", t.phone, t.provider, t.status)}
                            {t.provider_message_id.clone().map(|id| view! { <span class="ml-1 font-mono text-xs text-slate-500">{id}</span> })}</p>
                        {t.error.clone().map(|e| view! { <p class="mt-1 text-red-800">{e}</p> })}
                        <p class="mt-1"><a class="text-blue-700 underline" href="/messages">"See it in the message history"</a></p>
                    </div>
                }
            })}
            <ActionForm action=test>
                <div class="flex flex-wrap items-end gap-3">
                    <label class="block w-72 text-sm font-medium">"To (international format)"
                        <input id="test-phone" name="phone" type="tel" required class=field()/>
                    </label>
                    <button id="send-test" type="submit" class="rounded-md border border-slate-300 px-4 py-2 text-sm font-semibold hover:bg-slate-50">"Send test message"</button>
                </div>
                <p class="mt-1 text-xs text-slate-500">"Sent now through the active provider. WhatsApp delivers free-form messages only to numbers that wrote in the last 24 hours."</p>
            </ActionForm>
        </section>
    }
}
