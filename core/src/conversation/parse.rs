//! The contractor's WhatsApp grammar (drop numbers, captions naming a step, DONE, the
//! commands), as pure parsing: what a message
//! asks for. The effects (drops, photos, replies) are applied by the store's inbox
//! processing, which calls [`parse_text`] and [`parse_caption`].

use regex::Regex;
use std::sync::OnceLock;

use crate::domain::DropNumber;

/// What a text message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A drop number somewhere in the text: open (or create) that drop.
    Drop(DropNumber),
    /// `DR12345678 DONE`, or `DONE` for the active drop.
    Done(Option<DropNumber>),
    Help,
    Status,
    Drops,
    Project(String),
    Clear,
    Verify(String),
    Stop,
    Start,
    /// Anything else: stored, answered with a hint.
    Unknown,
}

fn drop_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // A drop number is two letters and 6–10 digits as one word (DR12345678); the project's own
    // pattern is checked when the drop is opened.
    RE.get_or_init(|| Regex::new(r"(?i)\b([a-z]{2}[0-9]{6,10})\b").expect("valid regex"))
}

fn step_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)^(?:step\s*|#)?\s*([0-9]{1,2})$").expect("valid regex"))
}

fn verify_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)^verify\s+([0-9]{6})$").expect("valid regex"))
}

/// Finds the first drop number in a text.
pub fn find_drop_number(text: &str) -> Option<DropNumber> {
    drop_re().captures(text).and_then(|c| DropNumber::parse(&c[1]).ok())
}

/// Reads a text message.
pub fn parse_text(text: &str) -> Command {
    let t = text.trim();
    let lower = t.to_lowercase();
    match lower.as_str() {
        "stop" | "unsubscribe" => return Command::Stop,
        "start" | "unstop" => return Command::Start,
        "/help" | "help" | "?" => return Command::Help,
        "/status" => return Command::Status,
        "/drops" => return Command::Drops,
        "/clear" => return Command::Clear,
        "done" => return Command::Done(None),
        _ => {}
    }
    if let Some(name) = t.strip_prefix("/project").or_else(|| t.strip_prefix("/PROJECT")) {
        return Command::Project(name.trim().to_string());
    }
    if let Some(c) = verify_re().captures(t) {
        return Command::Verify(c[1].to_string());
    }
    if let Some(dn) = find_drop_number(t) {
        let rest = drop_re().replace(t, " ");
        if rest.split_whitespace().any(|w| w.eq_ignore_ascii_case("done")) {
            return Command::Done(Some(dn));
        }
        return Command::Drop(dn);
    }
    Command::Unknown
}

/// A photo's caption: which drop and which step it is for, when it says.
/// `3`, `step 3`, `#3`, `DR12345678 3`, `DR12345678` (drop only) or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caption {
    pub drop: Option<DropNumber>,
    pub step: Option<i64>,
}

pub fn parse_caption(caption: &str) -> Caption {
    let t = caption.trim();
    let drop = find_drop_number(t);
    let rest = drop_re().replace(t, " ");
    let rest = rest.trim();
    let step = step_re().captures(rest).and_then(|c| c[1].parse::<i64>().ok()).filter(|n| *n >= 1);
    Caption { drop, step }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> DropNumber {
        DropNumber::parse(s).unwrap()
    }

    #[test]
    fn texts_map_to_commands() {
        assert_eq!(parse_text("DR12345678"), Command::Drop(dn("DR12345678")));
        assert_eq!(parse_text("hi, starting dr12345678 now"), Command::Drop(dn("DR12345678")));
        assert_eq!(parse_text("DR12345678 DONE"), Command::Done(Some(dn("DR12345678"))));
        assert_eq!(parse_text("dr12345678 done"), Command::Done(Some(dn("DR12345678"))));
        assert_eq!(parse_text("Done"), Command::Done(None));
        assert_eq!(parse_text(" /help "), Command::Help);
        assert_eq!(parse_text("/status"), Command::Status);
        assert_eq!(parse_text("/drops"), Command::Drops);
        assert_eq!(parse_text("/project Velo Test"), Command::Project("Velo Test".into()));
        assert_eq!(parse_text("/clear"), Command::Clear);
        assert_eq!(parse_text("VERIFY 123456"), Command::Verify("123456".into()));
        assert_eq!(parse_text("STOP"), Command::Stop);
        assert_eq!(parse_text("start"), Command::Start);
        assert_eq!(parse_text("hello"), Command::Unknown);
        assert_eq!(parse_text("VERIFY 12345"), Command::Unknown);
        assert_eq!(parse_text("call me at 0821234567"), Command::Unknown, "a phone number is not a drop number");
    }

    #[test]
    fn captions_name_a_step_and_maybe_a_drop() {
        assert_eq!(parse_caption(""), Caption::default());
        assert_eq!(parse_caption("3"), Caption { drop: None, step: Some(3) });
        assert_eq!(parse_caption("step 3"), Caption { drop: None, step: Some(3) });
        assert_eq!(parse_caption("Step3"), Caption { drop: None, step: Some(3) });
        assert_eq!(parse_caption("#12"), Caption { drop: None, step: Some(12) });
        assert_eq!(parse_caption("DR12345678 3"), Caption { drop: Some(dn("DR12345678")), step: Some(3) });
        assert_eq!(parse_caption("DR12345678"), Caption { drop: Some(dn("DR12345678")), step: None });
        assert_eq!(parse_caption("the meter"), Caption::default());
        assert_eq!(parse_caption("0"), Caption::default());
    }
}
