//! `/automations` (admins): rules that act on drops, messages and other systems' events —
//! the list, one rule's editor with a dry run, and its run log. A rule is the JSON the API
//! takes (README, "Automations"); the editor shows it as such beside a summary in words.

pub mod detail;
pub mod list;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleItem {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub built_in: bool,
    /// The trigger in words.
    pub when: String,
    /// The actions in words.
    pub then: Vec<String>,
    pub last_run: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesPageData {
    pub me: Me,
    pub rules: Vec<RuleItem>,
}

/// One action's outcome in the run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLine {
    pub kind: String,
    pub status: String,
    pub recipient: String,
    pub detail: String,
    pub message_id: Option<i64>,
    /// The message's delivery status now (sent, delivered, failed, …).
    pub message_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    pub id: i64,
    pub at: String,
    pub status: String,
    pub trigger: String,
    pub subject: String,
    /// The drop page, when the subject is a drop.
    pub subject_href: Option<String>,
    pub detail: String,
    pub actions: Vec<ActionLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePageData {
    pub me: Me,
    /// `None`: a new rule.
    pub id: Option<i64>,
    pub name: String,
    pub enabled: bool,
    pub built_in: bool,
    pub version: i64,
    /// The rule's trigger, conditions and actions as pretty JSON (what the editor edits).
    pub body: String,
    pub when: String,
    pub then: Vec<String>,
    /// A sample event for the dry run: the trigger's variables with example values.
    pub sample: String,
    /// The dry run of `sample` (asked for with `?sample=`): what would happen, or why not.
    pub dry_run: Option<Result<Vec<String>, String>>,
    pub runs: Vec<RunLine>,
}

#[cfg(feature = "ssr")]
pub(crate) fn action_words(a: &dropcheck_core::automation::ActionSpec) -> String {
    use dropcheck_core::automation::{ActionSpec, Recipient};
    let to = |r: &Recipient| match r {
        Recipient::Contact => "the contact".to_string(),
        Recipient::Number(p) => p.to_string(),
        Recipient::Tag(t) => format!("every contact tagged {t}"),
    };
    match a {
        ActionSpec::SendTemplate { template, to: r, .. } => format!("send the {template} template to {}", to(r)),
        ActionSpec::SendText { to: r, fallback_template, .. } => format!(
            "send a text to {} (inside the 24-hour window{})",
            to(r),
            fallback_template.as_ref().map(|t| format!("; else the {t} template")).unwrap_or_default()
        ),
        ActionSpec::NotifyUsers { .. } => "message every user with a linked number".into(),
        ActionSpec::CallWebhook { endpoint } => format!("call webhook endpoint {endpoint}"),
        ActionSpec::AddTag { tag } => format!("tag the contact {tag}"),
        ActionSpec::RemoveTag { tag } => format!("remove the tag {tag} from the contact"),
        ActionSpec::SetAttribute { key, value } => format!("set the contact's {key} to {value}"),
        ActionSpec::Delay { minutes } => format!("wait {}", dropcheck_core::automation::minutes_text(*minutes)),
    }
}

#[server(prefix = "/rpc", endpoint = "automations_page")]
pub async fn automations_page() -> Result<RulesPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let now = dropcheck_core::now_ms();
    let rules = st
        .store
        .automation_rules()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| RuleItem {
            id: r.id,
            name: r.spec.name.clone(),
            enabled: r.spec.enabled,
            built_in: r.builtin.is_some(),
            when: r.spec.trigger.describe(),
            then: r.spec.actions.iter().map(action_words).collect(),
            last_run: r.last_run_at.map(|t| dropcheck_core::ago(t, now)).unwrap_or_else(|| "never".into()),
        })
        .collect();
    Ok(RulesPageData { me: crate::ui::me_of(&user), rules })
}

#[server(prefix = "/rpc", endpoint = "automation_page")]
pub async fn automation_page(id: String, from: Option<String>, sample: Option<String>) -> Result<RulePageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let me = crate::ui::me_of(&user);
    let parse_id = |s: &str| s.trim().parse::<i64>().map_err(|_| refuse("rule_not_found", "There is no such automation."));
    if id == "new" {
        // A new rule: empty, or a copy of another (e.g. the built-in example) to change.
        let (name, spec) = match from.filter(|f| !f.is_empty()) {
            Some(f) => {
                let r = st.store.automation_rule(parse_id(&f)?).await.map_err(fail)?;
                (format!("{} (copy)", r.spec.name), r.spec)
            }
            None => (String::new(), dropcheck_core::automation::builtin_reminder()),
        };
        return Ok(editor_data(me, None, &name, &spec, false, 0, vec![]));
    }
    let r = st.store.automation_rule(parse_id(&id)?).await.map_err(fail)?;
    let runs = st.store.automation_runs(r.id, None, 50).await.map_err(fail)?.into_iter().map(run_line).collect();
    let mut data = editor_data(me, Some(r.id), &r.spec.name.clone(), &r.spec, r.builtin.is_some(), r.version, runs);
    if let Some(sample) = sample.filter(|s| !s.trim().is_empty()) {
        data.dry_run = Some(dry_run_lines(&st.store, r.id, &sample).await);
        data.sample = sample;
    }
    Ok(data)
}

