//! `schedule.cron` rules: a five-field cron expression in an IANA time zone (croner with
//! chrono-tz). The instants are computed, not waited for: every server's sweep asks for the
//! instants since the rule last fired, and a run's unique key (`tick:{rule}:{instant}`) lets
//! exactly one server run each.

use chrono::TimeZone;
use std::str::FromStr;

/// How late an instant may still fire when the rule does not catch up (a sweep comes every
/// few seconds; a server that was down longer skips what it missed).
pub const GRACE_MS: i64 = 5 * 60_000;
/// How far back a rule that catches up goes, and how many instants it fires at most.
pub const CATCH_UP_MS: i64 = 24 * 3_600_000;
pub const CATCH_UP_MAX: usize = 100;

#[derive(Debug)]
pub struct Schedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl Schedule {
    /// A cron expression of five fields (minute hour day-of-month month day-of-week; names,
    /// ranges, steps, `L`, `#`, `W`) or an alias such as `@daily`, in `time_zone`.
    pub fn parse(cron: &str, time_zone: &str) -> Result<Self, String> {
        let fields = cron.split_whitespace().count();
        if !(cron.trim().starts_with('@') || fields == 5) {
            return Err(format!("\"{cron}\" has {fields} fields; a schedule has five: minute hour day-of-month month day-of-week"));
        }
        let parsed = croner::Cron::from_str(cron.trim()).map_err(|e| format!("\"{cron}\" is not a cron expression: {e}"))?;
        let tz = chrono_tz::Tz::from_str(time_zone.trim())
            .map_err(|_| format!("\"{time_zone}\" is not an IANA time zone (e.g. Africa/Johannesburg, UTC)"))?;
        Ok(Self { cron: parsed, tz })
    }

    /// In words ("At 08:00 on Monday through Friday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first instant (unix ms) strictly after `after`.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let t = self.tz.timestamp_millis_opt(after).single()?;
        self.cron.find_next_occurrence(&t, false).ok().map(|d| d.timestamp_millis())
    }

    /// The instants strictly after `after` and at or before `now`, oldest first, at most `limit`
    /// of the latest ones.
    pub fn between(&self, after: i64, now: i64, limit: usize) -> Vec<i64> {
        let mut out = std::collections::VecDeque::new();
        let mut t = after;
        // Bounded: a rule every minute over a year is about 525 000 steps.
        for _ in 0..600_000 {
            match self.next_after(t) {
                Some(n) if n <= now => {
                    out.push_back(n);
                    if out.len() > limit {
                        out.pop_front();
                    }
                    t = n;
                }
                _ => break,
            }
        }
        out.into()
    }

    /// The time zone's wall-clock time of an instant, RFC 3339 with its offset.
    pub fn local(&self, at: i64) -> String {
        self.tz.timestamp_millis_opt(at).single().map(|d| d.to_rfc3339()).unwrap_or_default()
    }
}

/// Which of the instants since the rule last fired a sweep at `now` fires: the latest within
/// [`GRACE_MS`], or — catching up — each within [`CATCH_UP_MS`] (at most [`CATCH_UP_MAX`]).
pub fn due(schedule: &Schedule, since: i64, now: i64, catch_up: bool) -> Vec<i64> {
    if catch_up {
        schedule.between(since.max(now - CATCH_UP_MS), now, CATCH_UP_MAX)
    } else {
        schedule.between(since.max(now - GRACE_MS), now, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn instants_are_in_the_rules_time_zone_and_bounded() {
        let s = Schedule::parse("0 8 * * 1-5", "Africa/Johannesburg").unwrap();
        // Friday 2026-12-04 10:00 SAST → the next is Monday 08:00 SAST (06:00 UTC).
        assert_eq!(s.next_after(ms("2026-12-04T10:00:00+02:00")), Some(ms("2026-12-07T06:00:00Z")));
        let every = Schedule::parse("* * * * *", "UTC").unwrap();
        let t0 = ms("2026-12-06T12:00:30Z");
        assert_eq!(every.between(t0, t0 + 3 * 60_000, 10).len(), 3);
        assert_eq!(every.between(t0, t0 + 3 * 60_000, 2), vec![ms("2026-12-06T12:02:00Z"), ms("2026-12-06T12:03:00Z")], "the latest ones");
        // Down for an hour: without catch-up only the latest instant in the grace window fires.
        let now = t0 + 3_600_000;
        assert_eq!(due(&every, t0, now, false), vec![ms("2026-12-06T13:00:00Z")]);
        assert_eq!(due(&every, t0, now, true).len(), 60, "caught up, every minute of the hour");
        assert!(due(&every, ms("2026-12-06T13:00:00Z"), now, false).is_empty(), "an instant fires once");
    }

    #[test]
    fn daylight_saving_gaps_and_overlaps_fire_once() {
        // Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00: 02:30 runs at 03:00 local.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let next = s.next_after(ms("2026-03-29T00:00:00+01:00")).unwrap();
        assert!(next >= ms("2026-03-29T03:00:00+02:00") && next <= ms("2026-03-29T03:30:00+02:00"), "{}", s.local(next));
        // Falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice, fires once.
        let day = s.between(ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00"), 10);
        assert_eq!(day.len(), 1, "{:?}", day.iter().map(|t| s.local(*t)).collect::<Vec<_>>());
    }

    #[test]
    fn bad_schedules_say_why() {
        assert!(Schedule::parse("* * * *", "UTC").unwrap_err().contains("five"));
        assert!(Schedule::parse("0 0 * * * *", "UTC").unwrap_err().contains("five"));
        assert!(Schedule::parse("61 * * * *", "UTC").is_err());
        assert!(Schedule::parse("0 8 * * *", "Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(Schedule::parse("@daily", "UTC").is_ok());
    }
}
