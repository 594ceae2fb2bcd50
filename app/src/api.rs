//! Server functions: the dashboard's reads and mutations. Each is thin: authenticate
//! through the session, parse the input into domain types, call the core, map the error.
//! They are public endpoints under `/rpc/…` and check the session every time.

use leptos::prelude::*;

use crate::model::*;

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, ServerFnError> {
    use crate::ssr::*;
    let user = match signed_in() {
        Some(u) => Some(u),
        None => {
            let st = state()?;
            let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
            session_user(&session, &st.store).await.map_err(fail)?
        }
    };
    Ok(user.map(|u| Me { email: u.email.clone(), admin: u.role() == dropcheck_core::domain::Role::Admin }))
}

#[server(prefix = "/rpc", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::{auth, domain::Email, now_ms, CoreError};
    let st = state()?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
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
    tracing::info!(user_id = user.user_id, "signed in");
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

#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
    let id = session.id().map(|i| i.to_string());
    session.flush().await.map_err(|e| ServerFnError::new(e.to_string()))?;
    if let (Some(id), Ok(st)) = (id, crate::ssr::state()) {
        st.settings.live.session_ended(&id); // its live streams close now
    }
    leptos_axum::redirect("/login");
    Ok(())
}

/// First run: creates the first admin (only while there are no users) and signs them in.
#[server(prefix = "/rpc", endpoint = "setup")]
pub async fn setup(email: String, password: String, confirm: String, project: Option<String>) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::{auth, domain::Email};
    let st = state()?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
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
    tracing::info!(user_id = user.user_id, "first admin created");
    leptos_axum::redirect("/");
    Ok(())
}

#[cfg(feature = "ssr")]
async fn start_session(session: &tower_sessions::Session, user_id: i64) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let err = |e: tower_sessions::session::Error| ServerFnError::new(format!("session: {e}"));
    // A new id at sign-in, so a session id planted before sign-in is worthless afterwards.
    session.cycle_id().await.map_err(err)?;
    session.insert(SESSION_USER_ID, user_id).await.map_err(err)?;
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

#[cfg(feature = "ssr")]
pub(crate) fn me_of(u: &dropcheck_core::store::User) -> Me {
    Me { email: u.email.clone(), admin: u.role() == dropcheck_core::domain::Role::Admin }
}

#[allow(clippy::too_many_arguments)]
#[server(prefix = "/rpc", endpoint = "drops_page")]
pub async fn drops_page(
    status: Option<String>,
    project: Option<String>,
    contractor: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<DropsPageData, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::DropStatus;
    use dropcheck_core::store::{Cursor, DropFilter};
    use dropcheck_core::{ago, fmt_time, now_ms, parse_day};
    let (st, user) = require_user().await?;
    let nonempty = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let bad = |e: dropcheck_core::InputError| fail(e.into());
    let filter = DropFilter {
        status: nonempty(status).map(|s| DropStatus::parse(&s)).transpose().map_err(bad)?,
        project_id: nonempty(project)
            .map(|p| p.parse::<i64>().map_err(|_| ServerFnError::new(format!("'{p}' is not a project"))))
            .transpose()?,
        contractor: nonempty(contractor),
        q: nonempty(q),
        from_ms: nonempty(from).map(|d| parse_day(&d)).transpose().map_err(bad)?,
        to_ms: nonempty(to).map(|d| parse_day(&d).map(|t| t + 86_400_000)).transpose().map_err(bad)?,
    };
    let cursor = nonempty(cursor).map(|c| Cursor::parse(&c)).transpose().map_err(bad)?;
    let (rows, next) = st.store.list_drops(&filter, cursor, 50).await.map_err(fail)?;
    let counts = st.store.status_counts().await.map_err(fail)?;
    let projects = st.store.projects().await.map_err(fail)?;
    let now = now_ms();
    Ok(DropsPageData {
        me: me_of(&user),
        total: counts.iter().map(|(_, n)| n).sum(),
        counts: counts.into_iter().map(|(s, n)| StatusCount { status: s.as_str().into(), label: s.label().into(), count: n }).collect(),
        rows: rows
            .into_iter()
            .map(|r| DropRowView {
                status_label: DropStatus::parse(&r.status).map(|s| s.label().to_string()).unwrap_or_else(|_| r.status.clone()),
                number: r.drop_number,
                status: r.status,
                project: r.project,
                contractor: match (r.contractor_name.filter(|n| !n.is_empty()), r.contractor_phone) {
                    (Some(n), Some(p)) => format!("{n} · {p}"),
                    (None, Some(p)) => p,
                    _ => "—".into(),
                },
                photo_steps: r.photo_steps,
                step_count: r.step_count,
                round: r.round,
                activity_ago: ago(r.activity_at, now),
                activity_at: fmt_time(r.activity_at),
            })
            .collect(),
        next_cursor: next.map(|c| c.encode()),
        projects: projects.into_iter().map(|p| ProjectOption { id: p.project_id, name: p.name }).collect(),
    })
}

