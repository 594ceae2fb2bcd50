//! The drops list: a drop as listed, the filters, keyset pages, counts by status.

use super::photo_checks::HAS_OPEN_FLAG;
use super::*;

/// A drop as listed: enough for one row of the drops table.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct DropSummary {
    pub drop_id: DropId,
    pub drop_number: DropNumber,
    pub status: DropStatus,
    pub project: String,
    pub contractor_phone: Option<Phone>,
    pub contractor_name: Option<String>,
    pub round: i64,
    pub created_at: i64,
    pub activity_at: i64,
    pub photo_steps: i64,
    pub step_count: i64,
    /// Flags of the usable-photo checks nobody has dismissed and no new photo replaced.
    pub open_flags: i64,
}

#[derive(Debug, Clone, Default)]
pub struct DropFilter {
    pub status: Option<DropStatus>,
    pub project_id: Option<ProjectId>,
    /// Matches the contractor's phone or name (substring, case-insensitive).
    pub contractor: Option<String>,
    /// Matches the drop number (substring).
    pub q: Option<String>,
    /// Last activity at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Last activity before (unix ms).
    pub to_ms: Option<i64>,
    /// Only drops with an open photo flag.
    pub flagged: bool,
}

/// The drops list's filters as the page's address carries them (`?status=&project=<id>&
/// contractor=&q=&from=YYYY-MM-DD&to=YYYY-MM-DD&flagged=true`): the page and its CSV download
/// read them alike. Blank values are no filter.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DropQuery {
    pub status: Option<String>,
    pub project: Option<String>,
    pub contractor: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub flagged: Option<String>,
}

impl DropQuery {
    pub fn filter(&self) -> Result<DropFilter, InputError> {
        let some = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(DropFilter {
            status: some(&self.status).map(|s| DropStatus::parse(&s)).transpose()?,
            project_id: some(&self.project)
                .map(|p| p.parse::<ProjectId>().map_err(|_| InputError::new("invalid_project", format!("'{p}' is not a project"))))
                .transpose()?,
            contractor: some(&self.contractor),
            q: some(&self.q),
            from_ms: some(&self.from).map(|d| crate::parse_day(&d)).transpose()?,
            to_ms: some(&self.to).map(|d| crate::parse_day(&d).map(|t| t + 86_400_000)).transpose()?,
            flagged: match some(&self.flagged).as_deref() {
                None | Some("false") => false,
                Some("true" | "on") => true,
                Some(other) => return Err(InputError::new("invalid_flagged", format!("flagged is true or false, not '{other}'"))),
            },
        })
    }
}

/// A keyset position in the drops list (newest activity first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub activity_at: i64,
    pub drop_id: DropId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.activity_at, self.drop_id)
    }
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let bad = || InputError::new("invalid_cursor", "the cursor is not one this server handed out");
        let (a, d) = raw.split_once('-').ok_or_else(bad)?;
        Ok(Self { activity_at: a.parse().map_err(|_| bad())?, drop_id: d.parse().map_err(|_| bad())? })
    }
}

impl Store {
    pub async fn drop_summary(&self, number: &DropNumber) -> CoreResult<DropSummary> {
        let sql = format!("{} where d.drop_number = $1", SUMMARY_SELECT);
        on_db!(self, pool => sqlx::query_as::<_, Keyed<DropSummary>>(&sql).bind(number.as_str()).fetch_optional(pool).await?)
            .map(|k| k.0)
            .ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {number}")))
    }

