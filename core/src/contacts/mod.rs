//! Contacts' profiles (issue 14, item 1): typed custom attributes, birthdays, consent and time
//! zones — their shapes and checks, all pure. `store::contacts` keeps them and records
//! `contact.created` / `contact.updated` / `contact.opted_out` in the change's transaction;
//! `import` reads a CSV file into contacts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::InputError;

pub mod campaign;
pub mod import;

/// The fields every contact has (attribute keys may not take these names: a contact
/// trigger's context holds both).
pub const BASE_FIELDS: &[&str] = &["phone", "name", "tag", "time_zone", "consent", "birthday", "changed", "tags"];

/// The type of a custom attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    Text,
    Number,
    Date,
    Bool,
    Enum,
    Url,
}

impl AttrType {
    pub const ALL: [AttrType; 6] = [AttrType::Text, AttrType::Number, AttrType::Date, AttrType::Bool, AttrType::Enum, AttrType::Url];

    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::Text => "text",
            AttrType::Number => "number",
            AttrType::Date => "date",
            AttrType::Bool => "bool",
            AttrType::Enum => "enum",
            AttrType::Url => "url",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InputError> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            InputError::new("invalid_attribute", format!("'{s}' is not an attribute type (text, number, date, bool, enum, url)"))
        })
    }
}

/// A custom attribute's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    /// The choices of an `enum` (none for other types).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn bad(msg: impl Into<String>) -> InputError {
    InputError::new("invalid_attribute", msg)
}

impl AttributeDef {
    /// The key is 1–40 of `a-z 0-9 _` starting with a letter and no base field's name; the
    /// label 1–80 characters; an enum has 1–50 distinct options, other types none.
    pub fn check(&self) -> Result<(), InputError> {
        check_key(&self.key)?;
        let label = self.label.trim();
        if label.is_empty() || label.chars().count() > 80 {
            return Err(bad("an attribute needs a label of 1–80 characters"));
        }
        match self.kind {
            AttrType::Enum => {
                if self.options.is_empty() || self.options.len() > 50 {
                    return Err(bad("an enum attribute has 1–50 options"));
                }
                for (i, o) in self.options.iter().enumerate() {
                    if o.trim().is_empty() || o.chars().count() > 80 || o.contains('\n') {
                        return Err(bad("each option is 1–80 characters on one line"));
                    }
                    if self.options[..i].iter().any(|p| p.trim().eq_ignore_ascii_case(o.trim())) {
                        return Err(bad(format!("the option '{}' is there twice", o.trim())));
                    }
                }
            }
            _ if !self.options.is_empty() => return Err(bad("only an enum attribute has options")),
            _ => {}
        }
        Ok(())
    }

    /// A value as stored (canonical text), or why it does not suit the type. Texts are
    /// accepted for every type (a CSV cell, a form field): `"12.5"` for a number, `"yes"` for
    /// a bool, `"2026-12-06"` for a date.
    pub fn canonical(&self, v: &Value) -> Result<String, String> {
        let label = &self.label;
        let text = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(format!("{label}: a {} value is a text, number or true/false", self.kind.as_str())),
        };
        if text.is_empty() {
            return Err(format!("{label}: empty"));
        }
        match self.kind {
            AttrType::Text if text.chars().count() > 500 => Err(format!("{label}: at most 500 characters")),
            AttrType::Text => Ok(text),
            AttrType::Number => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(serde_json::Number::from_f64(n).map(|n| n.to_string()).unwrap_or(text)),
                _ => Err(format!("{label}: '{text}' is not a number")),
            },
            AttrType::Date => time::Date::parse(&text, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|_| text.clone())
                .map_err(|_| format!("{label}: '{text}' is not a date (YYYY-MM-DD)")),
            AttrType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "1" => Ok("true".into()),
                "false" | "no" | "n" | "0" => Ok("false".into()),
                _ => Err(format!("{label}: '{text}' is not yes/no (true/false)")),
            },
            AttrType::Enum => self
                .options
                .iter()
                .find(|o| o.trim().eq_ignore_ascii_case(&text))
                .map(|o| o.trim().to_string())
                .ok_or_else(|| format!("{label}: '{text}' is not one of {}", self.options.join(", "))),
            AttrType::Url => match url::Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && text.len() <= 2000 => Ok(text),
                _ => Err(format!("{label}: '{text}' is not an http(s) address")),
            },
        }
    }

    /// A stored value as JSON (numbers and bools typed; the rest text).
    pub fn typed(&self, stored: &str) -> Value {
        match self.kind {
            AttrType::Number => stored.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
            AttrType::Bool => Some(Value::Bool(stored == "true")),
            _ => None,
        }
        .unwrap_or_else(|| Value::String(stored.to_string()))
    }
}

