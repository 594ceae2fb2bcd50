//! `/settings/api-keys` (admins): API keys for other systems. A new key is shown once (kept
//! in the session until the next page load, so it shows without JavaScript too); only its
//! hash is stored. Each key has scopes (`submit`, `send`, `read`, `admin`) and can be revoked.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

pub const SCOPES: &[(&str, &str)] = &[
    ("submit", "register drops (POST /api/submit-installation, /api/resubmit)"),
    ("send", "send messages (POST /send, notifications)"),
    ("read", "read drops, messages, templates and statistics"),
    ("admin", "everything, including reviews and templates"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeysPageData {
    pub me: Me,
    pub keys: Vec<ApiKeyView>,
    /// A key just created: shown this once.
    pub new_key: Option<(String, String)>,
}

#[cfg(feature = "ssr")]
const SESSION_NEW_KEY: &str = "new_api_key";

#[server(prefix = "/rpc", endpoint = "api_keys_data")]
pub async fn api_keys_data() -> Result<ApiKeysPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    let new_key: Option<(String, String)> = session.remove(SESSION_NEW_KEY).await.map_err(crate::ssr::session_failed)?;
    let now = dropcheck_core::now_ms();
    let keys = st
        .store
        .api_keys()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|k| ApiKeyView {
            id: k.api_key_id.get(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created: dropcheck_core::fmt_time(k.created_at),
            last_used: k.last_used_at.map(|t| dropcheck_core::ago(t, now)).unwrap_or_else(|| "never".into()),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    Ok(ApiKeysPageData { me: crate::ui::me_of(&user), keys, new_key })
}

#[server(prefix = "/rpc", endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    scope_submit: Option<String>,
    scope_send: Option<String>,
    scope_read: Option<String>,
    scope_admin: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(crate::ssr::refuse("invalid_name", "Give the key a name (up to 80 characters), e.g. the system that uses it."));
    }
    let picked: Vec<&str> = [("submit", &scope_submit), ("send", &scope_send), ("read", &scope_read), ("admin", &scope_admin)]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(s, _)| s)
        .collect();
    if picked.is_empty() {
        return Err(crate::ssr::refuse("invalid_scope", "Pick at least one scope."));
    }
    let (key, prefix) = dropcheck_core::auth::new_api_key();
    let id = st.store.create_api_key(&name, &prefix, &dropcheck_core::auth::hash_api_key(&key), &picked.join(" ")).await.map_err(fail)?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    session.insert(SESSION_NEW_KEY, (name.clone(), key)).await.map_err(crate::ssr::session_failed)?;
    tracing::info!(api_key_id = id.get(), name = %name, scopes = %picked.join(" "), by = %user.email, "API key created");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not an API key"))?;
    st.store.revoke_api_key(ApiKeyId(id)).await.map_err(fail)?;
    tracing::info!(api_key_id = id, by = %user.email, "API key revoked");
    Ok(())
}

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let data = Resource::new(move || (create.version().get(), revoke.version().get()), |_| api_keys_data());
    page("API keys · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me.clone()>
                <h1 class="mb-1 text-2xl font-semibold">"API keys"</h1>
                <p class="mb-4 text-sm text-slate-500">"Other systems send a key in " <code>"X-API-Key"</code> " or " <code>"Authorization: Bearer"</code> ". The routes and their scopes: " <a class="text-blue-700 underline" href="/api/docs" rel="external">"/api/docs"</a> "."</p>
                {action_error(create)}
                {action_error(revoke)}
                {d.new_key.clone().map(|(name, key)| view! {
                    <div id="new-api-key" class="mb-4 rounded-lg border border-amber-300 bg-amber-50 p-4">
                        <p class="text-sm font-semibold text-amber-900">{format!("The key “{name}” — copy it now; it is not shown again:")}</p>
                        <code id="new-api-key-value" class="mt-2 block select-all break-all rounded bg-white px-3 py-2 font-mono text-sm">{key}</code>
                    </div>
                })}
                <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                    <table class="min-w-full divide-y divide-slate-200 text-sm" id="api-keys">
                        <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                            <tr><th class="px-4 py-3">"Name"</th><th class="px-4 py-3">"Key"</th><th class="px-4 py-3">"Scopes"</th><th class="px-4 py-3">"Created"</th><th class="px-4 py-3">"Last used"</th><th class="px-4 py-3"></th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {d.keys.is_empty().then(|| view! { <tr><td colspan="6" class="px-4 py-6 text-center text-slate-500">"No API keys yet."</td></tr> })}
                            {d.keys.into_iter().map(|k| view! {
                                <tr data-key=k.name.clone() class=if k.revoked { "text-slate-400" } else { "" }>
                                    <td class="px-4 py-2.5 font-medium">{k.name.clone()}</td>
                                    <td class="px-4 py-2.5 font-mono text-xs">{format!("{}…", k.prefix)}</td>
                                    <td class="px-4 py-2.5">{k.scopes.clone()}</td>
                                    <td class="px-4 py-2.5 text-slate-500">{k.created.clone()}</td>
                                    <td class="px-4 py-2.5 text-slate-500">{k.last_used.clone()}</td>
                                    <td class="px-4 py-2.5">
                                        {if k.revoked {
                                            view! { <span class="text-xs uppercase">"revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="id" value=k.id.to_string()/>
                                                    <button type="submit" class="rounded border border-red-300 px-2 py-1 text-xs text-red-700 hover:bg-red-50">"Revoke"</button>
                                                </ActionForm>
                                            }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <section class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-5">
                    <h2 class="text-lg font-semibold">"Create a key"</h2>
                    <ActionForm action=create>
                        <label class="mt-3 block max-w-md text-sm font-medium">"Name" <input id="key-name" name="name" required maxlength="80" placeholder="e.g. the planning system" class=field()/></label>
                        <fieldset class="mt-3"><legend class="text-sm font-medium">"Scopes"</legend>
                            {SCOPES.iter().map(|(s, what)| view! {
                                <label class="mt-1 flex items-center gap-2 text-sm">
                                    <input type="checkbox" name=format!("scope_{s}") value="on" id=format!("scope-{s}")/>
                                    <code>{*s}</code><span class="text-slate-500">{*what}</span>
                                </label>
                            }).collect_view()}
                        </fieldset>
                        <button id="create-key" type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Create key"</button>
                    </ActionForm>
                </section>
            </Layout>
        }
    })
}
