//! The broadcast pages' form posts (`app::broadcasts`): `POST /broadcasts` makes a draft from
//! the new-broadcast form and opens its page (its preflight); `POST /broadcasts/{id}/start`,
//! `…/pause`, `…/cancel` change it. Plain forms: they work without JavaScript. Admins only
//! (the gate and the check here).

use app::ssr::{session_user, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use dropcheck_core::contacts::campaign::{CampaignSpec, QuietHours};
use dropcheck_core::domain::Role;
use dropcheck_core::CoreError;
use std::collections::BTreeMap;
use tower_sessions::Session;

use crate::web::notice_page;

pub fn router() -> Router<AppState> {
    Router::new().route("/broadcasts", post(create)).route("/broadcasts/{id}/{action}", post(act))
}

/// Fields of the new-broadcast form sent back to it when refused, so nothing typed is lost.
const FIELDS: &[&str] = &[
    "name",
    "template",
    "tag",
    "frequency_hours",
    "pace_per_minute",
    "daily_cap",
    "quiet_start",
    "quiet_end",
    "blocked_prefixes",
    "variables",
];

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn admin(st: &AppState, session: &Session) -> Result<String, Response> {
    let back = ("/broadcasts", "Back to the broadcasts");
    match session_user(session, &st.store).await {
        Ok(Some(u)) if u.role() == Role::Admin => Ok(u.email.to_string()),
        Ok(_) => Err(notice_page(StatusCode::FORBIDDEN, "Admins only", "Broadcasts are for admins.", back)),
        Err(e) => {
            tracing::error!(error = ?e, "broadcast: session lookup failed");
            Err(notice_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "It has been logged.", back))
        }
    }
}

fn message(e: CoreError) -> String {
    crate::web::refusal_text(e, "broadcast change")
}

/// The form as a campaign: blank numbers take the defaults, `variables` is `name = text` lines.
fn spec_of(pairs: &[(String, String)]) -> Result<CampaignSpec, String> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let num = |k: &str, default: u32, what: &str| -> Result<u32, String> {
        let v = get(k);
        if v.is_empty() {
            return Ok(default);
        }
        v.parse().map_err(|_| format!("{what} must be a whole number, not '{v}'"))
    };
    let mut variables = BTreeMap::new();
    for (i, line) in get("variables").lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("variables, line {}: write it as name = text", i + 1))?;
        variables.insert(k.trim().to_string(), v.trim().to_string());
    }
    let quiet_hours = match (get("quiet_start"), get("quiet_end")) {
        (s, e) if s.is_empty() && e.is_empty() => None,
        (s, e) if s.is_empty() || e.is_empty() => return Err("quiet hours need both a start and an end (or neither)".into()),
        (start, end) => Some(QuietHours { start, end }),
    };
    Ok(CampaignSpec {
        name: get("name"),
        template: get("template"),
        tag: get("tag"),
        variables,
        pace_per_minute: num("pace_per_minute", 60, "the pace")?,
        daily_cap: num("daily_cap", 1000, "the daily cap")?,
        quiet_hours,
        blocked_prefixes: get("blocked_prefixes").split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        frequency_hours: num("frequency_hours", 24, "the frequency cap")?,
    })
}

/// `POST /broadcasts`: a draft, then its page (the preflight); refused: back to the form with
/// the reason and what was typed.
async fn create(State(st): State<AppState>, session: Session, body: String) -> Response {
    let by = match admin(&st, &session).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pairs = dropcheck_core::contacts::import::form_pairs(&body);
    let outcome = match spec_of(&pairs) {
        Ok(spec) => st.store.create_campaign(&spec, &by).await.map_err(message),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(c) => {
            tracing::info!(campaign = c.id, by = %by, eligible = c.eligible, "broadcast drafted");
            Redirect::to(&format!("/broadcasts/{}", c.id)).into_response()
        }
        Err(e) => {
            tracing::info!(error = %e, "broadcast refused");
            let mut q = format!("error={}", enc(&e));
            for (k, v) in pairs.iter().filter(|(k, _)| FIELDS.contains(&k.as_str())) {
                q.push_str(&format!("&{k}={}", enc(v)));
            }
            Redirect::to(&format!("/broadcasts?{q}")).into_response()
        }
    }
}

/// `POST /broadcasts/{id}/{action}`: start (or resume), pause, cancel.
async fn act(State(st): State<AppState>, session: Session, Path((id, action)): Path<(String, String)>) -> Response {
    let by = match admin(&st, &session).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return notice_page(
            StatusCode::NOT_FOUND,
            "No such broadcast",
            "That is not a broadcast.",
            ("/broadcasts", "Back to the broadcasts"),
        );
    };
    let page = format!("/broadcasts/{id}");
    match st.store.campaign_action(id, &action).await {
        Ok(_) => {
            tracing::info!(campaign = id, action = %action, by = %by, "broadcast changed from its page");
            Redirect::to(&format!("{page}?saved=1")).into_response()
        }
        Err(e) => Redirect::to(&format!("{page}?error={}", enc(&message(e)))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn the_form_reads_as_a_campaign_with_defaults_and_clear_refusals() {
        let s = spec_of(&pairs(&[
            ("name", " Offer "),
            ("template", "promo"),
            ("tag", "crew"),
            ("pace_per_minute", ""),
            ("quiet_start", "21:00"),
            ("quiet_end", "08:00"),
            ("blocked_prefixes", "+1, +44"),
            ("variables", "name = {{ name }}\r\n\r\noffer=Fibre 100"),
        ]))
        .unwrap();
        assert_eq!((s.pace_per_minute, s.daily_cap, s.frequency_hours), (60, 1000, 24));
        assert_eq!(s.blocked_prefixes, vec!["+1", "+44"]);
        assert_eq!(s.variables.get("offer").map(String::as_str), Some("Fibre 100"));
        assert_eq!(s.variables.get("name").map(String::as_str), Some("{{ name }}"));
        assert_eq!(s.quiet_hours, Some(QuietHours { start: "21:00".into(), end: "08:00".into() }));
        assert!(spec_of(&pairs(&[("daily_cap", "lots")])).unwrap_err().contains("'lots'"));
        assert!(spec_of(&pairs(&[("quiet_start", "21:00")])).unwrap_err().contains("both"));
        assert!(spec_of(&pairs(&[("variables", "no equals sign")])).unwrap_err().contains("line 1"));
    }
}