    /// A page of drops, newest activity first, after `cursor`. Returns the next cursor if more remain.
    pub async fn list_drops(
        &self,
        filter: &DropFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> CoreResult<(Vec<DropSummary>, Option<Cursor>)> {
        let limit = limit.clamp(1, 200);
        check_search("contractor", filter.contractor.as_deref())?;
        check_search("q", filter.q.as_deref())?;
        let mut conds: Vec<String> = vec![];
        let mut args: Vec<Arg> = vec![];
        let p = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(s) = filter.status {
            let ph = p(&mut args, Arg::S(s.as_str().into()));
            conds.push(format!("d.status = {ph}"));
        }
        if let Some(pid) = filter.project_id {
            let ph = p(&mut args, Arg::I(pid.get()));
            conds.push(format!("d.project_id = {ph}"));
        }
        if let Some(c) = filter.contractor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            let ph = p(&mut args, Arg::S(format!("%{}%", escape_like(&c.to_lowercase()))));
            conds.push(format!("(lower(c.phone) like {ph} escape '\\' or lower(c.name) like {ph} escape '\\')"));
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let ph = p(&mut args, Arg::S(format!("%{}%", escape_like(&q.to_uppercase()))));
            conds.push(format!("d.drop_number like {ph} escape '\\'"));
        }
        if let Some(f) = filter.from_ms {
            let ph = p(&mut args, Arg::I(f));
            conds.push(format!("d.activity_at >= {ph}"));
        }
        if let Some(t) = filter.to_ms {
            let ph = p(&mut args, Arg::I(t));
            conds.push(format!("d.activity_at < {ph}"));
        }
        if filter.flagged {
            conds.push(HAS_OPEN_FLAG.to_string());
        }
        if let Some(c) = cursor {
            let a = p(&mut args, Arg::I(c.activity_at));
            let b = p(&mut args, Arg::I(c.drop_id.get()));
            conds.push(format!("(d.activity_at < {a} or (d.activity_at = {a} and d.drop_id < {b}))"));
        }
        let lim = p(&mut args, Arg::I(limit + 1));
        let where_ = if conds.is_empty() { String::new() } else { format!(" where {}", conds.join(" and ")) };
        let sql = format!("{SUMMARY_SELECT}{where_} order by d.activity_at desc, d.drop_id desc limit {lim}");
        let mut rows =
            Keyed::all(on_db!(self, pool => bind_args!(sqlx::query_as::<_, Keyed<DropSummary>>(&sql), &args).fetch_all(pool).await?));
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| Cursor { activity_at: r.activity_at, drop_id: r.drop_id })
        } else {
            None
        };
        Ok((rows, next))
    }

    /// Drops per status, from the counters kept by every status change.
    pub async fn status_counts(&self) -> CoreResult<Vec<(DropStatus, i64)>> {
        let rows: Vec<(String, i64)> =
            on_db!(self, pool => sqlx::query_as("select status, n from drop_status_count").fetch_all(pool).await?);
        let mut out = vec![];
        for s in DropStatus::ALL {
            let n = rows.iter().find(|(st, _)| st == s.as_str()).map(|(_, n)| *n).unwrap_or(0);
            out.push((*s, n));
        }
        Ok(out)
    }
}

const SUMMARY_SELECT: &str = "select d.drop_id, d.drop_number, d.status, p.name as project, c.phone as contractor_phone,
        c.name as contractor_name, d.round, d.created_at, d.activity_at,
        d.photo_steps, p.step_count,
        (select count(*) from photo fp join photo_check fc on fc.photo_id = fp.photo_id
         where fp.drop_id = d.drop_id and fc.result = 'flag' and fc.resolved_at is null) as open_flags
    from drop_job d join project p on p.project_id = d.project_id
    left join contact c on c.contact_id = d.contractor_id";

/// The longest search term a list takes. Longer ones are refused (422) before they reach the
/// database: a LIKE pattern of 50 000 characters is an SQLite error, and no drop number, name
/// or phone number is anywhere near this long.
pub const MAX_SEARCH_CHARS: usize = 200;

pub(crate) fn check_search(name: &str, value: Option<&str>) -> Result<(), InputError> {
    match value {
        Some(v) if v.chars().count() > MAX_SEARCH_CHARS => {
            Err(InputError::new("search_too_long", format!("The search term '{name}' can have at most {MAX_SEARCH_CHARS} characters.")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