/// What the saved rule would do for the sample event, in sentences (or why it cannot say).
#[cfg(feature = "ssr")]
async fn dry_run_lines(store: &dropcheck_core::store::Store, id: i64, sample: &str) -> Result<Vec<String>, String> {
    let sample: serde_json::Value = serde_json::from_str(sample).map_err(|e| format!("The sample event is not valid JSON: {e}."))?;
    let d = store.dry_run(id, &sample).await.map_err(|e| e.to_string())?;
    let mut lines = vec![match (&d.conditions, d.trigger_matches) {
        (_, false) => "The trigger does not match this sample: nothing would run.".to_string(),
        (Err(e), _) => format!("The conditions could not be evaluated: {e}"),
        (Ok(false), _) => "The conditions do not hold for this sample: the run would be logged as skipped.".to_string(),
        (Ok(true), _) => "The conditions hold. The actions:".to_string(),
    }];
    for a in d.actions {
        let who = if a.recipient.is_empty() { "nobody".to_string() } else { a.recipient.clone() };
        lines.push(match a.status.as_str() {
            "would_send" => format!("{} → {who}: “{}”", a.kind, a.detail),
            other => format!("{} → {who}: {other} — {}", a.kind, a.detail),
        });
    }
    Ok(lines)
}

#[cfg(feature = "ssr")]
fn editor_data(
    me: Me,
    id: Option<i64>,
    name: &str,
    spec: &dropcheck_core::automation::RuleSpec,
    built_in: bool,
    version: i64,
    runs: Vec<RunLine>,
) -> RulePageData {
    // Serialized straight from the rule's types, so the keys keep their reading order
    // (trigger, conditions, actions), which a JSON object value would sort.
    #[derive(Serialize)]
    struct Body<'a> {
        trigger: &'a dropcheck_core::automation::Trigger,
        #[serde(skip_serializing_if = "dropcheck_core::automation::Conditions::is_empty")]
        conditions: &'a dropcheck_core::automation::Conditions,
        actions: &'a [dropcheck_core::automation::ActionSpec],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stop_processing: bool,
    }
    let body = Body { trigger: &spec.trigger, conditions: &spec.conditions, actions: &spec.actions, stop_processing: spec.stop_processing };
    RulePageData {
        me,
        id,
        name: name.to_string(),
        enabled: spec.enabled,
        built_in,
        version,
        body: serde_json::to_string_pretty(&body).unwrap_or_default(),
        when: spec.trigger.describe(),
        then: spec.actions.iter().map(action_words).collect(),
        sample: serde_json::to_string_pretty(&dropcheck_core::automation::sample_context(&spec.trigger)).unwrap_or_default(),
        dry_run: None,
        runs,
    }
}

#[cfg(feature = "ssr")]
fn run_line(r: dropcheck_core::store::RunRow) -> RunLine {
    let is_drop = dropcheck_core::domain::DropNumber::parse(&r.subject).is_ok() && !r.subject.starts_with('+');
    RunLine {
        id: r.id,
        at: dropcheck_core::fmt_time(r.started_at),
        status: r.status,
        trigger: r.trigger,
        subject_href: is_drop.then(|| format!("/drops/{}", r.subject)),
        subject: r.subject,
        detail: r.detail,
        actions: r
            .actions
            .into_iter()
            .map(|a| ActionLine {
                kind: a.kind,
                status: a.status,
                recipient: a.recipient,
                detail: a.detail,
                message_id: a.message_id,
                message_status: a.message_status,
            })
            .collect(),
    }
}

/// Creates (no `id`) or replaces a rule from the editor: its name, whether it is on, and the
/// JSON of its trigger, conditions and actions.
#[server(prefix = "/rpc", endpoint = "save_automation")]
pub async fn save_automation(id: Option<String>, name: Option<String>, enabled: Option<String>, body: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let mut v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| refuse("invalid_rule", &format!("The rule is not valid JSON: {e} (line {}, column {}).", e.line(), e.column())))?;
    let Some(m) = v.as_object_mut() else {
        return Err(refuse("invalid_rule", "The rule is a JSON object with trigger, conditions and actions."));
    };
    m.insert("name".into(), name.unwrap_or_default().trim().into());
    m.insert("enabled".into(), enabled.is_some().into());
    let spec = dropcheck_core::automation::RuleSpec::parse(&v).map_err(|e| fail(e.into()))?;
    let saved = match id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => {
            let id: i64 = id.parse().map_err(|_| refuse("rule_not_found", "There is no such automation."))?;
            st.store.update_rule(id, &spec).await.map_err(fail)?
        }
        None => {
            let r = st.store.create_rule(&spec).await.map_err(fail)?;
            leptos_axum::redirect(&format!("/automations/{}", r.id));
            r
        }
    };
    tracing::info!(rule = saved.id, version = saved.version, enabled = saved.spec.enabled, by = %user.email, "automation rule saved");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "delete_automation")]
pub async fn delete_automation(id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let id: i64 = id.trim().parse().map_err(|_| refuse("rule_not_found", "There is no such automation."))?;
    st.store.delete_rule(id).await.map_err(fail)?;
    tracing::info!(rule = id, by = %user.email, "automation rule deleted");
    leptos_axum::redirect("/automations");
    Ok(())
}
