//! Signing in and the first run: `/login`, `/setup`, and their server functions (sign-in
//! limits per address and per account, a new session id at sign-in).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::*;

#[server(prefix = "/rpc", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::{auth, domain::Email, now_ms, CoreError};
    let st = state()?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    let addr = client_address(&st).await;
    let account: String = email.trim().to_lowercase().chars().filter(|c| !c.is_control()).take(254).collect();
    // Each attempt is claimed before the password is checked (so parallel attempts cannot
    // pass a limit): 20 per address in 15 minutes, and 5 per account from one address, whose
    // lockout starts at a minute and doubles (at most 15 minutes). An attacker elsewhere
    // cannot lock the owner out; one address cannot guess on for long.
    let now = now_ms();
    let (addr_key, acct_key) = (format!("addr:{addr}"), format!("acct:{account} {addr}"));
    let too_many = |until: i64| {
        let secs = ((until - now).max(1000) as u64).div_ceil(1000);
        tracing::warn!(address = %addr, "sign-in refused: too many recent failures");
        fail(CoreError::TooMany {
            code: "too_many_attempts",
            message: format!(
                "Too many failed sign-ins. Try again in {}.",
                if secs < 90 { format!("{secs} seconds") } else { format!("{} minutes", secs.div_ceil(60)) }
            ),
            retry_after_secs: secs,
        })
    };
    if let Some(until) = st.store.claim_login_attempt(&addr_key, LOGIN_ADDRESS_LIMIT, LOGIN_WINDOW_MS, now).await.map_err(fail)? {
        return Err(too_many(until));
    }
    if let Some(until) = st.store.claim_login_attempt(&acct_key, LOGIN_ACCOUNT_LIMIT, LOGIN_WINDOW_MS, now).await.map_err(fail)? {
        st.store.release_login_attempt(&addr_key).await.map_err(fail)?;
        return Err(too_many(until));
    }
    let user = match Email::parse(&email) {
        Ok(e) => st.store.user_by_email(&e).await.map_err(fail)?,
        Err(_) => None,
    };
    let ok = auth::verify_password(password, user.as_ref().map(|u| u.password_hash.clone())).await.map_err(fail)?;
    let Some(user) = user.filter(|_| ok) else {
        let now = now_ms();
        st.store.fail_login_attempt(&acct_key, LOGIN_ACCOUNT_LIMIT, 60_000, LOGIN_WINDOW_MS, now).await.map_err(fail)?;
        st.store.fail_login_attempt(&addr_key, LOGIN_ADDRESS_LIMIT, LOGIN_WINDOW_MS, LOGIN_WINDOW_MS, now).await.map_err(fail)?;
        tracing::info!(address = %addr, "sign-in failed");
        return Err(fail(CoreError::Unauthenticated { code: "wrong_credentials", message: "Wrong e-mail or password.".into() }));
    };
    st.store.clear_login_throttle(&acct_key).await.map_err(fail)?;
    st.store.release_login_attempt(&addr_key).await.map_err(fail)?;
    start_session(&session, user.user_id).await?;
    tracing::info!(user_id = user.user_id.get(), "signed in");
    leptos_axum::redirect("/");
    Ok(())
}

/// Sign-in limits (see `login`): attempts per address, and per account from one address,
/// within the window.
#[cfg(feature = "ssr")]
const LOGIN_ADDRESS_LIMIT: i64 = 20;
#[cfg(feature = "ssr")]
const LOGIN_ACCOUNT_LIMIT: i64 = 5;
#[cfg(feature = "ssr")]
const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;