/// An attribute key: 1–40 of `a-z 0-9 _`, starting with a letter, not a base field's name.
pub fn check_key(key: &str) -> Result<(), InputError> {
    let ok = !key.is_empty()
        && key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(bad(format!("'{key}' is not an attribute key: 1–40 of a-z, 0-9 and _, starting with a letter")));
    }
    if BASE_FIELDS.contains(&key) {
        return Err(bad(format!("'{key}' is a contact field already; choose another key")));
    }
    Ok(())
}

/// A birthday: month and day, and the year when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Birthday {
    pub month: u8,
    pub day: u8,
    #[serde(default)]
    pub year: Option<i32>,
}

impl Birthday {
    /// The day must exist in its month (29 February only without a year or in a leap year).
    pub fn check(&self) -> Result<(), InputError> {
        let invalid = || InputError::new("invalid_birthday", "a birthday is {month: 1–12, day: 1–31, year?} and must be a real date");
        let year = self.year.unwrap_or(2000);
        if let Some(y) = self.year {
            if !(1900..=2100).contains(&y) {
                return Err(invalid());
            }
        }
        let month = time::Month::try_from(self.month).map_err(|_| invalid())?;
        time::Date::from_calendar_date(year, month, self.day).map_err(|_| invalid())?;
        Ok(())
    }

    /// From a text: `1990-03-14`, `03-14` or `--03-14` (ISO 8601 without a year), `14/03/1990`
    /// or `14/03` (day first, as written where the product is used).
    pub fn parse_text(s: &str) -> Result<Self, InputError> {
        let s = s.trim();
        let invalid = || InputError::new("invalid_birthday", format!("'{s}' is not a birthday (1990-03-14, 03-14 or 14/03/1990)"));
        let nums = |parts: Vec<&str>| -> Result<Vec<i64>, InputError> {
            parts.iter().map(|p| p.trim().parse::<i64>().map_err(|_| invalid())).collect()
        };
        let b = if s.contains('/') {
            match nums(s.split('/').collect())?.as_slice() {
                [d, m] => (*m, *d, None),
                [d, m, y] => (*m, *d, Some(*y)),
                _ => return Err(invalid()),
            }
        } else {
            match nums(s.trim_start_matches("--").split('-').collect())?.as_slice() {
                [m, d] => (*m, *d, None),
                [y, m, d] => (*m, *d, Some(*y)),
                _ => return Err(invalid()),
            }
        };
        let (Ok(month), Ok(day)) = (u8::try_from(b.0), u8::try_from(b.1)) else { return Err(invalid()) };
        let year = match b.2 {
            Some(y) => Some(i32::try_from(y).map_err(|_| invalid())?),
            None => None,
        };
        let out = Birthday { month, day, year };
        out.check().map_err(|_| invalid())?;
        Ok(out)
    }

    /// Whether this is the birthday on `date` (29 February is kept on 28 February when the
    /// year has none).
    pub fn falls_on(&self, date: chrono::NaiveDate) -> bool {
        use chrono::Datelike;
        let (m, d) = (date.month() as u8, date.day() as u8);
        if (self.month, self.day) == (m, d) {
            return true;
        }
        let leap = chrono::NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some();
        (self.month, self.day) == (2, 29) && !leap && (m, d) == (2, 28)
    }

    /// `MM-DD` or `YYYY-MM-DD`.
    pub fn text(&self) -> String {
        match self.year {
            Some(y) => format!("{y:04}-{:02}-{:02}", self.month, self.day),
            None => format!("{:02}-{:02}", self.month, self.day),
        }
    }
}

/// An IANA time zone name (`Africa/Johannesburg`), as given trimmed.
pub fn check_time_zone(tz: &str) -> Result<String, InputError> {
    chrono_tz::Tz::from_str(tz.trim())
        .map(|_| tz.trim().to_string())
        .map_err(|_| InputError::new("invalid_time_zone", format!("'{}' is not an IANA time zone (e.g. Africa/Johannesburg)", tz.trim())))
}

