//! Running automation rules inside the transaction of the change that caused them: the
//! domain event, the rules it matches, each run with its actions and the messages they
//! queue all commit together, or none of it does. Once-only rests on unique keys: a run's
//! `dedupe_key` (`ev:{event}:{rule}`, `held:{rule}:{drop}:{since}`) and each message's
//! idempotency key (`auto:{run}:{idx}:{phone}`).

use serde_json::Value;

use super::*;
use crate::automation::{self, condition_result, trigger_matches, ActionSpec, Event, RuleSpec};

/// A domain event as recorded.
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub payload: &'a Value,
    pub origin: &'a str,
    pub depth: i64,
    pub idempotency_key: Option<&'a str>,
}

/// What a run is about, for its log row.
#[derive(Default, Clone)]
pub(crate) struct RunSubject {
    pub subject: String,
    pub drop_id: Option<i64>,
    pub contact_phone: Option<String>,
    pub episode_at: Option<i64>,
    pub event_id: Option<i64>,
}

/// One action's outcome (one per recipient for sends).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionOutcome {
    pub idx: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub recipient: String,
    /// `done` | `skipped` | `failed` (a dry run: `would_send` | `skipped` | `failed`).
    pub status: String,
    pub message_id: Option<i64>,
    /// What was sent, or why it was skipped or failed.
    pub detail: String,
    /// The message's delivery status now (in the run log; not stored with the action).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// How a rule's run went, from its actions' outcomes.
pub(crate) fn run_status(outcomes: &[ActionOutcome]) -> &'static str {
    let failed = outcomes.iter().filter(|o| o.status == "failed").count();
    let done = outcomes.iter().filter(|o| o.status != "failed" && o.status != "skipped").count();
    match (failed, done) {
        (0, 0) => "skipped",
        (0, _) => "succeeded",
        (_, 0) => "failed",
        _ => "partial",
    }
}

/// The run an action belongs to: its rule, and the depth of the event that ran it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cause {
    pub rule_id: i64,
    pub run_id: i64,
    pub depth: i64,
}

/// The enabled rules of a trigger type, in rule order (read inside an event's transaction,
/// or on the pool by the sweeps).
pub(crate) const ENABLED_RULES: &str =
    "select rule_id, version, definition, updated_at from automation_rule where trigger_type = $1 and enabled = $2 order by rule_id";

pub(crate) fn live_rules(rows: Vec<(i64, i64, String, i64)>) -> CoreResult<Vec<LiveRule>> {
    rows.into_iter()
        .map(|(rule_id, version, d, updated_at)| Ok(LiveRule { rule_id, version, spec: parse_definition(rule_id, &d)?, updated_at }))
        .collect()
}

/// A stored rule, parsed.
pub(crate) struct LiveRule {
    pub rule_id: i64,
    pub version: i64,
    pub spec: RuleSpec,
    /// When it was last created, changed or turned on: a schedule fires instants after this.
    pub updated_at: i64,
}

pub(crate) fn parse_definition(rule_id: i64, definition: &str) -> CoreResult<RuleSpec> {
    serde_json::from_str(definition)
        .map_err(|e| CoreError::Internal(format!("automation rule {rule_id}: stored definition unreadable: {e}")))
}