/// First run: creates the first admin (only while there are no users) and signs them in.
#[server(prefix = "/rpc", endpoint = "setup")]
pub async fn setup(email: String, password: String, confirm: String, project: Option<String>) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::{auth, domain::Email};
    let st = state()?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    let email = Email::parse(&email).map_err(|e| fail(e.into()))?;
    if password != confirm {
        return Err(crate::ssr::refuse("password_mismatch", "The two passwords differ."));
    }
    auth::check_password_policy(&password).map_err(|e| fail(e.into()))?;
    if st.store.user_count().await.map_err(fail)? > 0 {
        return Err(crate::ssr::fail(dropcheck_core::CoreError::conflict(
            "already_set_up",
            "Dropcheck is already set up; sign in instead.",
        )));
    }
    // The first admin names the project a fresh install starts with (only that one).
    let rename = match project.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(name) => match st.store.project_by_name(dropcheck_core::store::DEFAULT_PROJECT_NAME).await.map_err(fail)? {
            Some(p) if p.name != name => Some((p.project_id, name.to_string())),
            _ => None,
        },
        None => None,
    };
    if let Some((_, name)) = &rename {
        if name.chars().count() > 100 {
            return Err(refuse("invalid_project_name", "a project name needs 1–100 characters"));
        }
    }
    let hash = auth::hash_password(password).await.map_err(fail)?;
    let user = st.store.create_first_admin(&email, &hash).await.map_err(fail)?;
    if let Some((id, name)) = rename {
        st.store.rename_project(id, &name).await.map_err(fail)?;
        tracing::info!(project = ?name, "default project named at setup");
    }
    start_session(&session, user.user_id).await?;
    tracing::info!(user_id = user.user_id.get(), "first admin created");
    leptos_axum::redirect("/");
    Ok(())
}

#[cfg(feature = "ssr")]
async fn start_session(session: &tower_sessions::Session, user_id: dropcheck_core::ids::UserId) -> Result<(), AppError> {
    use crate::ssr::*;
    let err = crate::ssr::session_failed;
    // A new id at sign-in, so a session id planted before sign-in is worthless afterwards.
    session.cycle_id().await.map_err(err)?;
    session.insert(SESSION_USER_ID, user_id.get()).await.map_err(err)?;
    session.insert(SESSION_LOGIN_AT, dropcheck_core::now_ms()).await.map_err(err)?;
    Ok(())
}

/// The client's address: the peer's, or, when the peer is a trusted proxy
/// (`DROPCHECK_TRUSTED_PROXY`), the one its `X-Forwarded-For` names.
#[cfg(feature = "ssr")]
async fn client_address(st: &crate::ssr::AppState) -> String {
    use axum::extract::ConnectInfo;
    let Ok(ConnectInfo(peer)) = leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>().await else { return "unknown".into() };
    match use_context::<axum::http::request::Parts>() {
        Some(parts) => st.settings.trusted_proxies.client_ip(peer.ip(), &parts.headers).to_string(),
        None => peer.ip().to_string(),
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    view! {
        <Title text="Sign in · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
            <h1 class="mb-1 text-2xl font-semibold">"Sign in to Dropcheck"</h1>
            <p class="mb-6 text-sm text-slate-500">"Photo QA for field installations."</p>
            {action_error(login)}
            <ActionForm action=login>
                <label class="block text-sm font-medium">"E-mail"
                    <input id="email" type="email" name="email" required autocomplete="username" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password"
                    <input id="password" type="password" name="password" required autocomplete="current-password" class=input_class()/>
                </label>
                <button id="sign-in" type="submit" class=format!("mt-6 w-full {}", primary_button())>"Sign in"</button>
            </ActionForm>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<Setup>::new();
    view! {
        <Title text="Set up · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
            <h1 class="mb-1 text-2xl font-semibold">"Welcome to Dropcheck"</h1>
            <p class="mb-6 text-sm text-slate-500">"Create the first admin account. This page works only once."</p>
            {action_error(setup)}
            <ActionForm action=setup>
                <label class="block text-sm font-medium">"E-mail"
                    <input id="email" type="email" name="email" required class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password (at least 8 characters)"
                    <input id="password" type="password" name="password" required minlength="8" autocomplete="new-password" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password again"
                    <input id="confirm" type="password" name="confirm" required minlength="8" autocomplete="new-password" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Your project"
                    <input id="project" type="text" name="project" value="Default project" maxlength="100" class=input_class()/>
                    <span class="mt-1 block text-xs font-normal text-slate-500">
                        "Drops from WhatsApp go here, with the standard 12-step checklist (editable later under Settings → Projects)."
                    </span>
                </label>
                <button id="create-admin" type="submit" class=format!("mt-6 w-full {}", primary_button())>"Create admin and sign in"</button>
            </ActionForm>
        </div>
    }
}
