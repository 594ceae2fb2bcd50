//! CSV exports (issue 15, item 2, the drops list): `GET /api/v1/drops?format=csv` and the
//! page's "Download CSV" (`/drops.csv` with the page's filters) stream every matching drop;
//! read back by a CSV parser they are the API's JSON, and a cell a spreadsheet would run as a
//! formula is text.

use crate::helpers::spawn;
use crate::http::{sign_in_first_admin, BRIDGE};
use dropcheck_core::providers::{InboundMessage, MessageKind};
use dropcheck_core::testing::on_each_backend;
use reqwest::{header, StatusCode};
use serde_json::Value;

fn records(body: &str) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new().has_headers(true).from_reader(body.as_bytes()).records().map(|r| r.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drops_list_downloads_as_csv_equal_to_the_api_and_safe_for_spreadsheets() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        // More than one page (200) of drops, and one whose contractor's WhatsApp name is a formula.
        for n in 0..205 {
            let body = format!(r#"{{"drop_number":"DR{:08}","contractor_number":"+27640412391","project_name":"Velo Test"}}"#, 10_000_000 + n);
            let (s, v) = app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(&body)).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        let msg = InboundMessage {
            provider_id: "SM1".into(),
            from: "+27825550099".into(),
            profile_name: "=HYPERLINK(\"http://evil\",\"x\")".into(),
            body: "DR20000001".into(),
            kind: MessageKind::Text,
            media: vec![],
        };
        app.store.handle_message(&msg, &[], dropcheck_core::now_ms()).await.unwrap();

        let res = app.client.get(format!("{}/api/v1/drops?format=csv", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
        assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().contains("drops.csv"));
        let body = res.text().await.unwrap();
        assert!(body.starts_with("drop_number,status,project,contractor_phone,contractor_name,round,photo_steps,step_count,open_flags,created_at,activity_at\r\n"));
        let rows = records(&body);
        assert_eq!(rows.len(), 206, "every drop, across pages");

        // The same drops as the API's JSON, page by page, in the same order.
        let mut json: Vec<Value> = vec![];
        let mut cursor = String::new();
        loop {
            let (s, v) = app.api("GET", &format!("/api/v1/drops?limit=200{cursor}"), Some(BRIDGE), None).await;
            assert_eq!(s, StatusCode::OK);
            json.extend(v["drops"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(json.len(), rows.len());
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        for (r, j) in rows.iter().zip(&json) {
            let unquote = |s: &str| s.strip_prefix('\'').unwrap_or(s).to_string();
            assert_eq!(r[0], text(&j["drop_number"]));
            assert_eq!(r[1], text(&j["status"]));
            assert_eq!(r[2], text(&j["project"]));
            assert_eq!(unquote(&r[3]), text(&j["contractor"]["phone"]));
            assert_eq!(unquote(&r[4]), text(&j["contractor"]["name"]));
            for (i, k) in [(5, "round"), (6, "photo_steps"), (7, "step_count"), (8, "open_flags"), (9, "created_at"), (10, "activity_at")] {
                assert_eq!(r[i], text(&j[k]), "{k}");
            }
        }
        // Formula-looking cells are text: the name, and phone numbers (they start with +).
        let evil = rows.iter().find(|r| &r[0] == "DR20000001").unwrap();
        assert_eq!(&evil[4], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(&evil[3], "'+27825550099");

        let (s, v) = app.api("GET", "/api/v1/drops?format=xml", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_format")));
        // A filter the store refuses is refused before the download starts (the fuzzer found
        // a 201-character search answered with a dropped connection).
        let long = "0".repeat(201);
        let (s, v) = app.api("GET", &format!("/api/v1/drops?format=csv&q={long}"), Some(BRIDGE), None).await;
        assert!(s.is_client_error() && v["error"].is_string(), "{s} {v}");

        // The page's download: signed in only, with the page's filters.
        let r = app.get("/drops.csv").await;
        assert!(r.status().is_redirection(), "{}", r.status());
        sign_in_first_admin(&app).await;
        let r = app.get("/drops.csv?q=DR2000").await;
        assert_eq!(r.status(), StatusCode::OK);
        let only = records(&r.text().await.unwrap());
        // Compressed, as a browser asks for it (the body is read to its end, and past it).
        let gz = app.client.get(format!("{}/drops.csv", app.base)).header(header::ACCEPT_ENCODING, "gzip").send().await.unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let zipped = gz.bytes().await.unwrap();
        assert!(zipped.len() > 100 && zipped[..2] == [0x1f, 0x8b], "a whole gzip stream");
        let mut unzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut unzipped).expect("a complete gzip stream");
        assert_eq!(records(&unzipped).len(), 206);
        assert_eq!(only.len(), 1);
        assert_eq!(&only[0][0], "DR20000001");
        let r = app.get("/drops.csv?status=unreviewed").await;
        assert!(records(&r.text().await.unwrap()).iter().all(|r| &r[1] == "unreviewed"));
        let r = app.get("/drops.csv?from=yesterday").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.text().await.unwrap().contains("is not a date"));
        let r = app.get(&format!("/drops.csv?q={long}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    })
    .await;
}

/// The text a JSON value is in a CSV cell (null: empty).
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('\'').unwrap_or(s).to_string()
}

async fn csv_of(app: &crate::helpers::TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(format!("{}{path}", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8", "{path}");
    }
    (status, res.text().await.unwrap())
}

/// Messages and contacts download like the drops: `?format=csv` on their API lists and the
/// pages' "Download CSV" (`/messages.csv`, `/contacts.csv` with the pages' filters); read back
/// they equal the JSON, every row across pages, formula-looking cells made text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_contacts_download_as_csv_equal_to_the_api() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let (s, v) = app.api("POST", "/api/v1/contact-attributes", Some(BRIDGE), Some(r#"{"key": "plan", "label": "Plan", "type": "enum", "options": ["Gold", "Silver"]}"#)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // 210 contacts (two pages), one named like a formula; 210 messages to them.
        for i in 0..210 {
            let name = if i == 7 { "@SUM(A1:A9)".to_string() } else { format!("Crew {i}") };
            let body = serde_json::json!({"phone": format!("+2782{:07}", 5_550_000 + i), "name": name, "tags": ["crew", "north"],
                "attributes": {"plan": if i % 2 == 0 { "Gold" } else { "Silver" }}, "consent": "opted_in", "birthday": {"month": 3, "day": 14}});
            let (s, v) = app.api("POST", "/api/v1/contacts", Some(BRIDGE), Some(&body.to_string())).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            let send = serde_json::json!({"to": format!("+2782{:07}", 5_550_000 + i), "message": format!("=cmd|' /C calc'!A0 {i}")});
            let (s, v) = app.api("POST", "/send", Some(BRIDGE), Some(&send.to_string())).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }

        // Messages.
        let (s, body) = csv_of(&app, "/api/v1/messages?format=csv").await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.starts_with("id,direction,phone,body,template,status,provider_message_id,error_code,error_text,attempts,drop_number,created_at\r\n"));
        let rows = records(&body);
        let mut json: Vec<Value> = vec![];
        let mut cursor = String::new();
        loop {
            let (_, v) = app.api("GET", &format!("/api/v1/messages?limit=200{cursor}"), Some(BRIDGE), None).await;
            json.extend(v["messages"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!((rows.len(), json.len()), (210, 210), "every message, across pages");
        for (r, j) in rows.iter().zip(&json) {
            for (i, k) in ["id", "direction", "phone", "body", "template", "status", "provider_message_id", "error_code", "error_text", "attempts", "drop_number"].iter().enumerate() {
                assert_eq!(unquote(&r[i]), cell(&j[k]), "{k}");
            }
            let at = time::OffsetDateTime::parse(&r[11], &time::format_description::well_known::Rfc3339).unwrap();
            assert_eq!((at.unix_timestamp_nanos() / 1_000_000) as i64, j["created_at"].as_i64().unwrap(), "created_at");
            assert!(r[3].starts_with("'="), "a formula is text: {}", &r[3]);
        }
        let (_, one) = csv_of(&app, "/api/v1/messages?format=csv&phone=825550007").await;
        assert_eq!(records(&one).len(), 1, "the filters apply");
        let (s, v) = app.api("GET", "/api/v1/messages?format=pdf", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_format")));

        // Contacts, with the custom attributes as columns.
        let (s, body) = csv_of(&app, "/api/v1/contacts?format=csv&limit=5").await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.starts_with("phone,name,consent,consent_at,consent_source,tags,birthday,time_zone,opted_out,last_inbound_at,created_at,attribute:plan\r\n"), "{}", &body[..200]);
        let rows = records(&body);
        let (_, v) = app.api("GET", "/api/v1/contacts?limit=1000", Some(BRIDGE), None).await;
        let json = v["contacts"].as_array().unwrap();
        assert_eq!((rows.len(), json.len()), (210, 210), "every contact: limit does not apply to the download");
        for (r, j) in rows.iter().zip(json) {
            assert_eq!(unquote(&r[0]), cell(&j["phone"]));
            assert_eq!(unquote(&r[1]), cell(&j["name"]));
            assert_eq!(r[2], cell(&j["consent"]["status"]));
            assert_eq!(r[4], cell(&j["consent"]["source"]));
            let tags: Vec<String> = j["tags"].as_array().unwrap().iter().map(cell).collect();
            assert_eq!(r[5], tags.join(";"));
            assert_eq!(&r[6], "03-14");
            assert_eq!(r[8], cell(&j["opted_out"]));
            assert_eq!(r[11], cell(&j["attributes"]["plan"]));
        }
        assert!(rows.iter().any(|r| &r[1] == "'@SUM(A1:A9)"), "a formula-looking name is text");
        let (_, gold) = csv_of(&app, "/api/v1/contacts?format=csv&attribute=plan:Gold").await;
        assert_eq!(records(&gold).len(), 105);

        // The pages' downloads: signed in, with the pages' filters.
        let r = app.get("/contacts.csv").await;
        assert!(r.status().is_redirection(), "{}", r.status());
        sign_in_first_admin(&app).await;
        let r = app.get("/contacts.csv?attribute=plan&value=Silver&tag=crew").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(records(&r.text().await.unwrap()).len(), 105);
        let r = app.get("/contacts.csv?consent=maybe").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = app.get("/messages.csv?direction=out&days=1").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(records(&r.text().await.unwrap()).len(), 210);
        let r = app.get("/messages.csv?direction=sideways").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    })
    .await;
}

/// Scorecards on a constructed history: Thabo's three drops — one approved at once, one sent
/// back twice (steps 3 and 7, then 3) before approval, one waiting — and Naledi's one drop
/// approved at once (her second drop is still collecting, so it does not count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contractor_scorecards_count_first_time_right_and_the_steps_sent_back() {
    use dropcheck_core::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict};
    use dropcheck_core::store::{ActorRef, StepVerdict};
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let project = app.store.project_by_name("Velo Test").await.unwrap().unwrap();
        let qa = ActorRef::system("qa@example.com");
        let thabo = Phone::parse("+27640412391").unwrap();
        let naledi = Phone::parse("+27825550142").unwrap();
        app.store.upsert_contact(&thabo, "Thabo").await.unwrap();
        app.store.upsert_contact(&naledi, "Naledi").await.unwrap();
        let dn = |s: &str| DropNumber::parse(s).unwrap();
        let v = |n: i64, verdict: Verdict| StepVerdict {
            step: StepNo::new(n).unwrap(),
            verdict,
            reason: verdict.is_rejection().then(|| "no_photo".to_string()),
            note: String::new(),
        };
        let all_ok: Vec<StepVerdict> = (1..=12).map(|n| v(n, Verdict::Ok)).collect();
        for (n, who, status) in [
            ("DR10000001", &thabo, DropStatus::Unreviewed),
            ("DR10000002", &thabo, DropStatus::Unreviewed),
            ("DR10000003", &thabo, DropStatus::Unreviewed),
            ("DR10000004", &naledi, DropStatus::Unreviewed),
            ("DR10000005", &naledi, DropStatus::Collecting),
        ] {
            app.store.create_drop(&project, &dn(n), Some(who), status, &qa).await.unwrap();
        }
        for n in ["DR10000001", "DR10000004"] {
            app.store.set_verdicts(&dn(n), &all_ok, &qa).await.unwrap();
            app.store.approve(&dn(n), true, &qa).await.unwrap();
        }
        let d2 = dn("DR10000002");
        app.store.set_verdicts(&d2, &[v(3, Verdict::Missing), v(7, Verdict::Retake)], &qa).await.unwrap();
        app.store.mark_incomplete(&d2, &qa).await.unwrap();
        app.store.resubmit(&d2, &qa).await.unwrap();
        app.store.set_verdicts(&d2, &[v(3, Verdict::Retake)], &qa).await.unwrap();
        app.store.mark_incomplete(&d2, &qa).await.unwrap();
        app.store.resubmit(&d2, &qa).await.unwrap();
        app.store.set_verdicts(&d2, &all_ok, &qa).await.unwrap();
        app.store.approve(&d2, true, &qa).await.unwrap();

        let (s, v) = app.api("GET", "/api/v1/stats/contractors?project=Velo%20Test&days=30", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let cards = v["contractors"].as_array().unwrap();
        assert_eq!(cards.len(), 2, "{v}");
        let t = &cards[0];
        assert_eq!((t["phone"].as_str(), t["name"].as_str()), (Some("+27640412391"), Some("Thabo")), "most drops first");
        assert_eq!((t["drops"].as_i64(), t["approved"].as_i64(), t["approved_first_time"].as_i64()), (Some(3), Some(2), Some(1)));
        assert_eq!(t["first_time_right_rate"].as_f64(), Some(0.5));
        assert_eq!(t["rejections_by_step"], serde_json::json!({"3": 2, "7": 1}));
        assert!(t["median_resubmit_seconds"].as_i64().is_some_and(|s| s >= 0), "{t}");
        assert!(t["median_approval_seconds"].as_i64().is_some_and(|s| s >= 0), "{t}");
        assert_eq!(t["flags"], 0);
        let n = &cards[1];
        assert_eq!(
            (n["drops"].as_i64(), n["approved_first_time"].as_i64(), n["first_time_right_rate"].as_f64()),
            (Some(1), Some(1), Some(1.0))
        );
        assert_eq!(n["rejections_by_step"], serde_json::json!({}));
        assert!(n["median_resubmit_seconds"].is_null(), "no data: null");

        let (s, v) = app.api("GET", "/api/v1/stats/contractors?project=Nope", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("project_not_found")));
        let (s, v) = app.api("GET", "/api/v1/stats/contractors?days=0", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_days")));

        // The page: sortable, each row linking to the contractor's drops.
        sign_in_first_admin(&app).await;
        let html = app.get("/stats/contractors?days=30&sort=ftr").await.text().await.unwrap();
        let naledi_at = html.find(r#"data-phone="+27825550142""#).expect("Naledi's row");
        let thabo_at = html.find(r#"data-phone="+27640412391""#).expect("Thabo's row");
        assert!(naledi_at < thabo_at, "sorted by first time right, best first");
        assert!(html.contains("50% (1 of 2)") && html.contains("step 3 ×2 · 7 ×1"), "the figures in words");
        assert!(html.contains(r#"href="/?contractor=%2B27640412391""#), "a row opens the contractor's drops");
    })
    .await;
}

/// The evidence pack: a PDF that opens (its pages counted by a PDF parser), whose extracted
/// text holds the drop number, every step's verdict and note, and each photo's SHA-256, with
/// the photos embedded; through the API and the drop page's link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drops_evidence_pack_is_a_searchable_pdf_with_every_verdict_note_and_digest() {
    use dropcheck_core::domain::{DropNumber, StepNo, Verdict};
    use dropcheck_core::media::{demo_photo, MediaStore};
    use dropcheck_core::store::{ActorRef, NewPhoto, StepVerdict};
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        let config = dropcheck::config::Config { data_dir: dir.path().to_path_buf(), ..dropcheck::config::Config::for_tests() };
        let app = crate::helpers::spawn_app(store, config).await;
        app.seed_project().await;
        let body = r#"{"drop_number":"DR12345678","contractor_number":"+27640412391","project_name":"Velo Test"}"#;
        app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(body)).await;
        let media = MediaStore::new(dir.path());
        let dn = DropNumber::parse("DR12345678").unwrap();
        let qa = ActorRef::system("qa@example.com");
        let mut shas = vec![];
        for step in 1..=12 {
            let s = media.store_image(demo_photo("DR12345678", step, "x", step as u32)).await.unwrap();
            shas.push(s.sha256.clone());
            app.store
                .add_photo(&dn, &NewPhoto::from_stored(StepNo::new(step).unwrap(), &s, None, dropcheck_core::now_ms()), &qa)
                .await
                .unwrap();
        }
        // Step 3 sent back with a note, then a second photo: the first stays as an earlier one.
        let note = |n: i64, verdict: Verdict, note: &str| StepVerdict {
            step: StepNo::new(n).unwrap(),
            verdict,
            reason: verdict.is_rejection().then(|| "no_photo".to_string()),
            note: note.into(),
        };
        app.store.set_verdicts(&dn, &[note(3, Verdict::Retake, "Cable clip loose at the entry")], &qa).await.unwrap();
        let again = media.store_image(demo_photo("DR12345678", 3, "retake", 99)).await.unwrap();
        shas.push(again.sha256.clone());
        app.store
            .add_photo(&dn, &NewPhoto::from_stored(StepNo::new(3).unwrap(), &again, None, dropcheck_core::now_ms()), &qa)
            .await
            .unwrap();
        let verdicts: Vec<StepVerdict> =
            (1..=12).filter(|n| *n != 3).map(|n| note(n, Verdict::Ok, if n == 7 { "Meter reads 0412" } else { "" })).collect();
        app.store.set_verdicts(&dn, &verdicts, &qa).await.unwrap();

        let res =
            app.client.get(format!("{}/api/v1/drops/DR12345678/evidence.pdf", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/pdf");
        assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().contains("evidence-DR12345678.pdf"));
        let pdf = res.bytes().await.unwrap().to_vec();
        assert!(pdf.starts_with(b"%PDF-"));
        let doc = lopdf::Document::load_mem(&pdf).expect("a PDF a parser reads");
        let pages = doc.get_pages().len();
        assert!(pages >= 2, "{pages} pages");
        let images = doc
            .objects
            .values()
            .filter(|o| o.as_stream().is_ok_and(|s| s.dict.get(b"Subtype").is_ok_and(|t| t.as_name().is_ok_and(|n| n == b"Image"))))
            .count();
        assert_eq!(images, 13, "every photo embedded, the earlier one too");
        let text = pdf_extract::extract_text_from_mem(&pdf).expect("the text extracts");
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("DR12345678") && flat.contains("Velo Test") && flat.contains("+27640412391"), "{flat}");
        assert!(flat.contains("Cable clip loose at the entry") && flat.contains("Meter reads 0412"), "the notes");
        assert!(
            flat.contains("photo unusable, please retake") && flat.matches("Verdict: accepted").count() == 11,
            "every step's verdict: {flat}"
        );
        assert!(flat.contains("Reviewed by qa@example.com") || flat.contains("Reviewed"), "the reviewer");
        for sha in &shas {
            assert!(flat.contains(sha.as_str()), "photo {sha}'s digest");
        }
        assert!(flat.contains("Timeline"));
        assert_eq!(flat.matches("PDQ: ").count(), 13, "each photo's PDQ hash");

        let (s, v) = app.api("GET", "/api/v1/drops/DR99999999/evidence.pdf", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("drop_not_found")), "{v}");
        // The drop page's link: signed in.
        let r = app.get("/drops/DR12345678/evidence.pdf").await;
        assert!(r.status().is_redirection());
        sign_in_first_admin(&app).await;
        let r = app.get("/drops/DR12345678/evidence.pdf").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().len() > 10_000, true);
    })
    .await;
}
