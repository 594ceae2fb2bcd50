//! Reading a CSV file of contacts: the columns mapped to contact fields, each row checked
//! (E.164 with a default region, birthday, time zone, consent, tags, typed attributes), the
//! file's own repeats of a number refused, and a CSV of the rejected rows with their reasons.
//! Pure: `store::contacts` applies the rows.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

use super::{check_time_zone, AttributeDef, Birthday, ConsentStatus, ContactUpdate};
use crate::domain::Phone;
use crate::error::InputError;

/// The largest file an import takes, and its most rows.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_ROWS: usize = 50_000;

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ignore,
    Phone,
    Name,
    Birthday,
    TimeZone,
    Consent,
    /// Tags separated by commas or semicolons.
    Tags,
    Attribute(String),
}

impl Target {
    /// `phone`, `name`, `birthday`, `time_zone`, `consent`, `tags`, `attribute:KEY`, `ignore`.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        Ok(match s.trim() {
            "" | "ignore" => Target::Ignore,
            "phone" => Target::Phone,
            "name" => Target::Name,
            "birthday" => Target::Birthday,
            "time_zone" => Target::TimeZone,
            "consent" => Target::Consent,
            "tags" => Target::Tags,
            other => match other.strip_prefix("attribute:") {
                Some(k) => Target::Attribute(k.to_string()),
                None => {
                    return Err(InputError::new(
                        "invalid_mapping",
                        format!(
                            "'{other}' is not a contact field (phone, name, birthday, time_zone, consent, tags, attribute:KEY, ignore)"
                        ),
                    ))
                }
            },
        })
    }

    pub fn as_string(&self) -> String {
        match self {
            Target::Ignore => "ignore".into(),
            Target::Phone => "phone".into(),
            Target::Name => "name".into(),
            Target::Birthday => "birthday".into(),
            Target::TimeZone => "time_zone".into(),
            Target::Consent => "consent".into(),
            Target::Tags => "tags".into(),
            Target::Attribute(k) => format!("attribute:{k}"),
        }
    }

    /// A first guess from a column's heading ("Mobile number" → phone).
    pub fn guess(header: &str, defs: &[AttributeDef]) -> Self {
        let h = header.trim().to_lowercase().replace(['_', '-'], " ");
        let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
        if let Some(d) = defs.iter().find(|d| d.key.replace('_', " ") == h || d.label.to_lowercase() == h) {
            return Target::Attribute(d.key.clone());
        }
        if has(&["phone", "mobile", "cell", "msisdn", "whatsapp", "number"]) {
            Target::Phone
        } else if has(&["birthday", "birth", "dob"]) {
            Target::Birthday
        } else if has(&["time zone", "timezone", "tz"]) {
            Target::TimeZone
        } else if has(&["consent", "opt"]) {
            Target::Consent
        } else if has(&["tag", "label", "group"]) {
            Target::Tags
        } else if has(&["name"]) {
            Target::Name
        } else {
            Target::Ignore
        }
    }
}

/// What to do with a number that is a contact already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Leave the contact as it is.
    #[default]
    Skip,
    /// Set only what the contact does not have yet (tags are added).
    FillBlanks,
    /// Set every field the row has (blank cells change nothing; tags are replaced).
    Overwrite,
}

impl ImportMode {
    pub fn parse(s: &str) -> Result<Self, InputError> {
        match s.trim() {
            "" | "skip" => Ok(ImportMode::Skip),
            "fill_blanks" => Ok(ImportMode::FillBlanks),
            "overwrite" => Ok(ImportMode::Overwrite),
            other => Err(InputError::new("invalid_mode", format!("'{other}' is not an import mode (skip, fill_blanks, overwrite)"))),
        }
    }
}

/// How to read a file: each heading's target (headings left out are ignored), the region
/// numbers without a country code are in, what to do with existing contacts, and whether the
/// contact events run their rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportMapping {
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub default_region: Option<String>,
    #[serde(default)]
    pub mode: ImportMode,
    #[serde(default)]
    pub fire_rules: bool,
}

