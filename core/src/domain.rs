//! Domain values that cross in from outside are parsed once, here, into types that can
//! only hold valid values (drop numbers, phone numbers, step numbers, statuses, verdicts).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::InputError;

/// A drop number, stored upper-case. Validity against a project's pattern is checked by
/// [`crate::store::Project::check_drop_number`]; this type only guarantees a sane token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DropNumber(String);

impl DropNumber {
    /// Upper-cases and trims; accepts 3–32 ASCII letters and digits.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.len() < 3 || s.len() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(InputError::new(
                "invalid_drop_number",
                format!("'{}' is not a drop number (letters and digits, e.g. DR12345678)", raw.trim()),
            ));
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A drop number as stored: exactly the form [`DropNumber::parse`] writes.
    fn from_stored(raw: &str) -> Result<Self, InputError> {
        let n = Self::parse(raw)?;
        if n.0 != raw {
            return Err(InputError::new("invalid_drop_number", format!("'{}' is not in the stored form ({n})", raw.escape_debug())));
        }
        Ok(n)
    }
}

impl fmt::Display for DropNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+27640412391`), validated with libphonenumber metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Phone(String);

impl Phone {
    /// Accepts `+27 64 041 2391`, `whatsapp:+27640412391`, `27640412391` (international digits).
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        let s = trimmed.strip_prefix("whatsapp:").unwrap_or(trimmed).trim();
        let with_plus = if s.starts_with('+') { s.to_string() } else { format!("+{s}") };
        let invalid = || {
            InputError::new("invalid_phone", format!("'{trimmed}' is not a valid international phone number (E.164, e.g. +27640412391)"))
        };
        if s.is_empty() || s.len() > 32 {
            return Err(invalid());
        }
        let parsed = phonenumber::parse(None, &with_plus).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&parsed) {
            return Err(invalid());
        }
        Ok(Self(parsed.format().mode(phonenumber::Mode::E164).to_string()))
    }
    /// The country calling code and the national number, as providers that take them apart
    /// want them (`+27640412391` → `27`, `640412391`).
    pub fn split_country(&self) -> (String, String) {
        match phonenumber::parse(None, &self.0) {
            Ok(n) => (n.country().code().to_string(), n.national().to_string()),
            // A stored number always parses; were it not to, keep every digit together.
            Err(_) => (String::new(), self.0.trim_start_matches('+').to_string()),
        }
    }
    /// A number as written in a country (`064 041 2391` with region `ZA`), or in its
    /// international form (a leading `+`, `00`, or the country code's digits).
    pub fn parse_in(raw: &str, region: Option<&str>) -> Result<Self, InputError> {
        let Some(region) = region.map(str::trim).filter(|r| !r.is_empty()) else { return Self::parse(raw) };
        let id = phonenumber::country::Id::from_str(&region.to_ascii_uppercase())
            .map_err(|_| InputError::new("invalid_region", format!("'{region}' is not a country code (ZA, GB, US…)")))?;
        let s = raw.trim();
        if s.starts_with('+') || s.len() > 32 {
            return Self::parse(s);
        }
        match phonenumber::parse(Some(id), s) {
            Ok(n) if phonenumber::is_valid(&n) => Ok(Self(n.format().mode(phonenumber::Mode::E164).to_string())),
            _ => Self::parse(s).map_err(|_| {
                InputError::new(
                    "invalid_phone",
                    format!("'{s}' is not a valid phone number in {} or internationally", region.to_ascii_uppercase()),
                )
            }),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A number as stored: E.164 (`+`, then 7–15 digits, the first not 0), the form
    /// [`Phone::parse`] writes. Checked by its shape, not against libphonenumber's metadata
    /// again: that costs about 20 µs a number, which every row of a list would pay.
    fn from_stored(raw: &str) -> Result<Self, InputError> {
        let digits = raw.strip_prefix('+').unwrap_or("");
        let e164 = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !e164 {
            return Err(InputError::new("invalid_phone", format!("'{}' is not an E.164 number", raw.escape_debug())));
        }
        Ok(Self(raw.to_string()))
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value stored in a text column (its `Decode` is its own: only valid values come back).
macro_rules! stored_as_text {
    ($name:ident) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }
    };
}

/// Stored text read back through a check of its stored form: a value that is not one is a
/// decode error that says what was stored, never a default. `Encode` writes the text as it is.
macro_rules! parsed_text {
    ($name:ident) => {
        stored_as_text!($name);
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                $name::from_stored(raw).map_err(|e| format!("stored {}: {}", stringify!($name), e.message).into())
            }
        }
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }
        }
    };
}
parsed_text!(DropNumber);
parsed_text!(Phone);

macro_rules! eq_text {
    ($name:ident) => {
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
eq_text!(DropNumber);
eq_text!(Phone);

/// A checklist step number, 1-based, at most 50 steps per checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepNo(i64);

impl StepNo {
    pub const MAX: i64 = 50;
    pub fn new(n: i64) -> Result<Self, InputError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InputError::new("invalid_step", format!("step {n} is out of range (1–{})", Self::MAX)))
        }
    }
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let n: i64 = raw.trim().parse().map_err(|_| InputError::new("invalid_step", format!("'{}' is not a step number", raw.trim())))?;
        Self::new(n)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $code:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(raw: &str) -> Result<Self, InputError> {
                match raw.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    other => Err(InputError::new($code, format!(
                        "'{}' is not one of: {}", other, [$($text),+].join(", ")))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        // Stored as text. Decoding takes only the exact stored spelling: a corrupt value is a
        // decode error naming the column and the value, never a default.
        stored_as_text!($name);
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name where &'r str: sqlx::Decode<'r, DB> {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                $name::ALL.iter().copied().find(|v| v.as_str() == raw).ok_or_else(|| {
                    format!("'{}' is not a stored {} (one of {})", raw.escape_debug(), stringify!($name), [$($text),+].join(", ")).into()
                })
            }
        }
    };
}

string_enum!(
    /// Where a drop is in its review; the transitions live in [`crate::lifecycle`].
    DropStatus, "invalid_status" {
        Collecting = "collecting",
        Unreviewed = "unreviewed",
        Incomplete = "incomplete",
        Resubmitted = "resubmitted",
        Approved = "approved",
    }
);

string_enum!(
    /// Which way a message went: from a contractor (`in`) or to one (`out`).
    Direction, "invalid_direction" {
        In = "in",
        Out = "out",
    }
);

string_enum!(
    /// A reviewer's verdict on one step.
    Verdict, "invalid_verdict" {
        Pending = "pending",
        Ok = "ok",
        Missing = "missing",
        Retake = "retake",
        Rework = "rework",
    }
);

string_enum!(
    /// Which usable-photo check (see [`crate::photo_checks`]).
    CheckKind, "invalid_check_kind" {
        Small = "small",
        Dark = "dark",
        Overexposed = "overexposed",
        Blurred = "blurred",
        Featureless = "featureless",
        Reused = "reused",
        PossiblyReused = "possibly_reused",
        Vision = "vision",
    }
);

string_enum!(
    /// What a photo check found: `flag` (the photo should be taken again), `warn` (worth a
    /// reviewer's look; the contractor is not asked) or `pass`.
    CheckResult, "invalid_check_result" {
        Flag = "flag",
        Warn = "warn",
        Pass = "pass",
    }
);

string_enum!(
    Role, "invalid_role" {
        Admin = "admin",
        Reviewer = "reviewer",
    }
);

impl Verdict {
    /// Verdicts that send the step back to the contractor.
    pub fn is_rejection(self) -> bool {
        matches!(self, Verdict::Missing | Verdict::Retake | Verdict::Rework)
    }
    /// What the contractor reads in the feedback message.
    pub fn feedback_label(self) -> &'static str {
        match self {
            Verdict::Missing => "photo missing",
            Verdict::Retake => "photo unusable, please retake",
            Verdict::Rework => "work must be fixed on site",
            Verdict::Ok => "accepted",
            Verdict::Pending => "not reviewed",
        }
    }
}

impl DropStatus {
    pub fn label(self) -> &'static str {
        match self {
            DropStatus::Collecting => "Collecting",
            DropStatus::Unreviewed => "Unreviewed",
            DropStatus::Incomplete => "Incomplete",
            DropStatus::Resubmitted => "Resubmitted",
            DropStatus::Approved => "Approved",
        }
    }
}

/// An e-mail address for sign-in: trimmed, lower-cased, one `@` with text on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let s = raw.trim().to_lowercase();
        let ok = s.len() <= 254
            && s.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
            && !s.chars().any(|c| c.is_whitespace())
            && s.matches('@').count() == 1;
        if ok {
            Ok(Self(s))
        } else {
            Err(InputError::new("invalid_email", format!("'{}' is not an e-mail address", raw.trim())))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The default 12-step checklist of a fibre installation drop.
pub const DEFAULT_CHECKLIST: [(&str, &str); 12] = [
    ("Property frontage with house number", "The front of the property with the house number readable."),
    ("Pole / drop cable origin", "The pole or chamber where the drop cable starts."),
    ("Cable entry outside", "Where the cable enters the building, outside."),
    ("Cable entry inside", "Where the cable comes through, inside."),
    ("Fibre termination box mounted", "The FTB mounted on the wall, cover off."),
    ("Patch lead routing", "The patch lead from FTB to ONT, neatly routed."),
    ("Power meter reading", "The optical power meter showing the reading."),
    ("ONT installed, lights on", "The ONT mounted with its status lights on."),
    ("ONT serial label", "The ONT's serial number label, readable."),
    ("Router / Wi-Fi installed", "The router installed and powered."),
    ("Speed test result", "A speed test result on a device connected to the router."),
    ("Customer sign-off", "The signed customer acceptance form."),
];

/// The default drop number pattern: `DR` + 8 digits.
pub const DEFAULT_DROP_PATTERN: &str = "^DR[0-9]{8}$";

/// The coded reasons a reviewer picks from (editable in the reason library).
pub const DEFAULT_REASONS: [(&str, &str); 7] = [
    ("no_photo", "No photo received"),
    ("blurry", "Blurred or out of focus"),
    ("dark", "Too dark"),
    ("wrong_subject", "Does not show what the step asks for"),
    ("unreadable", "Label or reading not readable"),
    ("poor_workmanship", "Workmanship not to standard"),
    ("other", "Other (see note)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_spelled_the_same_in_json_as_stored() {
        for k in CheckKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str(), "{k:?}");
            assert_eq!(serde_json::from_value::<CheckKind>(k.as_str().into()).unwrap(), *k);
        }
    }

    #[test]
    fn drop_numbers_are_upper_cased_and_checked() {
        assert_eq!(DropNumber::parse(" dr12345678 ").unwrap().as_str(), "DR12345678");
        assert_eq!(DropNumber::parse("DR 1").unwrap_err().code, "invalid_drop_number");
        assert_eq!(DropNumber::parse("../etc").unwrap_err().code, "invalid_drop_number");
        assert_eq!(DropNumber::parse("").unwrap_err().code, "invalid_drop_number");
    }

    #[test]
    fn stored_values_are_read_only_in_the_form_they_are_written() {
        assert_eq!(DropNumber::from_stored("DR12345678").unwrap().as_str(), "DR12345678");
        // What parse would accept from outside but never writes: refused when read back.
        assert!(DropNumber::from_stored("dr12345678").is_err());
        assert!(DropNumber::from_stored(" DR12345678").is_err());
        assert_eq!(Phone::from_stored("+27640412391").unwrap().as_str(), "+27640412391");
        for bad in ["27640412391", "+2764 0412391", "+0640412391", "+123", "+1234567890123456", "", "whatsapp:+27640412391"] {
            assert!(Phone::from_stored(bad).is_err(), "{bad}");
        }
        // Every number parse writes reads back as itself.
        for raw in ["+27 64 041 2391", "whatsapp:+14155238886", "447911123456"] {
            let p = Phone::parse(raw).unwrap();
            assert_eq!(Phone::from_stored(p.as_str()).unwrap(), p);
        }
    }

    #[test]
    fn phones_normalise_to_e164() {
        assert_eq!(Phone::parse("whatsapp:+27640412391").unwrap().as_str(), "+27640412391");
        assert_eq!(Phone::parse("+27 64 041 2391").unwrap().as_str(), "+27640412391");
        assert_eq!(Phone::parse("27640412391").unwrap().as_str(), "+27640412391");
        assert_eq!(Phone::parse("+1 415 555 2671").unwrap().as_str(), "+14155552671");
        for bad in ["", "hello", "+12", "+999999999999999999", "0640412391"] {
            assert_eq!(Phone::parse(bad).unwrap_err().code, "invalid_phone", "{bad}");
        }
    }

    #[test]
    fn steps_are_bounded() {
        assert_eq!(StepNo::parse("3").unwrap().get(), 3);
        assert!(StepNo::parse("0").is_err());
        assert!(StepNo::parse("51").is_err());
        assert!(StepNo::parse("x").is_err());
    }

    #[test]
    fn enums_round_trip_and_reject_unknowns() {
        for s in DropStatus::ALL {
            assert_eq!(DropStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert_eq!(Verdict::parse("RETAKE").unwrap(), Verdict::Retake);
        assert_eq!(Verdict::parse("bad").unwrap_err().code, "invalid_verdict");
        assert!(Verdict::Missing.is_rejection() && !Verdict::Ok.is_rejection());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.com", "a b@x.com", "a@@x.com", "a@x"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
