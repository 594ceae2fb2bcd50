//! Broadcasts: a campaign's preflight (who is eligible, who is excluded and why), its start
//! (a recipient row each), the sweep that queues its messages at its pace under its daily
//! cap outside quiet hours, pause / resume / cancel, and WhatsApp's error codes applied to
//! its recipients (AUTOMATION.md §5).

use serde::Serialize;

use super::*;
use crate::contacts::campaign::{quiet_until, CampaignSpec};

/// A campaign with how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub id: i64,
    #[serde(flatten)]
    pub spec: CampaignSpec,
    pub status: String,
    pub detail: String,
    /// Recipients by status (`pending`, `queued`, `later`, `failed`, `excluded`).
    pub recipients: BTreeMap<String, i64>,
    /// Excluded (or, before the start, would be) by reason.
    pub excluded: BTreeMap<String, i64>,
    /// Eligible now (before the start: who would get it).
    pub eligible: i64,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A campaign in the list: what it sends to whom and how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignLine {
    pub id: i64,
    pub name: String,
    pub template: String,
    pub tag: String,
    pub status: String,
    pub detail: String,
    /// Recipients by status (empty for a draft).
    pub recipients: BTreeMap<String, i64>,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(FromRow)]
struct CampaignRow {
    name: String,
    template: String,
    variables: String,
    tag: String,
    status: String,
    pace_per_minute: i64,
    daily_cap: i64,
    quiet_start: Option<i64>,
    quiet_end: Option<i64>,
    blocked_prefixes: String,
    frequency_hours: i64,
    detail: String,
    created_by: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}
const CAMPAIGN_SELECT: &str = "select name, template, variables, tag, status, pace_per_minute, daily_cap, quiet_start, quiet_end,
    blocked_prefixes, frequency_hours, detail, created_by, created_at, started_at, finished_at from campaign";

fn hhmm(m: i64) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// The stored campaign as the API takes it (its JSON columns were written from it).
fn spec_of(r: &CampaignRow) -> CoreResult<CampaignSpec> {
    let unreadable = |e: serde_json::Error| CoreError::Internal(format!("campaign: stored JSON unreadable: {e}"));
    Ok(CampaignSpec {
        name: r.name.clone(),
        template: r.template.clone(),
        variables: serde_json::from_str(&r.variables).map_err(unreadable)?,
        tag: r.tag.clone(),
        pace_per_minute: r.pace_per_minute as u32,
        daily_cap: r.daily_cap as u32,
        quiet_hours: match (r.quiet_start, r.quiet_end) {
            (Some(s), Some(e)) => Some(crate::contacts::campaign::QuietHours { start: hhmm(s), end: hhmm(e) }),
            _ => None,
        },
        blocked_prefixes: serde_json::from_str(&r.blocked_prefixes).map_err(unreadable)?,
        frequency_hours: r.frequency_hours as u32,
    })
}

fn not_found(id: i64) -> CoreError {
    CoreError::not_found("campaign_not_found", format!("no campaign {id}"))
}

/// Why a contact does not get a campaign's message, if it does not.
fn exclusion(spec: &CampaignSpec, phone: &str, consent: &str, muted: Option<&str>, recent: bool) -> Option<String> {
    if consent == "opted_out" {
        return Some("opted out".into());
    }
    if consent != "opted_in" {
        return Some("not opted in for marketing".into());
    }
    if crate::notify::parse_muted(muted).iter().any(|m| m == &spec.template) {
        return Some(format!("muted {} messages", spec.template));
    }
    if let Some(p) = spec.blocked_prefixes.iter().find(|p| phone.starts_with(p.as_str())) {
        return Some(format!("blocked region ({p})"));
    }
    if recent {
        return Some(format!("had a broadcast in the last {} h (frequency cap)", spec.frequency_hours));
    }
    None
}

