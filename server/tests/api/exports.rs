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