/// The pairs of a query string or an url-encoded form body.
pub fn form_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.trim_start_matches('?').as_bytes()).into_owned().collect()
}

impl ImportMapping {
    /// From the import page's form: `c{i}` the target of column `i`, `region`, `mode` and
    /// `fire` (`on` when rules should run).
    pub fn from_form(headers: &[String], pairs: &[(String, String)]) -> Result<Self, InputError> {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let mut columns = BTreeMap::new();
        for (i, h) in headers.iter().enumerate() {
            if let Some(t) = get(&format!("c{i}")) {
                columns.insert(h.clone(), t.to_string());
            }
        }
        Ok(ImportMapping {
            columns,
            default_region: get("region").map(str::trim).filter(|r| !r.is_empty()).map(str::to_string),
            mode: ImportMode::parse(get("mode").unwrap_or(""))?,
            fire_rules: get("fire").is_some_and(|v| v == "on" || v == "true"),
        })
    }
}

/// A file read: its headings and rows (each with its line number).
#[derive(Debug, Clone)]
pub struct CsvFile {
    pub headers: Vec<String>,
    pub rows: Vec<(u64, Vec<String>)>,
}

/// Reads a CSV file (UTF-8, a heading row; `,` or `;` separated, whichever the heading uses).
pub fn read_csv(text: &str) -> Result<CsvFile, InputError> {
    let bad = |m: String| InputError::new("invalid_csv", m);
    if text.len() > MAX_BYTES {
        return Err(bad(format!("the file is larger than {} MB", MAX_BYTES / 1024 / 1024)));
    }
    if text.contains('\0') {
        return Err(bad("the file holds NUL bytes: it is not a text CSV file".into()));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.matches(';').count() > first.matches(',').count() { b';' } else { b',' };
    let mut r = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> =
        r.headers().map_err(|e| bad(format!("the heading row is not CSV: {e}")))?.iter().map(|h| h.trim().to_string()).collect();
    if headers.iter().all(String::is_empty) {
        return Err(bad("the file has no heading row".into()));
    }
    let mut rows = vec![];
    // Line numbers counted from each record's byte offset (the csv crate's own count is one
    // short after a CRLF heading).
    let (mut seen_to, mut line) = (0usize, 1u64);
    for rec in r.records() {
        let rec = rec.map_err(|e| bad(format!("the file is not CSV: {e}")))?;
        let mut at = rec.position().map(|p| p.byte() as usize).unwrap_or(seen_to).clamp(seen_to, text.len());
        // A record's offset can point at the line break before it (after a CR, at its LF).
        while matches!(text.as_bytes().get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        line += text.as_bytes()[seen_to..at].iter().filter(|b| **b == b'\n').count() as u64;
        seen_to = at;
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(bad(format!("the file has more than {MAX_ROWS} rows; split it")));
        }
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    Ok(CsvFile { headers, rows })
}

/// A row ready to apply.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub phone: Phone,
    pub update: ContactUpdate,
}

/// A row refused, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
    #[serde(skip)]
    pub cells: Vec<String>,
}

/// Checks the mapping against the headings and the attributes: (column index, target).
pub fn check_mapping(file: &CsvFile, m: &ImportMapping, defs: &[AttributeDef]) -> Result<Vec<(usize, Target)>, InputError> {
    let bad = |msg: String| InputError::new("invalid_mapping", msg);
    let mut out = vec![];
    for (heading, target) in &m.columns {
        let idx =
            file.headers.iter().position(|h| h == heading.trim()).ok_or_else(|| bad(format!("the file has no column '{heading}'")))?;
        let t = Target::parse(target)?;
        if let Target::Attribute(k) = &t {
            if !defs.iter().any(|d| &d.key == k) {
                return Err(bad(format!("there is no attribute {k} (define it first)")));
            }
        }
        if t != Target::Ignore && out.iter().any(|(_, o)| *o == t) {
            return Err(bad(format!("two columns are mapped to {}", t.as_string())));
        }
        out.push((idx, t));
    }
    if !out.iter().any(|(_, t)| *t == Target::Phone) {
        return Err(bad("one column must be the phone number".into()));
    }
    if let Some(r) = &m.default_region {
        Phone::parse_in("+27640412391", Some(r))?;
    }
    Ok(out)
}