impl Store {
    /// Creates a campaign (a draft): the template must exist and be enabled.
    pub async fn create_campaign(&self, spec: &CampaignSpec, by: &str) -> CoreResult<CampaignView> {
        spec.check()?;
        let t = self
            .template(&spec.template)
            .await
            .map_err(|_| InputError::new("invalid_campaign", format!("there is no template {}", spec.template)))?;
        if !t.enabled {
            return Err(InputError::new("invalid_campaign", format!("the {} template is disabled", spec.template)).into());
        }
        let (qs, qe) = spec.quiet().map(|(s, e)| (Some(i64::from(s)), Some(i64::from(e)))).unwrap_or((None, None));
        let vars = serde_json::to_string(&spec.variables).map_err(|e| CoreError::Internal(e.to_string()))?;
        let prefixes = serde_json::to_string(&spec.blocked_prefixes).map_err(|e| CoreError::Internal(e.to_string()))?;
        let id: i64 = on_db!(self, pool => sqlx::query_scalar(
            "insert into campaign (name, template, variables, tag, pace_per_minute, daily_cap, quiet_start, quiet_end, blocked_prefixes,
                frequency_hours, created_by, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning campaign_id")
            .bind(spec.name.trim()).bind(&spec.template).bind(&vars).bind(spec.tag.trim()).bind(i64::from(spec.pace_per_minute))
            .bind(i64::from(spec.daily_cap)).bind(qs).bind(qe).bind(&prefixes).bind(i64::from(spec.frequency_hours)).bind(by).bind(now_ms())
            .fetch_one(pool).await?);
        self.campaign(id).await
    }

    /// A campaign: before its start, the preflight (who would get it, who not and why);
    /// after, its recipients by status.
    pub async fn campaign(&self, id: i64) -> CoreResult<CampaignView> {
        let row: Option<CampaignRow> =
            on_db!(self, pool => sqlx::query_as(&format!("{CAMPAIGN_SELECT} where campaign_id = $1")).bind(id).fetch_optional(pool).await?);
        let r = row.ok_or_else(|| not_found(id))?;
        let spec = spec_of(&r)?;
        let mut recipients = BTreeMap::new();
        let mut excluded = BTreeMap::new();
        let eligible;
        if r.status == "draft" {
            let mut tx = self.begin().await?;
            let (ok, out) = tx.classify(id, &spec, now_ms()).await?;
            tx.rollback().await?;
            eligible = ok.len() as i64;
            for (_, _, why) in out {
                *excluded.entry(why).or_insert(0) += 1;
            }
        } else {
            let counts: Vec<(String, String, i64)> = on_db!(self, pool => sqlx::query_as(
                "select status, reason, count(*) from campaign_recipient where campaign_id = $1 group by status, reason").bind(id).fetch_all(pool).await?);
            for (status, reason, n) in counts {
                *recipients.entry(status.clone()).or_insert(0) += n;
                if status == "excluded" {
                    *excluded.entry(reason).or_insert(0) += n;
                }
            }
            eligible = recipients.iter().filter(|(s, _)| s.as_str() != "excluded").map(|(_, n)| n).sum();
        }
        Ok(CampaignView {
            id,
            spec,
            status: r.status,
            detail: r.detail,
            recipients,
            excluded,
            eligible,
            created_by: r.created_by,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }

    /// The latest campaigns, newest first (at most `limit`), with their recipients counted.
    pub async fn campaigns(&self, limit: i64) -> CoreResult<Vec<CampaignLine>> {
        #[derive(FromRow)]
        struct Row {
            campaign_id: i64,
            name: String,
            template: String,
            tag: String,
            status: String,
            detail: String,
            created_by: String,
            created_at: i64,
            started_at: Option<i64>,
            finished_at: Option<i64>,
        }
        let rows: Vec<Row> = on_db!(self, pool => sqlx::query_as(
            "select campaign_id, name, template, tag, status, detail, created_by, created_at, started_at, finished_at
             from campaign order by campaign_id desc limit $1").bind(limit).fetch_all(pool).await?);
        let oldest = rows.last().map_or(0, |r| r.campaign_id);
        let counts: Vec<(i64, String, i64)> = on_db!(self, pool => sqlx::query_as(
            "select campaign_id, status, count(*) from campaign_recipient where campaign_id >= $1 group by campaign_id, status")
            .bind(oldest).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|r| CampaignLine {
                id: r.campaign_id,
                recipients: counts.iter().filter(|(c, _, _)| *c == r.campaign_id).map(|(_, s, n)| (s.clone(), *n)).collect(),
                name: r.name,
                template: r.template,
                tag: r.tag,
                status: r.status,
                detail: r.detail,
                created_by: r.created_by,
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: r.finished_at,
            })
            .collect())
    }

    /// `start` (a draft: each contact with the tag gets a recipient row, eligible or excluded
    /// with the reason; a paused campaign: resumes), `pause` or `cancel` (nothing more is
    /// queued; what was queued goes out).
    pub async fn campaign_action(&self, id: i64, action: &str) -> CoreResult<CampaignView> {
        let status: String = on_db!(self, pool => sqlx::query_scalar("select status from campaign where campaign_id = $1").bind(id).fetch_optional(pool).await?)
            .ok_or_else(|| not_found(id))?;
        let refuse = || CoreError::conflict("invalid_transition", format!("a {status} campaign cannot {action}"));
        let now = now_ms();
        let spec = self.campaign(id).await?.spec;
        let mut tx = self.begin().await?;
        match (action, status.as_str()) {
            ("start", "draft") => {
                // Still a draft in this transaction (another start may have won meanwhile).
                let started = on_tx!(&mut tx, c => sqlx::query("update campaign set status = 'running', started_at = $1 where campaign_id = $2 and status = 'draft'")
                    .bind(now).bind(id).execute(&mut *c).await?.rows_affected());
                if started == 0 {
                    return Err(refuse());
                }
                let (ok, out) = tx.classify(id, &spec, now).await?;
                for (cid, phone) in ok {
                    on_tx!(&mut tx, c => { sqlx::query("insert into campaign_recipient (campaign_id, contact_id, phone, status) values ($1, $2, $3, 'pending')")
                        .bind(id).bind(cid).bind(&phone).execute(&mut *c).await?; });
                }
                for (cid, phone, why) in out {
                    on_tx!(&mut tx, c => { sqlx::query("insert into campaign_recipient (campaign_id, contact_id, phone, status, reason) values ($1, $2, $3, 'excluded', $4)")
                        .bind(id).bind(cid).bind(&phone).bind(&why).execute(&mut *c).await?; });
                }
            }
            ("start", "paused") => {
                on_tx!(&mut tx, c => { sqlx::query("update campaign set status = 'running', detail = '' where campaign_id = $1").bind(id).execute(&mut *c).await?; });
            }
            ("pause", "running") => {
                on_tx!(&mut tx, c => { sqlx::query("update campaign set status = 'paused', detail = 'paused by a user' where campaign_id = $1").bind(id).execute(&mut *c).await?; });
            }
            ("cancel", "draft" | "running" | "paused") => {
                on_tx!(&mut tx, c => { sqlx::query("update campaign set status = 'cancelled', finished_at = $1 where campaign_id = $2").bind(now).bind(id).execute(&mut *c).await?; });
            }
            ("start" | "pause" | "cancel", _) => return Err(refuse()),
            _ => return Err(InputError::new("invalid_action", "the actions are start, pause and cancel").into()),
        }
        tx.commit().await?;
        tracing::info!(campaign = id, action, "campaign changed");
        self.campaign(id).await
    }

    /// Queues the next messages of every running campaign: at most its pace a minute, its
    /// daily cap in any 24 hours, none to a contact inside quiet hours (moved to when they
    /// end). A campaign with nobody left to send to is done. Returns how many were queued.
    pub async fn sweep_campaigns(&self, now: i64) -> CoreResult<usize> {
        let ids: Vec<i64> = on_db!(self, pool => sqlx::query_scalar(
            "select campaign_id from campaign where status = 'running' and (last_batch_at is null or last_batch_at <= $1) order by campaign_id")
            .bind(now - 60_000).fetch_all(pool).await?);
        let mut queued = 0;
        for id in ids {
            let spec = self.campaign(id).await?.spec;
            let mut tx = self.begin().await?;
            // Claimed for this minute: another server's sweep finds last_batch_at moved on.
            let claimed = on_tx!(&mut tx, c => sqlx::query("update campaign set last_batch_at = $1 where campaign_id = $2 and status = 'running' and (last_batch_at is null or last_batch_at <= $3)")
                .bind(now).bind(id).bind(now - 60_000).execute(&mut *c).await?.rows_affected());
            if claimed == 0 {
                tx.rollback().await?;
                continue;
            }
            let today: i64 = on_tx!(&mut tx, c => sqlx::query_scalar("select count(*) from campaign_recipient where campaign_id = $1 and queued_at > $2")
                .bind(id).bind(now - 86_400_000).fetch_one(&mut *c).await?);
            let room = i64::from(spec.pace_per_minute).min(i64::from(spec.daily_cap) - today).max(0);
            let due: Vec<(i64, String, String, Option<String>, String, Option<String>)> = on_tx!(&mut tx, c => sqlx::query_as(
                "select r.contact_id, r.phone, r.status, c.time_zone, c.consent, c.muted_types from campaign_recipient r join contact c on c.contact_id = r.contact_id
                 where r.campaign_id = $1 and r.status in ('pending', 'later') and r.next_at <= $2 order by r.next_at, r.contact_id limit $3")
                .bind(id).bind(now).bind(room * 2 + 10).fetch_all(&mut *c).await?);
            let mut sent = 0;
            for (cid, phone, was, tz, consent, muted) in due {
                if sent >= room {
                    break;
                }
                if let Some(until) = spec.quiet().and_then(|q| quiet_until(now, tz.as_deref(), q)) {
                    on_tx!(&mut tx, c => { sqlx::query("update campaign_recipient set next_at = $1 where campaign_id = $2 and contact_id = $3")
                        .bind(until).bind(id).bind(cid).execute(&mut *c).await?; });
                    continue;
                }
                let (status, reason, message_id) = match exclusion(&spec, &phone, &consent, muted.as_deref(), false) {
                    Some(why) => ("excluded", format!("{why} (since the start)"), None),
                    None => {
                        let contact = tx.contact_in(cid).await?;
                        let ctx = contact_context(&contact, &[]);
                        match tx.render_template(&spec.template, &spec.variables, &ctx, &contact.muted_types).await? {
                            Ok((template, body, vars)) => {
                                let key = if was == "later" { format!("camp:{id}:{cid}:{now}") } else { format!("camp:{id}:{cid}") };
                                let m = tx.queue_keyed(&phone, &body, template.as_deref(), &vars, None, &key, now).await?;
                                sent += 1;
                                ("queued", String::new(), m)
                            }
                            Err((_, why)) => ("failed", why, None),
                        }
                    }
                };
                on_tx!(&mut tx, c => { sqlx::query("update campaign_recipient set status = $1, reason = $2, message_id = coalesce($3, message_id), queued_at = $4
                    where campaign_id = $5 and contact_id = $6")
                    .bind(status).bind(&reason).bind(message_id).bind((status == "queued").then_some(now)).bind(id).bind(cid).execute(&mut *c).await?; });
            }
            let left: i64 = on_tx!(&mut tx, c => sqlx::query_scalar("select count(*) from campaign_recipient where campaign_id = $1 and status in ('pending', 'later')")
                .bind(id).fetch_one(&mut *c).await?);
            if left == 0 {
                on_tx!(&mut tx, c => { sqlx::query("update campaign set status = 'done', finished_at = $1 where campaign_id = $2").bind(now).bind(id).execute(&mut *c).await?; });
            }
            tx.commit().await?;
            queued += sent as usize;
        }
        Ok(queued)
    }
}

impl Tx<'_> {
    /// The contacts with the campaign's tag: (eligible: id, phone) and (excluded: id, phone, why).
    #[allow(clippy::type_complexity)]
    async fn classify(&mut self, id: i64, spec: &CampaignSpec, now: i64) -> CoreResult<(Vec<(i64, String)>, Vec<(i64, String, String)>)> {
        let rows: Vec<(i64, String, String, Option<String>, i64)> = on_tx!(self, c => sqlx::query_as(
            "select c.contact_id, c.phone, c.consent, c.muted_types,
                (select count(*) from campaign_recipient r where r.contact_id = c.contact_id and r.campaign_id <> $2 and r.queued_at > $3)
             from contact c join contact_tag ct on ct.contact_id = c.contact_id join tag t on t.tag_id = ct.tag_id
             where t.name_key = $1 order by c.contact_id")
            .bind(spec.tag.trim().to_lowercase()).bind(id).bind(now - i64::from(spec.frequency_hours) * 3_600_000).fetch_all(&mut *c).await?);
        let (mut ok, mut out) = (vec![], vec![]);
        for (cid, phone, consent, muted, recent) in rows {
            match exclusion(spec, &phone, &consent, muted.as_deref(), spec.frequency_hours > 0 && recent > 0) {
                Some(why) => out.push((cid, phone, why)),
                None => ok.push((cid, phone)),
            }
        }
        Ok((ok, out))
    }

    /// WhatsApp's error codes for a campaign's message that failed (AUTOMATION.md §5):
    /// 131049 (the person's marketing cap) tries again after 24 h, 131050 (stopped marketing
    /// from us) suppresses marketing to them, 130472 (Meta's experiment) stops, 131048 (spam
    /// rate limit) pauses the campaign. Not a campaign's message: nothing.
    pub(crate) async fn campaign_message_failed(&mut self, message_id: i64, code: &str, now: i64) -> CoreResult<()> {
        let row: Option<(i64, i64)> = on_tx!(self, c => sqlx::query_as("select campaign_id, contact_id from campaign_recipient where message_id = $1")
            .bind(message_id).fetch_optional(&mut *c).await?);
        let Some((campaign, cid)) = row else { return Ok(()) };
        let (status, reason, next_at) = match code {
            "131049" => {
                ("later", "WhatsApp's marketing cap for this person (131049): tried again after 24 h".to_string(), now + 86_400_000)
            }
            "131050" => {
                self.set_consent(cid, crate::contacts::ConsentStatus::Unknown, "WhatsApp 131050: stopped marketing messages", now).await?;
                ("failed", "stopped marketing messages from this business (131050): suppressed".to_string(), 0)
            }
            "130472" => ("failed", "in Meta's marketing experiment (130472)".to_string(), 0),
            "131048" => {
                on_tx!(self, c => { sqlx::query("update campaign set status = 'paused', detail = $1 where campaign_id = $2 and status = 'running'")
                    .bind("WhatsApp's spam rate limit (131048): paused; start it again once the number's quality recovers").bind(campaign).execute(&mut *c).await?; });
                let paused = on_tx!(self, c => sqlx::query_scalar::<_, String>("select name from campaign where campaign_id = $1")
                    .bind(campaign).fetch_one(&mut *c).await?);
                let text = format!("Dropcheck paused the broadcast \"{paused}\": WhatsApp reports the number's spam rate limit (131048). Start it again once the number's quality recovers.");
                self.tell_admins(&text, &format!("campaign-paused:{campaign}:{message_id}"), now).await?;
                tracing::warn!(campaign, "campaign paused: WhatsApp spam rate limit (131048); admins told");
                ("later", "spam rate limit (131048): waits for the campaign to resume".to_string(), now + 3_600_000)
            }
            other => ("failed", format!("failed ({other})"), 0),
        };
        on_tx!(self, c => { sqlx::query("update campaign_recipient set status = $1, reason = $2, next_at = $3 where campaign_id = $4 and contact_id = $5")
            .bind(status).bind(&reason).bind(next_at).bind(campaign).bind(cid).execute(&mut *c).await?; });
        Ok(())
    }
}