#[server(prefix = "/rpc", endpoint = "drop_page")]
pub async fn drop_page(number: String) -> Result<DropPageData, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, DropStatus, Role};
    use dropcheck_core::fmt_time;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let d = st.store.drop_detail(&number).await.map_err(fail)?;
    let reasons = st.store.reasons().await.map_err(fail)?;
    let feedback = st.store.feedback_message(&d, &reasons).await.map(|(body, _)| body).map_err(|e| e.public_message());
    let photo = |p: &dropcheck_core::store::PhotoInfo| PhotoView {
        id: p.photo_id,
        round: p.round,
        received: fmt_time(p.received_at),
        width: p.width,
        height: p.height,
    };
    let mut steps: Vec<StepView> = d
        .steps
        .iter()
        .map(|s| StepView {
            number: s.number,
            name: s.name.clone(),
            description: s.description.clone(),
            verdict: s.verdict.as_str().into(),
            reason: s.reason.clone().unwrap_or_default(),
            reason_label: s.reason_label.clone().unwrap_or_default(),
            note: s.note.clone(),
            reviewer: s.reviewer.clone().unwrap_or_default(),
            previous_verdict: s.previous_verdict.map(|v| v.as_str().to_string()).unwrap_or_default(),
            previous_note: s.previous_note.clone().unwrap_or_default(),
            new_photos: s.photos.iter().filter(|p| p.round == d.round).map(photo).collect(),
            old_photos: s.photos.iter().filter(|p| p.round != d.round).map(photo).collect(),
        })
        .collect();
    // On a resubmitted drop the reopened steps come first.
    if d.status == DropStatus::Resubmitted {
        steps.sort_by_key(|s| (s.previous_verdict.is_empty(), s.number));
    }
    let mut timeline: Vec<(i64, TimelineEntry)> = d
        .history
        .iter()
        .map(|h| {
            (
                h.at,
                TimelineEntry {
                    at: fmt_time(h.at),
                    actor: h.actor.clone(),
                    kind: h.kind.clone(),
                    text: h.detail.clone(),
                    status: String::new(),
                },
            )
        })
        .collect();
    for m in &d.messages {
        timeline.push((
            m.created_at,
            TimelineEntry {
                at: fmt_time(m.created_at),
                actor: if m.direction == "out" { format!("to {}", m.phone) } else { format!("from {}", m.phone) },
                kind: format!("message_{}", m.direction),
                text: m.body.clone(),
                status: m.status.clone(),
            },
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let reviewable = matches!(d.status, DropStatus::Unreviewed | DropStatus::Resubmitted);
    let attachments = st
        .store
        .attachments_for_drop(d.drop_id)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|a| AttachmentView {
            id: a.attachment_id,
            mime_type: a.mime_type,
            size: format!("{} KB", (a.size_bytes + 1023) / 1024),
            received: fmt_time(a.received_at),
        })
        .collect();
    Ok(DropPageData {
        attachments,
        me: me_of(&user),
        number: d.drop_number.clone(),
        status: d.status.as_str().into(),
        status_label: d.status.label().into(),
        project: d.project.clone(),
        contractor_name: d.contractor.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
        contractor_phone: d.contractor.as_ref().map(|c| c.phone.clone()).unwrap_or_default(),
        round: d.round,
        created: fmt_time(d.created_at),
        steps,
        timeline: timeline.into_iter().map(|(_, t)| t).collect(),
        can_mark_incomplete: feedback.is_ok() && (reviewable || (d.status == DropStatus::Approved && user.role() == Role::Admin)),
        feedback,
        reasons: reasons.into_iter().map(|r| ReasonOption { code: r.code, label: r.label }).collect(),
        can_review: d.status != DropStatus::Approved,
        can_approve: reviewable,
    })
}

/// Records a verdict on one step (`pending` re-opens an accepted step).
#[server(prefix = "/rpc", endpoint = "review_step")]
pub async fn review_step(
    number: String,
    step: String,
    verdict: String,
    reason: Option<String>,
    note: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, StepNo, Verdict};
    use dropcheck_core::store::StepVerdict;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let verdict = Verdict::parse(&verdict).map_err(|e| fail(e.into()))?;
    let step = StepNo::parse(&step).map_err(|e| fail(e.into()))?;
    let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let v = StepVerdict { step, verdict, reason, note: note.unwrap_or_default() };
    st.store.set_verdicts(&number, &[v], &actor(&user)).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "move_photo")]
