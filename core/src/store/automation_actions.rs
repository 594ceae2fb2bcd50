//! What each action does, inside its run's transaction (or, for a dry run, what it would
//! do). Failures that belong to an action are its outcome, never the transaction's error.

use serde_json::{Map, Value};

use super::automation_run::{ActionOutcome, Cause};
use super::*;
use crate::automation::{self, render_text, ActionSpec, Recipient};
use crate::outbox::SESSION_WINDOW_MS;

impl Tx<'_> {
    /// Does one action (`run` = `None`: a dry run, which writes nothing and says what would
    /// be sent). Failures that belong to the action (a template that does not render, a
    /// contact who opted out) are its outcome, never an error of the transaction.
    pub(crate) async fn perform(
        &mut self,
        action: &ActionSpec,
        idx: i64,
        ctx: &Value,
        cause: Option<Cause>,
        drop_id: Option<i64>,
        now: i64,
    ) -> CoreResult<Vec<ActionOutcome>> {
        let run = cause.as_ref().map(|c| c.run_id);
        let out = |recipient: &str, status: &str, message_id: Option<i64>, detail: String| ActionOutcome {
            idx,
            kind: action.kind().into(),
            recipient: recipient.into(),
            status: status.into(),
            message_id,
            detail,
            message_status: None,
        };
        if let ActionSpec::AddTag { tag } | ActionSpec::RemoveTag { tag } = action {
            let add = matches!(action, ActionSpec::AddTag { .. });
            let Some(phone) = contact_phone(ctx) else {
                return Ok(vec![out("", "skipped", None, "this event has no contact to tag".into())]);
            };
            let Some(c) = cause else {
                return Ok(vec![out(&phone, "would_send", None, format!("{} tag {tag}", if add { "add" } else { "remove" }))]);
            };
            let phone_parsed = Phone::parse(&phone)?;
            let by = format!("automation rule {}", c.rule_id);
            let changed =
                self.set_tag(&phone_parsed, tag, add, &super::TagCause { by: &by, rule: Some(c.rule_id), depth: c.depth + 1 }).await?;
            let what = match (add, changed) {
                (true, true) => format!("tagged {tag}"),
                (true, false) => format!("already tagged {tag}"),
                (false, true) => format!("tag {tag} removed"),
                (false, false) => format!("was not tagged {tag}"),
            };
            return Ok(vec![out(&phone, if changed { "done" } else { "skipped" }, None, what)]);
        }
        if let ActionSpec::Delay { minutes } = action {
            // A run waits in `fire`; here only a dry run asks.
            return Ok(vec![out("", "would_send", None, format!("wait {}, then the next actions", automation::minutes_text(*minutes)))]);
        }
        if let ActionSpec::SetAttribute { key, value } = action {
            let Some(phone) = contact_phone(ctx) else {
                return Ok(vec![out("", "skipped", None, "this event has no contact".into())]);
            };
            let value = match value.as_str() {
                Some(text) => match render_text(text, ctx) {
                    Ok(v) => Value::from(v),
                    Err(e) => return Ok(vec![out(&phone, "failed", None, format!("the value does not render: {e}"))]),
                },
                None => value.clone(),
            };
            let defs = self.attribute_defs_in().await?;
            let Some(def) = defs.iter().find(|d| &d.key == key) else {
                return Ok(vec![out(&phone, "failed", None, format!("there is no attribute {key}"))]);
            };
            if let Err(e) = if value.is_null() { Ok(String::new()) } else { def.canonical(&value) } {
                return Ok(vec![out(&phone, "failed", None, e)]);
            }
            let Some(c) = cause else { return Ok(vec![out(&phone, "would_send", None, format!("set {key} = {value}"))]) };
            let by = format!("automation rule {}", c.rule_id);
            let mut u = crate::contacts::ContactUpdate::default();
            u.attributes.insert(key.clone(), value.clone());
            let cause = super::TagCause { by: &by, rule: Some(c.rule_id), depth: c.depth + 1 };
            let change = self.apply_contact(&Phone::parse(&phone)?, &u, &defs, &cause, true).await?;
            let done = !change.changed.is_empty();
            let what = if done { format!("set {key} = {value}") } else { format!("{key} was {value} already") };
            return Ok(vec![out(&phone, if done { "done" } else { "skipped" }, None, what)]);
        }
        if let ActionSpec::CallWebhook { endpoint } = action {
            let url: Option<String> = on_tx!(self, c => sqlx::query_scalar("select url from webhook_endpoint where endpoint_id = $1 and enabled = 1")
                .bind(endpoint).fetch_optional(&mut *c).await?);
            let Some(url) = url else {
                return Ok(vec![out("", "failed", None, format!("webhook endpoint {endpoint} is gone or disabled"))]);
            };
            let Some(run_id) = run else { return Ok(vec![out(&url, "would_send", None, ctx.to_string())]) };
            // The message id is the run's and the action's: a retry of this run queues nothing new.
            let id = format!("msg_auto_{run_id}_{idx}");
            self.queue_webhook(&id, None, "automation.call_webhook", ctx, Some(*endpoint)).await?;
            return Ok(vec![out(&url, "done", None, format!("queued as {id}"))]);
        }
        let recipients: Vec<String> = match action {
            ActionSpec::SendTemplate { to, .. } | ActionSpec::SendText { to, .. } => match to {
                Recipient::Number(p) => vec![p.to_string()],
                Recipient::Tag(t) => {
                    let phones: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
                        "select c.phone from contact c join contact_tag ct on ct.contact_id = c.contact_id join tag t on t.tag_id = ct.tag_id
                         where t.name_key = $1 order by c.contact_id limit $2")
                        .bind(t.to_lowercase()).bind(automation::MAX_TAG_RECIPIENTS + 1).fetch_all(&mut *c).await?);
                    if phones.is_empty() {
                        return Ok(vec![out(&format!("tag:{t}"), "skipped", None, format!("no contact is tagged {t}"))]);
                    }
                    if phones.len() as i64 > automation::MAX_TAG_RECIPIENTS {
                        let why = format!("more than {} contacts are tagged {t}: send it as a broadcast", automation::MAX_TAG_RECIPIENTS);
                        return Ok(vec![out(&format!("tag:{t}"), "failed", None, why)]);
                    }
                    phones
                }
                Recipient::Contact => match contact_phone(ctx) {
                    Some(p) => vec![p],
                    None => return Ok(vec![out("", "skipped", None, "this event has no contact number to send to".into())]),
                },
            },
            ActionSpec::CallWebhook { .. }
            | ActionSpec::AddTag { .. }
            | ActionSpec::RemoveTag { .. }
            | ActionSpec::SetAttribute { .. }
            | ActionSpec::Delay { .. } => {
                vec![]
            }
            ActionSpec::NotifyUsers { .. } => {
                let phones: Vec<String> = on_tx!(self, c => sqlx::query_scalar("select phone from app_user where phone is not null order by user_id")
                    .fetch_all(&mut *c).await?);
                if phones.is_empty() {
                    return Ok(vec![out("", "skipped", None, "no user has linked a WhatsApp number (Settings → Integrations)".into())]);
                }
                phones
            }
        };
        let mut outcomes = vec![];
        for phone in recipients {
            let contact: Option<(i64, Option<String>, Option<i64>)> = on_tx!(self, c => sqlx::query_as(
                "select opted_out, muted_types, last_inbound_at from contact where phone = $1").bind(&phone).fetch_optional(&mut *c).await?);
            let (opted_out, muted, last_inbound) =
                contact.map(|(o, m, l)| (o != 0, crate::notify::parse_muted(m.as_deref()), l)).unwrap_or_default();
            if opted_out && !matches!(action, ActionSpec::NotifyUsers { .. }) {
                outcomes.push(out(&phone, "skipped", None, "the contact sent STOP".into()));
                continue;
            }
            // What to send: (template name, body) or a failure/skip reason.
            let plan: Result<(Option<String>, String, Value), (&str, String)> = match action {
                ActionSpec::SendTemplate { template, variables, .. } => self.render_template(template, variables, ctx, &muted).await?,
                ActionSpec::SendText { text, fallback_template, .. } => {
                    let in_window = last_inbound.is_some_and(|t| t >= now - SESSION_WINDOW_MS);
                    match (in_window, fallback_template) {
                        (true, _) => render_text(text, ctx)
                            .map(|b| (None, b, ctx.clone()))
                            .map_err(|e| ("failed", format!("the text does not render: {e}"))),
                        (false, Some(t)) => self.render_template(t, &Default::default(), ctx, &muted).await?,
                        (false, None) => Err((
                            "skipped",
                            "outside the 24-hour window (the contact has not written in the last 24 hours) and no fallback template".into(),
                        )),
                    }
                }
                ActionSpec::NotifyUsers { text } => {
                    render_text(text, ctx).map(|b| (None, b, ctx.clone())).map_err(|e| ("failed", format!("the text does not render: {e}")))
                }
                ActionSpec::CallWebhook { .. }
                | ActionSpec::AddTag { .. }
                | ActionSpec::RemoveTag { .. }
                | ActionSpec::SetAttribute { .. }
                | ActionSpec::Delay { .. } => Err(("failed", "this action has no message".into())),
            };
            let (template, body, vars) = match plan {
                Ok(p) => p,
                Err((status, why)) => {
                    outcomes.push(out(&phone, status, None, why));
                    continue;
                }
            };
            if body.is_empty() || body.chars().count() > 1600 {
                outcomes.push(out(&phone, "failed", None, format!("the message has {} characters (1–1600)", body.chars().count())));
                continue;
            }
            let Some(run_id) = run else {
                outcomes.push(out(&phone, "would_send", None, body));
                continue;
            };
            let key = format!("auto:{run_id}:{idx}:{phone}");
            let id = self.queue_keyed(&phone, &body, template.as_deref(), &vars, drop_id, &key, now).await?;
            outcomes.push(out(&phone, "done", id, body));
        }
        Ok(outcomes)
    }

    /// Queues an outbound message under an idempotency key (`None`: queued before).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn queue_keyed(
        &mut self,
        phone: &str,
        body: &str,
        template: Option<&str>,
        vars: &Value,
        drop_id: Option<i64>,
        key: &str,
        now: i64,
    ) -> CoreResult<Option<i64>> {
        let vars = vars.to_string();
        Ok(on_tx!(self, c => sqlx::query_scalar(
            "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at,
                idempotency_key, created_at, updated_at)
             values ('out', $1, $2, $3, $4, $5, 'queued', 0, $6, $7, $6, $6) on conflict (idempotency_key) do nothing returning message_id")
            .bind(phone).bind(body).bind(template).bind(&vars).bind(drop_id).bind(now).bind(key).fetch_optional(&mut *c).await?))
    }

    /// A template's body rendered with the context and the action's variables; `Err` is the
    /// action's outcome (disabled, muted, unknown, does not render).
    pub(crate) async fn render_template(
        &mut self,
        name: &str,
        variables: &std::collections::BTreeMap<String, String>,
        ctx: &Value,
        muted: &[String],
    ) -> CoreResult<Result<(Option<String>, String, Value), (&'static str, String)>> {
        let row: Option<(String, i64)> = on_tx!(self, c => sqlx::query_as("select body, enabled from message_template where name = $1")
            .bind(name).fetch_optional(&mut *c).await?);
        let Some((body, enabled)) = row else { return Ok(Err(("failed", format!("there is no template {name}")))) };
        if enabled == 0 {
            return Ok(Err(("skipped", format!("the {name} template is disabled"))));
        }
        if muted.iter().any(|m| m == name) {
            return Ok(Err(("skipped", format!("the contact does not want {name} messages"))));
        }
        let mut vars: Map<String, Value> = ctx.as_object().cloned().unwrap_or_default();
        for (k, text) in variables {
            match render_text(text, ctx) {
                Ok(v) => vars.insert(k.clone(), v.into()),
                Err(e) => return Ok(Err(("failed", format!("variable {k} does not render: {e}")))),
            };
        }
        if let Ok(t) = automation::env().template_from_str(&body) {
            let mut missing: Vec<String> = t.undeclared_variables(false).into_iter().filter(|v| !vars.contains_key(v)).collect();
            if !missing.is_empty() {
                missing.sort();
                return Ok(Err(("failed", format!("the {name} template uses {}, which this event does not have", missing.join(", ")))));
            }
        }
        let vars = Value::Object(vars);
        Ok(match crate::templates::render(name, &body, minijinja::Value::from_serialize(&vars)) {
            Ok(text) => Ok((Some(name.to_string()), text, vars)),
            Err(e) => Err(("failed", format!("{e}"))),
        })
    }
}

/// The trigger's contact: a drop's contractor, an inbound message's sender, an API event's
/// `phone`.
fn contact_phone(ctx: &Value) -> Option<String> {
    ["contractor_phone", "phone"]
        .iter()
        .filter_map(|k| ctx.get(*k).and_then(Value::as_str))
        .find_map(|p| Phone::parse(p).ok())
        .map(|p| p.to_string())
}
