//! A broadcast (issue 14, item 6): an approved template to the contacts with a tag, at a
//! pace, under a daily cap, outside quiet hours in each contact's time zone. Its shape and
//! checks here; `store::contacts::campaigns` keeps it and sends it.

use chrono::{TimeZone, Timelike};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::InputError;

/// A campaign as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    /// An approved template (Settings → Templates), rendered with each contact's variables.
    pub template: String,
    /// Who gets it: the contacts with this tag.
    pub tag: String,
    /// Template variables as Jinja2 texts over the contact's variables (`{{ name }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default = "sixty")]
    pub pace_per_minute: u32,
    #[serde(default = "thousand")]
    pub daily_cap: u32,
    /// No sends between these local times (`21:00`–`08:00`) in the contact's time zone (UTC
    /// for a contact without one).
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// Number prefixes not sent to: Meta blocks marketing templates to US numbers (`+1`).
    #[serde(default = "us")]
    pub blocked_prefixes: Vec<String>,
    /// A contact who got a broadcast this recently is excluded (0: no cap).
    #[serde(default = "day")]
    pub frequency_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

fn sixty() -> u32 {
    60
}
fn thousand() -> u32 {
    1000
}
fn us() -> Vec<String> {
    vec!["+1".into()]
}
fn day() -> u32 {
    24
}

fn bad(msg: impl Into<String>) -> InputError {
    InputError::new("invalid_campaign", msg)
}

impl CampaignSpec {
    pub fn check(&self) -> Result<(), InputError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 120 {
            return Err(bad("a campaign needs a name of 1–120 characters"));
        }
        crate::store::check_tag(&self.tag).map_err(|e| bad(e.message))?;
        if !(1..=1000).contains(&self.pace_per_minute) {
            return Err(bad("pace_per_minute is 1–1000"));
        }
        if !(1..=100_000).contains(&self.daily_cap) {
            return Err(bad("daily_cap is 1–100000"));
        }
        if self.frequency_hours > 720 {
            return Err(bad("frequency_hours is 0–720 (30 days)"));
        }
        if let Some(q) = &self.quiet_hours {
            let (s, e) = (minutes(&q.start)?, minutes(&q.end)?);
            if s == e {
                return Err(bad("quiet hours start and end at the same time"));
            }
        }
        if self.blocked_prefixes.len() > 50
            || self
                .blocked_prefixes
                .iter()
                .any(|p| !p.starts_with('+') || p.len() < 2 || p.len() > 8 || !p[1..].chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad("blocked_prefixes are up to 50 prefixes like +1 or +9198"));
        }
        for (k, text) in &self.variables {
            crate::automation::env().template_from_str(text).map_err(|e| bad(format!("variable {k} does not compile: {e}")))?;
        }
        Ok(())
    }

    /// The quiet hours as minutes after local midnight.
    pub fn quiet(&self) -> Option<(u32, u32)> {
        self.quiet_hours.as_ref().and_then(|q| Some((minutes(&q.start).ok()?, minutes(&q.end).ok()?)))
    }
}

/// `HH:MM` → minutes after midnight.
fn minutes(t: &str) -> Result<u32, InputError> {
    crate::automation::parse_at(t).map(|(h, m)| h * 60 + m).map_err(|e| bad(format!("quiet hours: {e}")))
}

/// When `now` falls in the quiet hours (`start`..`end`, possibly over midnight) in `tz`,
/// the instant they end; else `None`.
pub fn quiet_until(now: i64, tz: Option<&str>, (start, end): (u32, u32)) -> Option<i64> {
    let zone = tz.and_then(|t| chrono_tz::Tz::from_str(t).ok()).unwrap_or(chrono_tz::UTC);
    let local = zone.timestamp_millis_opt(now).single()?;
    let m = local.hour() * 60 + local.minute();
    let quiet = if start < end { m >= start && m < end } else { m >= start || m < end };
    if !quiet {
        return None;
    }
    let wait = (end + 1440 - m) % 1440;
    Some(now + i64::from(wait) * 60_000 - i64::from(local.second()) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_over_midnight_end_in_the_contacts_zone() {
        let at = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp() * 1000;
        let q = (21 * 60, 8 * 60);
        // 23:30 in Johannesburg (21:30 UTC): quiet until 08:00 there (06:00 UTC).
        assert_eq!(quiet_until(at("2026-12-06T21:30:00Z"), Some("Africa/Johannesburg"), q), Some(at("2026-12-07T06:00:00Z")));
        assert_eq!(quiet_until(at("2026-12-06T21:30:00Z"), None, q), Some(at("2026-12-07T08:00:00Z")), "UTC without a zone");
        assert_eq!(quiet_until(at("2026-12-06T12:00:00Z"), Some("Africa/Johannesburg"), q), None);
        assert_eq!(quiet_until(at("2026-12-06T13:00:00Z"), None, (12 * 60, 14 * 60)), Some(at("2026-12-06T14:00:00Z")));
    }

    #[test]
    fn a_campaign_is_checked() {
        let spec = |v: serde_json::Value| serde_json::from_value::<CampaignSpec>(v).unwrap();
        let ok = spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "crew"}));
        assert!(ok.check().is_ok());
        assert_eq!(
            (ok.pace_per_minute, ok.daily_cap, ok.blocked_prefixes.clone(), ok.frequency_hours),
            (60, 1000, vec!["+1".to_string()], 24)
        );
        assert!(spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "a,b"})).check().is_err());
        assert!(spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "x", "pace_per_minute": 0})).check().is_err());
        assert!(spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "x", "quiet_hours": {"start": "25:00", "end": "08:00"}}))
            .check()
            .is_err());
        assert!(spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "x", "blocked_prefixes": ["1"]})).check().is_err());
        assert!(spec(serde_json::json!({"name": "Dec", "template": "t", "tag": "x", "variables": {"a": "{{ x"}})).check().is_err());
    }
}