pub async fn move_photo(number: String, photo_id: String, step: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, StepNo};
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let photo_id: i64 = photo_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a photo"))?;
    let step = StepNo::parse(&step).map_err(|e| fail(e.into()))?;
    st.store.move_photo(&number, photo_id, step, &actor(&user)).await.map_err(fail)
}

/// Marks the drop incomplete; the feedback message is queued in the same transaction.
#[server(prefix = "/rpc", endpoint = "mark_incomplete")]
pub async fn mark_incomplete(number: String) -> Result<String, ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::DropNumber;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    st.store.mark_incomplete(&number, &actor(&user)).await.map_err(fail)
}

/// Accepts every pending step and approves the drop.
#[server(prefix = "/rpc", endpoint = "approve_all")]
pub async fn approve_all(number: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::DropNumber;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    st.store.approve(&number, true, &actor(&user)).await.map_err(fail)
}

// ------------------------------------------------------------------ settings (admins)

#[server(prefix = "/rpc", endpoint = "projects_data")]
pub async fn projects_data() -> Result<Vec<ProjectView>, ServerFnError> {
    use crate::ssr::*;
    let (st, _) = require_admin().await?;
    let mut out = vec![];
    for p in st.store.projects().await.map_err(fail)? {
        let steps = st.store.checklist(p.project_id).await.map_err(fail)?;
        out.push(ProjectView {
            id: p.project_id,
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
    Ok(out)
}

#[server(prefix = "/rpc", endpoint = "create_project")]
pub async fn create_project(name: String, drop_pattern: String) -> Result<(), ServerFnError> {
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
pub async fn save_project(
    project_id: String,
    drop_pattern: String,
    steps: String,
    wait_for_done: Option<String>,
) -> Result<(), ServerFnError> {
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
    st.store.update_project(id, drop_pattern.trim(), &steps).await.map_err(fail)?;
    st.store.set_wait_for_done(id, wait_for_done.is_some()).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "users_data")]
pub async fn users_data() -> Result<Vec<UserView>, ServerFnError> {
    use crate::ssr::*;
    let (st, me) = require_admin().await?;
    Ok(st
        .store
        .users()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|u| UserView {
            id: u.user_id,
            role: u.role().as_str().into(),
            created: dropcheck_core::fmt_time(u.created_at),
            is_me: u.user_id == me.user_id,
            email: u.email,
        })
        .collect())
}

#[server(prefix = "/rpc", endpoint = "add_user")]
pub async fn add_user(email: String, role: String, password: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::{
        auth,
        domain::{Email, Role},
    };
    let (st, admin) = require_admin().await?;
    let email = Email::parse(&email).map_err(|e| fail(e.into()))?;
    let role = Role::parse(&role).map_err(|e| fail(e.into()))?;
    auth::check_password_policy(&password).map_err(|e| fail(e.into()))?;
    let hash = auth::hash_password(password).await.map_err(fail)?;
    let u = st.store.create_user(&email, &hash, role).await.map_err(fail)?;
    tracing::info!(by = admin.user_id, user_id = u.user_id, role = %role, "user added");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "set_user_role")]
pub async fn set_user_role(user_id: String, role: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    use dropcheck_core::domain::Role;
    let (st, _) = require_admin().await?;
    let id: i64 = user_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a user"))?;
    let role = Role::parse(&role).map_err(|e| fail(e.into()))?;
    st.store.set_role(id, role).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "delete_user")]
pub async fn delete_user(user_id: String) -> Result<(), ServerFnError> {
    use crate::ssr::*;
    let (st, me) = require_admin().await?;
    let id: i64 = user_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a user"))?;
    if id == me.user_id {
        return Err(crate::ssr::fail(dropcheck_core::CoreError::conflict("cannot_delete_self", "You cannot delete yourself.")));
    }
    st.store.delete_user(id).await.map_err(fail)
}
