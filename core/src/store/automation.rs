//! Automation rules as stored, their run log, dry runs, and events other systems post
//! (`POST /api/v1/events`). Running rules is in `automation_run.rs`.

use serde::Serialize;
use serde_json::Value;

use super::automation_run::{parse_definition, run_status, ActionOutcome, NewEvent, RunSubject};
use super::*;
use crate::automation::{self, condition_result, trigger_matches, Event, RuleSpec, Trigger};

/// A rule with its bookkeeping.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub version: i64,
    /// The built-in example's key (it can be turned off, not deleted).
    pub builtin: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_run_at: Option<i64>,
}

/// One run in the log.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub rule_id: i64,
    pub rule_version: i64,
    pub status: String,
    pub trigger: String,
    pub subject: String,
    pub detail: String,
    pub context: Value,
    pub actions: Vec<ActionOutcome>,
    pub started_at: i64,
}

/// What a rule would do for a sample event.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// Whether the trigger is for the sample (a held-status sample always is).
    pub trigger_matches: bool,
    /// `true`/`false`, or the error that stopped the evaluation.
    pub conditions: Result<bool, String>,
    pub actions: Vec<ActionOutcome>,
    pub status: &'static str,
}

type RuleDbRow = (i64, String, i64, Option<String>, i64, i64, Option<i64>);

const RULE_SELECT: &str = "select r.rule_id, r.definition, r.version, r.builtin, r.created_at, r.updated_at,
        (select max(started_at) from automation_run x where x.rule_id = r.rule_id) from automation_rule r";

fn rule_row((id, definition, version, builtin, created_at, updated_at, last_run_at): RuleDbRow) -> CoreResult<RuleRow> {
    Ok(RuleRow { id, spec: parse_definition(id, &definition)?, version, builtin, created_at, updated_at, last_run_at })
}

fn not_found(id: i64) -> CoreError {
    CoreError::not_found("rule_not_found", format!("automation rule {id}"))
}

impl Store {
    pub async fn automation_rules(&self) -> CoreResult<Vec<RuleRow>> {
        let rows: Vec<RuleDbRow> =
            on_db!(self, pool => sqlx::query_as(&format!("{RULE_SELECT} order by r.rule_id")).fetch_all(pool).await?);
        rows.into_iter().map(rule_row).collect()
    }

    pub async fn automation_rule(&self, id: i64) -> CoreResult<RuleRow> {
        let row: Option<RuleDbRow> =
            on_db!(self, pool => sqlx::query_as(&format!("{RULE_SELECT} where r.rule_id = $1")).bind(id).fetch_optional(pool).await?);
        rule_row(row.ok_or_else(|| not_found(id))?)
    }

    /// Checks what only the store knows: the templates the actions send exist.
    async fn check_rule(&self, spec: &RuleSpec) -> CoreResult<()> {
        let keys: Vec<String> = self.attribute_defs().await?.into_iter().map(|d| d.key).collect();
        spec.check_with(Some(&keys))?;
        for t in spec.templates() {
            let found: Option<String> = on_db!(self, pool => sqlx::query_scalar("select name from message_template where name = $1").bind(t).fetch_optional(pool).await?);
            if found.is_none() {
                return Err(InputError::new("invalid_rule", format!("there is no template {t} (Settings → Templates)")).into());
            }
        }
        for e in spec.endpoints() {
            self.webhook_endpoint(e).await.map_err(|_| {
                InputError::new("invalid_rule", format!("there is no webhook endpoint {e} (GET /api/v1/webhook-endpoints)"))
            })?;
        }
        Ok(())
    }

    pub async fn create_rule(&self, spec: &RuleSpec) -> CoreResult<RuleRow> {
        self.check_rule(spec).await?;
        let now = now_ms();
        let def = serde_json::to_string(spec).map_err(|e| CoreError::Internal(e.to_string()))?;
        let id: i64 = on_db!(self, pool => sqlx::query_scalar(
            "insert into automation_rule (name, enabled, trigger_type, definition, created_at, updated_at) values ($1, $2, $3, $4, $5, $5) returning rule_id")
            .bind(spec.name.trim()).bind(spec.enabled).bind(spec.trigger.kind()).bind(&def).bind(now).fetch_one(pool).await?);
        self.automation_rule(id).await
    }

    /// Replaces a rule (its version goes up; runs keep the version they ran).
    pub async fn update_rule(&self, id: i64, spec: &RuleSpec) -> CoreResult<RuleRow> {
        self.check_rule(spec).await?;
        let def = serde_json::to_string(spec).map_err(|e| CoreError::Internal(e.to_string()))?;
        let done = on_db!(self, pool => sqlx::query(
            "update automation_rule set name = $1, enabled = $2, trigger_type = $3, definition = $4, version = version + 1, updated_at = $5 where rule_id = $6")
            .bind(spec.name.trim()).bind(spec.enabled).bind(spec.trigger.kind()).bind(&def).bind(now_ms()).bind(id).execute(pool).await?
            .rows_affected());
        if done == 0 {
            return Err(not_found(id));
        }
        self.automation_rule(id).await
    }