/// Reads every row into a contact change, or rejects it with the reason. A number the file
/// has on an earlier row is rejected (the first row wins).
pub fn plan(file: &CsvFile, m: &ImportMapping, defs: &[AttributeDef]) -> Result<(Vec<ImportRow>, Vec<Rejected>), InputError> {
    let cols = check_mapping(file, m, defs)?;
    let mut ok = vec![];
    let mut rejected = vec![];
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (line, cells) in &file.rows {
        match read_row(&cols, cells, m, defs) {
            Ok((phone, update)) => {
                if let Some(first) = seen.get(phone.as_str()) {
                    rejected.push(Rejected { line: *line, reason: format!("the same number as line {first}"), cells: cells.clone() });
                    continue;
                }
                seen.insert(phone.to_string(), *line);
                ok.push(ImportRow { line: *line, phone, update });
            }
            Err(reason) => rejected.push(Rejected { line: *line, reason, cells: cells.clone() }),
        }
    }
    Ok((ok, rejected))
}

fn read_row(
    cols: &[(usize, Target)],
    cells: &[String],
    m: &ImportMapping,
    defs: &[AttributeDef],
) -> Result<(Phone, ContactUpdate), String> {
    let mut phone = None;
    let mut u = ContactUpdate::default();
    for (idx, target) in cols {
        let cell = cells.get(*idx).map(|c| c.trim()).unwrap_or("");
        if cell.is_empty() || *target == Target::Ignore {
            continue;
        }
        match target {
            Target::Phone => phone = Some(Phone::parse_in(cell, m.default_region.as_deref()).map_err(|e| e.message)?),
            Target::Name => u.name = Some(cell.to_string()),
            Target::Birthday => u.birthday = Some(Some(Birthday::parse_text(cell).map_err(|e| e.message)?)),
            Target::TimeZone => u.time_zone = Some(Some(check_time_zone(cell).map_err(|e| e.message)?)),
            Target::Consent => u.consent = Some(ConsentStatus::parse(cell).map_err(|e| e.message)?),
            Target::Tags => {
                u.tags = Some(cell.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect());
            }
            Target::Attribute(k) => {
                let def = defs.iter().find(|d| &d.key == k).ok_or_else(|| format!("no attribute {k}"))?;
                def.canonical(&Value::from(cell))?;
                u.attributes.insert(k.clone(), Value::from(cell));
            }
            Target::Ignore => {}
        }
    }
    let phone = phone.ok_or_else(|| "no phone number".to_string())?;
    u.check().map_err(|e| e.message)?;
    Ok((phone, u))
}

/// A cell a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@` (or a tab or
/// carriage return) gets a leading `'`, so it is not run as a formula.
pub fn safe_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The rejected rows as CSV (cells made safe, [`safe_cell`]): the file's columns, `line`
/// and `reason`.
pub fn rejected_csv(headers: &[String], rejected: &[Rejected]) -> Result<String, InputError> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(vec![]);
    let fail = |e: csv::Error| InputError::new("invalid_csv", e.to_string());
    let mut head: Vec<&str> = headers.iter().map(String::as_str).collect();
    head.push("line");
    head.push("reason");
    w.write_record(&head).map_err(fail)?;
    for r in rejected {
        let mut rec: Vec<String> =
            (0..headers.len()).map(|i| r.cells.get(i).map(|c| safe_cell(c).into_owned()).unwrap_or_default()).collect();
        rec.push(r.line.to_string());
        rec.push(r.reason.clone());
        w.write_record(&rec).map_err(fail)?;
    }
    String::from_utf8(w.into_inner().map_err(|e| InputError::new("invalid_csv", e.to_string()))?)
        .map_err(|e| InputError::new("invalid_csv", e.to_string()))
}
