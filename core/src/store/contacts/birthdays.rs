//! `contact.birthday` rules: every sweep looks for contacts whose birthday it is now, at the
//! rule's time of day or later, in the contact's time zone (or the rule's). Each gets one run
//! a year under the key `bday:{rule}:{contact}:{year}`, however many servers sweep.

use chrono::{Datelike, TimeZone, Timelike};
use std::str::FromStr;

use super::*;
use crate::automation::{parse_at, Trigger};

impl Store {
    /// Runs the birthday rules due at `now`. Returns how many runs were started.
    pub async fn sweep_birthdays(&self, now: i64) -> CoreResult<usize> {
        let rules = self.enabled_rules("contact.birthday").await?;
        if rules.is_empty() {
            return Ok(0);
        }
        // Every calendar date it is somewhere on Earth now (UTC−12 to UTC+14), with 29
        // February wherever 28 February is (kept then in years without one).
        let mut dates: Vec<(i64, i64)> = vec![];
        for hours in [-12i64, 0, 14] {
            let d = chrono::DateTime::from_timestamp_millis(now + hours * 3_600_000).map(|t| t.date_naive());
            if let Some(d) = d {
                for md in [(i64::from(d.month()), i64::from(d.day())), (2, 29)] {
                    if (md != (2, 29) || (d.month(), d.day()) == (2, 28)) && !dates.contains(&md) {
                        dates.push(md);
                    }
                }
            }
        }
        let mut started = 0;
        for rule in rules {
            let Trigger::ContactBirthday { at, time_zone } = &rule.spec.trigger else { continue };
            let (Ok((hour, minute)), Ok(rule_tz)) = (parse_at(at), chrono_tz::Tz::from_str(time_zone)) else {
                tracing::error!(rule = rule.rule_id, "stored birthday rule unreadable; skipped");
                continue;
            };
            let mut args: Vec<Arg> = vec![Arg::I(rule.rule_id), Arg::I(now - 2 * 86_400_000)];
            let mut ors = vec![];
            for (m, d) in &dates {
                args.push(Arg::I(*m));
                args.push(Arg::I(*d));
                ors.push(format!("(c.birthday_month = ${} and c.birthday_day = ${})", args.len() - 1, args.len()));
            }
            let sql = format!(
                "select c.contact_id, c.birthday_month, c.birthday_day, c.time_zone from contact c where ({}) and not exists
                    (select 1 from automation_run r where r.rule_id = $1 and r.contact_phone = c.phone and r.started_at > $2)
                 order by c.contact_id limit 1000",
                ors.join(" or ")
            );
            let hits: Vec<(i64, i64, i64, Option<String>)> =
                on_db!(self, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?);
            for (contact_id, month, day, tz) in hits {
                let zone = tz.as_deref().and_then(|t| chrono_tz::Tz::from_str(t).ok()).unwrap_or(rule_tz);
                let Some(local) = zone.timestamp_millis_opt(now).single() else { continue };
                let birthday = crate::contacts::Birthday { month: month as u8, day: day as u8, year: None };
                let due = birthday.falls_on(local.date_naive()) && (local.hour(), local.minute()) >= (hour, minute);
                if !due {
                    continue;
                }
                let mut tx = self.begin().await?;
                let contact = tx.contact_in(contact_id).await?;
                let ctx = crate::contacts::contact_context(&contact, &[]);
                let s = super::automation_run::RunSubject {
                    subject: contact.phone.to_string(),
                    contact_phone: Some(contact.phone.to_string()),
                    ..Default::default()
                };
                let key = format!("bday:{}:{contact_id}:{}", rule.rule_id, local.year());
                if tx.fire(&rule, &key, &ctx, &s, 0).await?.is_some() {
                    started += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(started)
    }
}
