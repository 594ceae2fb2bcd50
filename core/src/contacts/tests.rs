use super::import::{plan, read_csv, rejected_csv, ImportMapping, Target};
use super::*;
use serde_json::json;

fn def(key: &str, kind: AttrType, options: &[&str]) -> AttributeDef {
    AttributeDef { key: key.into(), label: key.into(), kind, options: options.iter().map(|o| o.to_string()).collect() }
}

#[test]
fn attribute_values_are_checked_and_stored_by_their_type() {
    let n = def("meters", AttrType::Number, &[]);
    assert_eq!(n.canonical(&json!("12.50")).unwrap(), "12.5");
    assert_eq!(n.canonical(&json!(3)).unwrap(), "3.0");
    assert_eq!(n.typed("12.5"), json!(12.5));
    assert!(n.canonical(&json!("twelve")).is_err());
    let b = def("vip", AttrType::Bool, &[]);
    assert_eq!(b.canonical(&json!("Yes")).unwrap(), "true");
    assert_eq!(b.canonical(&json!(false)).unwrap(), "false");
    assert_eq!(b.typed("true"), json!(true));
    assert!(b.canonical(&json!("maybe")).is_err());
    let d = def("since", AttrType::Date, &[]);
    assert!(d.canonical(&json!("2026-02-30")).is_err(), "not a real date");
    assert_eq!(d.canonical(&json!("2026-02-28")).unwrap(), "2026-02-28");
    let e = def("plan", AttrType::Enum, &["Gold", "Silver"]);
    assert_eq!(e.canonical(&json!("gold")).unwrap(), "Gold", "an option in its defined spelling");
    assert!(e.canonical(&json!("Bronze")).unwrap_err().contains("Gold, Silver"));
    let u = def("site", AttrType::Url, &[]);
    assert!(u.canonical(&json!("javascript:alert(1)")).is_err());
    assert!(u.canonical(&json!("https://example.com/a")).is_ok());
    assert!(def("t", AttrType::Text, &[]).canonical(&json!(["a"])).is_err());
}

#[test]
fn attribute_definitions_refuse_reserved_and_malformed_keys() {
    assert!(def("plan", AttrType::Enum, &["a", "b"]).check().is_ok());
    assert!(def("name", AttrType::Text, &[]).check().is_err(), "a base field's name");
    assert!(def("Plan", AttrType::Text, &[]).check().is_err());
    assert!(def("1plan", AttrType::Text, &[]).check().is_err());
    assert!(def("plan", AttrType::Enum, &[]).check().is_err(), "an enum needs options");
    assert!(def("plan", AttrType::Enum, &["a", "A"]).check().is_err(), "options are distinct");
    assert!(def("plan", AttrType::Text, &["a"]).check().is_err(), "only enums have options");
}

#[test]
fn birthdays_read_from_the_usual_forms_and_29_february_falls_on_28_february_in_other_years() {
    assert_eq!(Birthday::parse_text("1990-03-14").unwrap(), Birthday { month: 3, day: 14, year: Some(1990) });
    assert_eq!(Birthday::parse_text("03-14").unwrap(), Birthday { month: 3, day: 14, year: None });
    assert_eq!(Birthday::parse_text("--03-14").unwrap(), Birthday { month: 3, day: 14, year: None });
    assert_eq!(Birthday::parse_text("14/03/1990").unwrap(), Birthday { month: 3, day: 14, year: Some(1990) });
    assert!(Birthday::parse_text("31/02").is_err());
    assert!(Birthday::parse_text("2023-02-29").is_err(), "2023 has no 29 February");
    assert!(Birthday::parse_text("02-29").is_ok());
    let leap = Birthday { month: 2, day: 29, year: None };
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert!(leap.falls_on(date(2027, 2, 28)));
    assert!(!leap.falls_on(date(2028, 2, 28)), "2028 has a 29 February");
    assert!(leap.falls_on(date(2028, 2, 29)));
    assert!(!Birthday { month: 3, day: 14, year: None }.falls_on(date(2027, 3, 15)));
}