impl Tx<'_> {
    /// Does a run's actions from `from` on, logging each outcome, until the end or a delay
    /// (the run then waits: `resume_at`, `resume_idx`). Returns the run's status.
    pub(crate) async fn run_actions(
        &mut self,
        actions: &[ActionSpec],
        from: usize,
        ctx: &Value,
        cause: Cause,
        drop_id: Option<i64>,
        now: i64,
    ) -> CoreResult<&'static str> {
        let mut outcomes = vec![];
        let mut resume: Option<(i64, i64)> = None;
        for (idx, action) in actions.iter().enumerate().skip(from) {
            if let ActionSpec::Delay { minutes } = action {
                let at = now + i64::from(*minutes) * 60_000;
                outcomes.push(ActionOutcome {
                    idx: idx as i64,
                    kind: "delay".into(),
                    recipient: String::new(),
                    status: "waiting".into(),
                    message_id: None,
                    detail: format!("until {}", crate::fmt_time(at)),
                    message_status: None,
                });
                resume = Some((idx as i64 + 1, at));
                break;
            }
            outcomes.extend(self.perform(action, idx as i64, ctx, Some(cause), drop_id, now).await?);
        }
        for o in &outcomes {
            on_tx!(self, c => { sqlx::query(
                "insert into automation_run_action (run_id, idx, type, recipient, status, message_id, detail) values ($1, $2, $3, $4, $5, $6, $7)")
                .bind(cause.run_id).bind(o.idx).bind(&o.kind).bind(&o.recipient).bind(&o.status).bind(o.message_id).bind(&o.detail)
                .execute(&mut *c).await?; });
        }
        let status = match resume {
            Some(_) => "waiting",
            None => {
                // Over the whole run (a resumed run has the outcomes of its earlier part).
                let all: Vec<String> = on_tx!(self, c => sqlx::query_scalar("select status from automation_run_action where run_id = $1 and type <> 'delay'")
                    .bind(cause.run_id).fetch_all(&mut *c).await?);
                let seen: Vec<ActionOutcome> = all
                    .into_iter()
                    .map(|status| ActionOutcome {
                        idx: 0,
                        kind: String::new(),
                        recipient: String::new(),
                        status,
                        message_id: None,
                        detail: String::new(),
                        message_status: None,
                    })
                    .collect();
                run_status(&seen)
            }
        };
        on_tx!(self, c => { sqlx::query("update automation_run set status = $1, resume_at = $2, resume_idx = $3, depth = $4 where run_id = $5")
            .bind(status).bind(resume.map(|r| r.1)).bind(resume.map(|r| r.0)).bind(cause.depth).bind(cause.run_id).execute(&mut *c).await?; });
        Ok(status)
    }

    /// Records a domain event; `None` when its idempotency key was recorded before.
    /// A recorded event also goes, in the same transaction, to every enabled webhook
    /// endpoint that subscribes to its type.
    pub async fn record_event(&mut self, ev: &NewEvent<'_>) -> CoreResult<Option<i64>> {
        let payload = ev.payload.to_string();
        let id: Option<i64> = on_tx!(self, c => sqlx::query_scalar(
            "insert into domain_event (type, subject, payload, origin, depth, idempotency_key, occurred_at)
             values ($1, $2, $3, $4, $5, $6, $7) on conflict (idempotency_key) do nothing returning event_id")
            .bind(ev.kind).bind(ev.subject).bind(&payload).bind(ev.origin).bind(ev.depth).bind(ev.idempotency_key).bind(now_ms())
            .fetch_optional(&mut *c).await?);
        if let Some(id) = id {
            self.queue_webhook(&crate::webhooks::new_message_id(), Some(id), ev.kind, ev.payload, None).await?;
        }
        Ok(id)
    }

    /// Records `message.failed` for an outbound message the sender gave up on.
    pub async fn message_failed(&mut self, id: crate::ids::MessageId, code: &str, text: &str) -> CoreResult<()> {
        let row: Option<(String, Option<String>, Option<String>)> = on_tx!(self, c => sqlx::query_as(
            "select phone, template, reference_id from message where message_id = $1").bind(id).fetch_optional(&mut *c).await?);
        let Some((phone, template, reference_id)) = row else { return Ok(()) };
        let payload = serde_json::json!({"message_id": id.0, "phone": phone, "template": template, "reference_id": reference_id,
            "error_code": code, "error": text});
        let ev = NewEvent { kind: "message.failed", subject: &phone, payload: &payload, origin: "system", depth: 0, idempotency_key: None };
        self.record_event(&ev).await?;
        self.campaign_message_failed(id.0, code, now_ms()).await?;
        Ok(())
    }

    /// Records `drop.photo_added` for a photo filed on a drop's step.
    pub(crate) async fn photo_added(&mut self, detail: &DropDetail, step: i64, photo_id: i64, sha256: &str, round: i64) -> CoreResult<()> {
        let payload = serde_json::json!({"drop_number": detail.drop_number.as_str(), "project": detail.project, "step": step,
            "photo_id": photo_id, "sha256": sha256, "round": round,
            "contractor_phone": detail.contractor.as_ref().map(|c| c.phone.to_string())});
        let ev = NewEvent {
            kind: "drop.photo_added",
            subject: detail.drop_number.as_str(),
            payload: &payload,
            origin: "inbound",
            depth: 0,
            idempotency_key: None,
        };
        self.record_event(&ev).await?;
        Ok(())
    }

    pub(crate) async fn enabled_rules(&mut self, trigger_type: &str) -> CoreResult<Vec<LiveRule>> {
        live_rules(on_tx!(self, c => sqlx::query_as(ENABLED_RULES).bind(trigger_type).bind(true).fetch_all(&mut *c).await?))
    }

    /// Records a drop's status change as `drop.status_changed` and runs the rules it matches.
    pub async fn drop_status_changed(&mut self, detail: &DropDetail, to: DropStatus) -> CoreResult<()> {
        let ctx = automation::drop_context(
            detail.drop_number.as_str(),
            &detail.project,
            to,
            Some(detail.status),
            detail.round,
            detail.contractor.as_ref().map(|c| (c.name.as_str(), c.phone.as_str())),
        );
        let ev = NewEvent {
            kind: "drop.status_changed",
            subject: detail.drop_number.as_str(),
            payload: &ctx,
            origin: "system",
            depth: 0,
            idempotency_key: None,
        };
        let Some(event_id) = self.record_event(&ev).await? else { return Ok(()) };
        let subject = RunSubject {
            subject: detail.drop_number.to_string(),
            drop_id: Some(detail.drop_id.get()),
            contact_phone: detail.contractor.as_ref().map(|c| c.phone.to_string()),
            episode_at: None,
            event_id: Some(event_id),
        };
        self.run_rules(&Event::DropStatusChanged { from: detail.status, to }, &ctx, &subject, 0).await?;
        Ok(())
    }

    /// Records a contractor's text that no command took as `message.inbound` and runs the
    /// keyword rules it matches. Returns whether one ran its actions (then the bot's "did not
    /// understand" hint is not sent).
    pub async fn message_inbound(&mut self, phone: &Phone, name: &str, text: &str, drop_number: Option<&str>) -> CoreResult<bool> {
        let ctx = serde_json::json!({"phone": phone.as_str(), "name": name, "text": text, "drop_number": drop_number});
        let ev = NewEvent {
            kind: "message.inbound",
            subject: phone.as_str(),
            payload: &ctx,
            origin: "inbound",
            depth: 0,
            idempotency_key: None,
        };
        let Some(event_id) = self.record_event(&ev).await? else { return Ok(false) };
        let subject = RunSubject {
            subject: phone.to_string(),
            contact_phone: Some(phone.to_string()),
            event_id: Some(event_id),
            ..Default::default()
        };
        self.run_rules(&Event::MessageInbound { text }, &ctx, &subject, 0).await
    }

    /// Runs every enabled rule whose trigger matches `event`, in rule order, each once per
    /// event (its dedupe key); a run whose rule says `stop_processing` ends the list. Events
    /// at [`automation::MAX_DEPTH`] run no rule. Returns whether any rule ran its actions.
    pub(crate) async fn run_rules(&mut self, event: &Event<'_>, ctx: &Value, subject: &RunSubject, depth: i64) -> CoreResult<bool> {
        self.run_rules_caused(event, ctx, subject, depth, None).await
    }

    /// [`Tx::run_rules`] for an event a rule's action caused (`caused_by`): that rule does
    /// not run for it (a rule is never its own trigger).
    pub(crate) async fn run_rules_caused(
        &mut self,
        event: &Event<'_>,
        ctx: &Value,
        subject: &RunSubject,
        depth: i64,
        caused_by: Option<i64>,
    ) -> CoreResult<bool> {
        if depth >= automation::MAX_DEPTH {
            tracing::warn!(subject = %subject.subject, depth, "automation loop guard: an event this deep runs no rule");
            return Ok(false);
        }
        let kind = event.kind();
        let mut any = false;
        // Rules whose conditions do not hold are logged together, in one statement per 50
        // (on PostgreSQL each statement is a round trip).
        let mut quiet: Vec<(LiveRule, &'static str, String)> = vec![];
        for rule in self.enabled_rules(kind).await? {
            if !trigger_matches(&rule.spec.trigger, event) || caused_by == Some(rule.rule_id) {
                continue;
            }
            match condition_result(&rule.spec.conditions, ctx) {
                Ok(true) => {}
                Ok(false) => {
                    quiet.push((rule, "skipped", "conditions not met".into()));
                    continue;
                }
                Err(e) => {
                    quiet.push((rule, "condition_error", e));
                    continue;
                }
            }
            let key = format!("ev:{}:{}", subject.event_id.unwrap_or_default(), rule.rule_id);
            if let Some((_, ran)) = self.fire(&rule, &key, ctx, subject, depth).await? {
                any |= ran;
                if ran && rule.spec.stop_processing {
                    break;
                }
            }
        }
        let ctx_json = ctx.to_string();
        let now = now_ms();
        for chunk in quiet.chunks(50) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 13;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9,
                        b + 10,
                        b + 11,
                        b + 12,
                        b + 13
                    )
                })
                .collect();
            let sql = format!(
                "insert into automation_run (rule_id, rule_version, trigger_type, event_id, subject, drop_id, contact_phone, episode_at,
                    dedupe_key, status, detail, context, started_at) values {} on conflict (dedupe_key) do nothing",
                rows.join(", ")
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for (rule, status, detail) in chunk {
                    q = q.bind(rule.rule_id).bind(rule.version).bind(rule.spec.trigger.kind()).bind(subject.event_id).bind(&subject.subject)
                        .bind(subject.drop_id).bind(&subject.contact_phone).bind(subject.episode_at)
                        .bind(format!("ev:{}:{}", subject.event_id.unwrap_or_default(), rule.rule_id))
                        .bind(*status).bind(detail).bind(&ctx_json).bind(now);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(any)
    }

    /// One run of a rule: logged under `dedupe_key` (a key logged before: nothing happens,
    /// `None`), conditions evaluated, actions done in order. Returns the run's id and whether
    /// its conditions held.
    pub(crate) async fn fire(
        &mut self,
        rule: &LiveRule,
        dedupe_key: &str,
        ctx: &Value,
        s: &RunSubject,
        depth: i64,
    ) -> CoreResult<Option<(i64, bool)>> {
        let now = now_ms();
        let ctx_json = ctx.to_string();
        // Conditions first: a run that does nothing is logged in one statement.
        let held = condition_result(&rule.spec.conditions, ctx);
        let (first_status, first_detail) = match &held {
            Err(e) => ("condition_error", e.clone()),
            Ok(false) => ("skipped", "conditions not met".to_string()),
            Ok(true) => ("running", String::new()),
        };
        let run_id: Option<i64> = on_tx!(self, c => sqlx::query_scalar(
            "insert into automation_run (rule_id, rule_version, trigger_type, event_id, subject, drop_id, contact_phone, episode_at,
                dedupe_key, status, detail, context, started_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) on conflict (dedupe_key) do nothing returning run_id")
            .bind(rule.rule_id).bind(rule.version).bind(rule.spec.trigger.kind()).bind(s.event_id).bind(&s.subject).bind(s.drop_id)
            .bind(&s.contact_phone).bind(s.episode_at).bind(dedupe_key).bind(first_status).bind(&first_detail).bind(&ctx_json).bind(now)
            .fetch_optional(&mut *c).await?);
        let Some(run_id) = run_id else { return Ok(None) };
        let ran = held == Ok(true);
        let mut status = first_status;
        if ran {
            let cause = Cause { rule_id: rule.rule_id, run_id, depth };
            status = self.run_actions(&rule.spec.actions, 0, ctx, cause, s.drop_id, now).await?;
        }
        if ran {
            tracing::info!(rule = rule.rule_id, run = run_id, status, subject = %s.subject, "automation rule ran");
        } else {
            tracing::debug!(rule = rule.rule_id, run = run_id, status, subject = %s.subject, "automation rule skipped");
        }
        Ok(Some((run_id, ran)))
    }
}