/// How a contact stands on messages: `opted_in` (may get marketing, e.g. broadcasts),
/// `opted_out` (sent STOP or was opted out: nothing but the STOP/START confirmations), or
/// `unknown` (transactional messages only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    #[default]
    Unknown,
    OptedIn,
    OptedOut,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Unknown => "unknown",
            ConsentStatus::OptedIn => "opted_in",
            ConsentStatus::OptedOut => "opted_out",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InputError> {
        match s.trim().to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
            "unknown" | "" => Ok(ConsentStatus::Unknown),
            "opted_in" | "in" | "yes" | "true" => Ok(ConsentStatus::OptedIn),
            "opted_out" | "out" | "no" | "false" => Ok(ConsentStatus::OptedOut),
            _ => Err(InputError::new("invalid_consent", format!("'{s}' is not a consent (opted_in, opted_out or unknown)"))),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConsentStatus::Unknown => "Not asked",
            ConsentStatus::OptedIn => "Opted in",
            ConsentStatus::OptedOut => "Opted out",
        }
    }
}

/// Consent with when and how it was given or withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Consent {
    pub status: ConsentStatus,
    pub at: Option<i64>,
    /// How: "WhatsApp STOP", "API key ops", "import contacts.csv", a user's email.
    pub source: Option<String>,
}

/// The context of a contact trigger: what conditions test and texts are rendered with —
/// `phone`, `name`, `time_zone`, `consent`, `birthday`, `tags`, and each attribute by key.
pub fn contact_context(c: &Contact, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    m.insert("phone".into(), c.phone.as_str().into());
    m.insert("name".into(), c.name.clone().into());
    m.insert("time_zone".into(), c.time_zone.clone().map(Value::from).unwrap_or(Value::Null));
    m.insert("consent".into(), c.consent.status.as_str().into());
    m.insert("birthday".into(), c.birthday.map(|b| Value::from(b.text())).unwrap_or(Value::Null));
    m.insert("tags".into(), c.tags.clone().into());
    for (k, v) in &c.attributes {
        m.insert(k.clone(), v.clone());
    }
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    Value::Object(m)
}

/// Attributes as an API caller sends them: key → value (`null` removes it).
pub type AttributeChanges = BTreeMap<String, Value>;

/// A contact as the API and the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub phone: crate::domain::Phone,
    pub name: String,
    pub opted_out: bool,
    /// Message types (template names) this contact does not want.
    pub muted_types: Vec<String>,
    pub last_inbound_at: Option<i64>,
    pub created_at: i64,
    pub consent: Consent,
    pub birthday: Option<Birthday>,
    pub time_zone: Option<String>,
    /// Custom attributes by key, typed ([`AttributeDef::typed`]).
    pub attributes: BTreeMap<String, Value>,
    pub tags: Vec<String>,
}

/// What a change to a contact sets; `None` leaves a field as it is. For birthday and time
/// zone `Some(None)` clears it; an attribute set to `null` is removed.
#[derive(Debug, Clone, Default)]
pub struct ContactUpdate {
    pub name: Option<String>,
    pub opted_out: Option<bool>,
    pub consent: Option<ConsentStatus>,
    pub muted_types: Option<Vec<String>>,
    pub birthday: Option<Option<Birthday>>,
    pub time_zone: Option<Option<String>>,
    pub attributes: AttributeChanges,
    /// Replaces the contact's tags.
    pub tags: Option<Vec<String>>,
}

impl ContactUpdate {
    /// The consent after this change, from `current`: `consent` when given; else `opted_out`
    /// in its older form (true opts out; false undoes an opt-out and leaves an opt-in).
    pub fn next_consent(&self, current: ConsentStatus) -> ConsentStatus {
        match (self.consent, self.opted_out) {
            (Some(c), _) => c,
            (None, Some(true)) => ConsentStatus::OptedOut,
            (None, Some(false)) if current == ConsentStatus::OptedOut => ConsentStatus::Unknown,
            _ => current,
        }
    }

    /// Checks what needs no database: the name, birthday, time zone, consent and tags.
    pub fn check(&self) -> Result<(), InputError> {
        if let Some(name) = &self.name {
            if name.chars().count() > 120 {
                return Err(InputError::new("invalid_name", "a contact name has at most 120 characters"));
            }
        }
        if let (Some(c), Some(o)) = (self.consent, self.opted_out) {
            if (c == ConsentStatus::OptedOut) != o {
                return Err(InputError::new("invalid_consent", "consent and opted_out disagree; send one of them"));
            }
        }
        if let Some(Some(b)) = &self.birthday {
            b.check()?;
        }
        if let Some(Some(tz)) = &self.time_zone {
            check_time_zone(tz)?;
        }
        for t in self.tags.iter().flatten() {
            crate::store::check_tag(t)?;
        }
        if self.attributes.len() > 100 {
            return Err(bad("at most 100 attributes in one change"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