    /// Turns a rule on or off.
    pub async fn set_rule_enabled(&self, id: i64, enabled: bool) -> CoreResult<RuleRow> {
        let mut rule = self.automation_rule(id).await?;
        rule.spec.enabled = enabled;
        self.update_rule(id, &rule.spec).await
    }

    /// Deletes a rule and its run log; the built-in example is turned off instead.
    pub async fn delete_rule(&self, id: i64) -> CoreResult<()> {
        let rule = self.automation_rule(id).await?;
        if rule.builtin.is_some() {
            return Err(CoreError::conflict("builtin_rule", "The built-in example can be turned off or changed, not deleted."));
        }
        on_db!(self, pool => {
            sqlx::query("delete from automation_run_action where run_id in (select run_id from automation_run where rule_id = $1)").bind(id).execute(pool).await?;
            sqlx::query("delete from automation_run where rule_id = $1").bind(id).execute(pool).await?;
            sqlx::query("delete from automation_rule where rule_id = $1").bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// Stores the built-in example (disabled) unless it is there.
    pub(crate) async fn seed_rules(&self) -> CoreResult<()> {
        let spec = automation::builtin_reminder();
        let def = serde_json::to_string(&spec).map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = now_ms();
        on_db!(self, pool => { sqlx::query(
            "insert into automation_rule (name, enabled, trigger_type, definition, builtin, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $6) on conflict (builtin) do nothing")
            .bind(&spec.name).bind(false).bind(spec.trigger.kind()).bind(&def).bind(automation::BUILTIN_REMINDER).bind(now).execute(pool).await?; });
        Ok(())
    }

    /// A rule's runs, newest first (`before`: runs older than that id).
    /// The domain events about a subject (a drop number, a phone number), newest first:
    /// (type, payload, when).
    pub async fn events_of(&self, subject: &str, limit: i64) -> CoreResult<Vec<(String, Value, i64)>> {
        let rows: Vec<(String, String, i64)> = on_db!(self, pool => sqlx::query_as(
            "select type, payload, occurred_at from domain_event where subject = $1 order by event_id desc limit $2")
            .bind(subject).bind(limit).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(t, p, at)| (t, serde_json::from_str(&p).unwrap_or(Value::String(p)), at)).collect())
    }

    pub async fn automation_runs(&self, rule_id: i64, before: Option<i64>, limit: i64) -> CoreResult<Vec<RunRow>> {
        self.runs_where("r.rule_id = $1", Arg::I(rule_id), before, limit).await
    }

    /// The runs that touched a contact (the contact's page), newest first.
    pub async fn contact_runs(&self, phone: &Phone, limit: i64) -> CoreResult<Vec<RunRow>> {
        self.runs_where("r.contact_phone = $1", Arg::S(phone.to_string()), None, limit).await
    }

    async fn runs_where(&self, cond: &str, arg: Arg, before: Option<i64>, limit: i64) -> CoreResult<Vec<RunRow>> {
        type Row = (i64, i64, i64, String, String, String, String, String, i64);
        let sql = format!(
            "select r.run_id, r.rule_id, r.rule_version, r.status, r.trigger_type, r.subject, r.detail, r.context, r.started_at
             from automation_run r where {cond} and r.run_id < $2 order by r.run_id desc limit $3"
        );
        let args = [arg, Arg::I(before.unwrap_or(i64::MAX)), Arg::I(limit)];
        let rows: Vec<Row> = on_db!(self, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?);
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        type ActionDbRow = (i64, i64, String, String, String, Option<i64>, String, Option<String>);
        let mut actions: Vec<ActionDbRow> = vec![];
        for chunk in ids.chunks(200) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let q = format!(
                "select a.run_id, a.idx, a.type, a.recipient, a.status, a.message_id, a.detail, m.status from automation_run_action a
                 left join message m on m.message_id = a.message_id where a.run_id in ({list}) order by a.run_id, a.idx, a.recipient"
            );
            actions.extend(on_db!(self, pool => sqlx::query_as::<_, ActionDbRow>(&q).fetch_all(pool).await?));
        }
        Ok(rows
            .into_iter()
            .map(|(id, rule_id, rule_version, status, trigger, subject, detail, context, started_at)| RunRow {
                id,
                rule_id,
                rule_version,
                status,
                trigger,
                subject,
                detail,
                context: serde_json::from_str(&context).unwrap_or(Value::String(context)),
                actions: actions
                    .iter()
                    .filter(|a| a.0 == id)
                    .map(|(_, idx, kind, recipient, status, message_id, detail, message_status)| ActionOutcome {
                        idx: *idx,
                        kind: kind.clone(),
                        recipient: recipient.clone(),
                        status: status.clone(),
                        message_id: *message_id,
                        detail: detail.clone(),
                        message_status: message_status.clone(),
                    })
                    .collect(),
                started_at,
            })
            .collect())
    }

    /// What a rule would do for a sample event (its context: for drop triggers the drop's
    /// variables, for an inbound message `text` and `phone`, for an API event its data):
    /// trigger, conditions, and each action with its rendered text and recipient. Writes
    /// nothing (the transaction is rolled back).
    pub async fn dry_run(&self, id: i64, sample: &Value) -> CoreResult<DryRun> {
        let rule = self.automation_rule(id).await?;
        if !sample.is_object() {
            return Err(InputError::new("invalid_sample", "the sample event is a JSON object of the trigger's variables").into());
        }
        let s = |k: &str| sample.get(k).and_then(Value::as_str).unwrap_or("");
        let status = |k: &str| DropStatus::parse(s(k)).ok();
        let matches = match &rule.spec.trigger {
            Trigger::DropStatusChanged { .. } => match (status("from"), status("status")) {
                (Some(from), Some(to)) => trigger_matches(&rule.spec.trigger, &Event::DropStatusChanged { from, to }),
                _ => {
                    return Err(InputError::new(
                        "invalid_sample",
                        "a drop.status_changed sample needs \"from\" and \"status\" (drop statuses)",
                    )
                    .into())
                }
            },
            Trigger::DropStatusHeld { .. }
            | Trigger::ScheduleCron { .. }
            | Trigger::ContactCreated {}
            | Trigger::ContactOptedOut {}
            | Trigger::ContactBirthday { .. } => true,
            Trigger::ContactUpdated { .. } => {
                let changed: Vec<String> = match sample.get("changed").and_then(Value::as_array) {
                    Some(list) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                    None => vec![],
                };
                trigger_matches(&rule.spec.trigger, &Event::ContactUpdated { changed: &changed })
            }
            Trigger::ContactTagAdded { .. } => trigger_matches(&rule.spec.trigger, &Event::ContactTag { added: true, tag: s("tag") }),
            Trigger::ContactTagRemoved { .. } => trigger_matches(&rule.spec.trigger, &Event::ContactTag { added: false, tag: s("tag") }),
            Trigger::MessageInbound { .. } => trigger_matches(&rule.spec.trigger, &Event::MessageInbound { text: s("text") }),
            Trigger::ApiEvent { event } => trigger_matches(&rule.spec.trigger, &Event::ApiEvent { event }),
        };
        let conditions = condition_result(&rule.spec.conditions, sample);
        let mut actions = vec![];
        if matches && conditions == Ok(true) {
            let mut tx = self.begin().await?;
            for (idx, a) in rule.spec.actions.iter().enumerate() {
                actions.extend(tx.perform(a, idx as i64, sample, None, None, now_ms()).await?);
            }
            tx.rollback().await?;
        }
        let status = match (&conditions, matches) {
            (_, false) => "trigger_does_not_match",
            (Err(_), _) => "condition_error",
            (Ok(false), _) => "skipped",
            (Ok(true), _) => run_status(&actions),
        };
        Ok(DryRun { trigger_matches: matches, conditions, actions, status })
    }

    /// An event another system posts: recorded once per idempotency key (the same key again
    /// returns the first event's id, `false`), and the `api.event` rules for its type run in
    /// the same transaction. `data.phone`, when it is a number, is the event's contact.
    pub async fn post_event(&self, kind: &str, data: &Value, idempotency_key: Option<&str>) -> CoreResult<(i64, bool)> {
        automation::check_event_type(kind)?;
        if !data.is_object() {
            return Err(InputError::new("invalid_event", "\"data\" is a JSON object").into());
        }
        if data.to_string().len() > 64 * 1024 {
            return Err(InputError::new("invalid_event", "\"data\" is at most 64 KB of JSON").into());
        }
        if idempotency_key.is_some_and(|k| k.is_empty() || k.len() > 400) {
            return Err(InputError::new("invalid_idempotency_key", "the idempotency key has 1–400 characters").into());
        }
        let key = idempotency_key.map(|k| format!("event:{k}"));
        let phone = data.get("phone").and_then(Value::as_str).and_then(|p| Phone::parse(p).ok()).map(|p| p.to_string());
        let subject = phone.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let ev = NewEvent { kind, subject: &subject, payload: data, origin: "api", depth: 0, idempotency_key: key.as_deref() };
        let Some(event_id) = tx.record_event(&ev).await? else {
            tx.rollback().await?;
            let id: i64 = on_db!(self, pool => sqlx::query_scalar("select event_id from domain_event where idempotency_key = $1")
                .bind(&key).fetch_one(pool).await?);
            return Ok((id, false));
        };
        let mut ctx = data.clone();
        if let Some(m) = ctx.as_object_mut() {
            m.insert("event".into(), kind.into());
        }
        let s = RunSubject { subject, drop_id: None, contact_phone: phone, episode_at: None, event_id: Some(event_id) };
        tx.run_rules(&Event::ApiEvent { event: kind }, &ctx, &s, 0).await?;
        tx.commit().await?;
        Ok((event_id, true))
    }
}