#[test]
fn consent_keeps_an_opt_in_when_an_opt_out_is_undone_in_the_older_form() {
    let undo = ContactUpdate { opted_out: Some(false), ..Default::default() };
    assert_eq!(undo.next_consent(ConsentStatus::OptedIn), ConsentStatus::OptedIn);
    assert_eq!(undo.next_consent(ConsentStatus::OptedOut), ConsentStatus::Unknown);
    let out = ContactUpdate { opted_out: Some(true), ..Default::default() };
    assert_eq!(out.next_consent(ConsentStatus::OptedIn), ConsentStatus::OptedOut);
    let both = ContactUpdate { opted_out: Some(true), consent: Some(ConsentStatus::OptedIn), ..Default::default() };
    assert!(both.check().is_err(), "two answers that disagree");
    assert_eq!(ConsentStatus::parse("Opted in").unwrap(), ConsentStatus::OptedIn);
    assert!(ConsentStatus::parse("perhaps").is_err());
    assert!(check_time_zone("Mars/Olympus").is_err());
}

#[test]
fn an_import_reads_national_numbers_in_the_default_region_and_rejects_each_bad_row_with_its_reason() {
    let file = read_csv(
        "Mobile;Full name;Birthday;Plan;Tags\n\
         064 041 2391;Thabo;14/03/1990;gold;crew-a, late\n\
         +44 7911 123456;Jo;;Silver;\n\
         12;Bad number;;;\n\
         0640412391;Thabo again;;;\n\
         +27 82 555 0100;Sipho;31/02;;\n\
         +27 82 555 0101;Lerato;;Bronze;\n\
         =cmd|' /C calc'!A0;Mallory;;;\n",
    )
    .unwrap();
    assert_eq!(file.headers, vec!["Mobile", "Full name", "Birthday", "Plan", "Tags"], "a ;-separated file is read by its heading");
    let defs = vec![def("plan", AttrType::Enum, &["Gold", "Silver"])];
    let guessed: Vec<Target> = file.headers.iter().map(|h| Target::guess(h, &defs)).collect();
    assert_eq!(guessed, vec![Target::Phone, Target::Name, Target::Birthday, Target::Attribute("plan".into()), Target::Tags]);
    let mapping = ImportMapping {
        columns: file.headers.iter().zip(&guessed).map(|(h, t)| (h.clone(), t.as_string())).collect(),
        default_region: Some("za".into()),
        ..Default::default()
    };
    let (ok, rejected) = plan(&file, &mapping, &defs).unwrap();
    let phones: Vec<&str> = ok.iter().map(|r| r.phone.as_str()).collect();
    assert_eq!(phones, vec!["+27640412391", "+447911123456"]);
    assert_eq!(ok[0].update.tags, Some(vec!["crew-a".to_string(), "late".to_string()]));
    assert_eq!(ok[0].update.birthday, Some(Some(Birthday { month: 3, day: 14, year: Some(1990) })));
    let reasons: Vec<(u64, &str)> = rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].1.contains("not a valid phone number"), "{reasons:?}");
    assert_eq!(reasons[1], (5, "the same number as line 2"));
    assert!(reasons[2].1.contains("not a birthday"));
    assert!(reasons[3].1.contains("not one of Gold, Silver"));
    let out = rejected_csv(&file.headers, &rejected).unwrap();
    assert!(out.starts_with("Mobile,Full name,Birthday,Plan,Tags,line,reason\r\n"));
    assert!(out.contains("'=cmd"), "a formula is shown as text: {out}");
    let back = read_csv(&out).unwrap();
    assert_eq!(back.rows.len(), 5, "every rejected row, read back by a CSV parser");
}

#[test]
fn line_numbers_are_the_files_with_crlf_and_quoted_line_breaks() {
    let f = read_csv("phone,name\r\n+27640412391,\"Two\r\nlines\"\r\n\r\n+27831234567,Sipho\r\n").unwrap();
    let lines: Vec<u64> = f.rows.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![2, 5], "a blank line skipped, a quoted line break counted");
}

#[test]
fn a_mapping_needs_a_phone_column_and_known_columns_and_attributes() {
    let file = read_csv("phone,name\n+27640412391,Thabo\n").unwrap();
    let m = |cols: &[(&str, &str)]| ImportMapping {
        columns: cols.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        ..Default::default()
    };
    assert!(plan(&file, &m(&[("name", "name")]), &[]).is_err(), "no phone column");
    assert!(plan(&file, &m(&[("phone", "phone"), ("nope", "name")]), &[]).is_err());
    assert!(plan(&file, &m(&[("phone", "phone"), ("name", "attribute:plan")]), &[]).is_err());
    assert!(plan(&file, &m(&[("phone", "phone"), ("name", "name")]), &[]).is_ok());
    assert!(read_csv("").is_err());
}
