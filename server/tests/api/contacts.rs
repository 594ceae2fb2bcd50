//! Contacts over HTTP (issue 14, item 1): a profile with attributes, birthday, time zone and
//! consent; the list's filters; and a CSV import through `POST /api/v1/contacts/import` with
//! its preview, report, rejected rows file, and a re-import that creates nothing twice.

use crate::helpers::spawn;
use crate::http::BRIDGE;
use dropcheck_core::testing::on_each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn import(app: &crate::helpers::TestApp, csv: &str, parts: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("crew.csv").mime_str("text/csv").unwrap());
    for (k, v) in parts {
        form = form.text(k.to_string(), v.to_string());
    }
    let res =
        app.client.post(format!("{}/api/v1/contacts/import", app.base)).header("X-API-Key", BRIDGE).multipart(form).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_profile_goes_through_the_api_and_the_list_filters_it() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let def = json!({"key": "plan", "label": "Plan", "type": "enum", "options": ["Gold", "Silver"]});
        let (s, v) = app.api("POST", "/api/v1/contact-attributes", Some(BRIDGE), Some(&def.to_string())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let bad = json!({"key": "name", "label": "Name", "type": "text"});
        let (s, v) = app.api("POST", "/api/v1/contact-attributes", Some(BRIDGE), Some(&bad.to_string())).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_attribute")));

        let body = json!({"phone": "+27640412391", "name": "Thabo", "consent": "opted_in", "tags": ["crew-a"],
            "attributes": {"plan": "gold"}, "birthday": {"month": 3, "day": 14}, "time_zone": "Africa/Johannesburg"});
        let (s, c) = app.api("POST", "/api/v1/contacts", Some(BRIDGE), Some(&body.to_string())).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["attributes"], json!({"plan": "Gold"}));
        assert_eq!(c["birthday"], json!({"month": 3, "day": 14, "year": null}));
        assert_eq!((c["consent"]["status"].as_str(), c["consent"]["source"].as_str()), (Some("opted_in"), Some("API key bridge")));
        for (bad, code) in [
            (json!({"birthday": {"month": 2, "day": 30}}), "invalid_birthday"),
            (json!({"time_zone": "Mars/Base"}), "invalid_time_zone"),
            (json!({"attributes": {"plan": "Bronze"}}), "invalid_attribute"),
            (json!({"consent": "maybe"}), "invalid_consent"),
            (json!({"colour": "red"}), "invalid_json"),
        ] {
            let (s, v) = app.api("PUT", "/api/v1/contacts/%2B27640412391", Some(BRIDGE), Some(&bad.to_string())).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
            if code != "invalid_json" {
                assert_eq!(v["error"], code, "{bad}: {v}");
            }
        }
        let (_, c) = app
            .api("PUT", "/api/v1/contacts/%2B27640412391", Some(BRIDGE), Some(r#"{"time_zone": null, "attributes": {"plan": null}}"#))
            .await;
        assert_eq!((c["time_zone"].clone(), c["attributes"].clone(), c["name"].as_str()), (Value::Null, json!({}), Some("Thabo")), "{c}");

        app.api("POST", "/api/v1/contacts", Some(BRIDGE), Some(r#"{"phone": "+27831234567", "name": "Sipho"}"#)).await;
        let (_, v) = app.api("GET", "/api/v1/contacts?tag=CREW-A", Some(BRIDGE), None).await;
        assert_eq!((v["total"].as_i64(), v["contacts"][0]["name"].as_str()), (Some(1), Some("Thabo")));
        let (_, v) = app.api("GET", "/api/v1/contacts?consent=unknown&q=sip", Some(BRIDGE), None).await;
        assert_eq!(v["total"], 1);
        let (s, v) = app.api("GET", "/api/v1/contacts?attribute=plan", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_attribute")));
        let res =
            app.client.delete(format!("{}/api/v1/contact-attributes/plan", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    })
    .await;
}

const CSV: &str = "Phone number,Name,Tags,Birthday\r\n\
064 041 2391,Thabo,crew-a,14/03/1990\r\n\
+27 83 123 4567,\"Sipho, jnr\",crew-a;late,\r\n\
12345,Nobody,,\r\n\
0831234567,Sipho again,,\r\n\
+27 82 555 0100,Lerato,,31/02\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_previews_reports_its_rejected_rows_and_reimports_without_duplicates() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let (s, preview) = import(&app, CSV, &[("default_region", "ZA"), ("dry_run", "true")]).await;
        assert_eq!(s, StatusCode::OK, "{preview}");
        assert_eq!(
            preview["mapping"],
            json!({"Phone number": "phone", "Name": "name", "Tags": "tags", "Birthday": "birthday"}),
            "guessed from the headings"
        );
        assert_eq!(
            (preview["created"].as_i64(), preview["rejected"].as_i64(), preview["dry_run"].as_bool()),
            (Some(2), Some(3), Some(true))
        );
        let (_, list) = app.api("GET", "/api/v1/contacts", Some(BRIDGE), None).await;
        assert_eq!(list["total"], 0, "a preview writes nothing");

        let (s, report) = import(&app, CSV, &[("default_region", "ZA")]).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!((report["created"].as_i64(), report["rejected"].as_i64()), (Some(2), Some(3)));
        let lines: Vec<i64> = report["rejected_rows"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        let (_, sipho) = app.api("GET", "/api/v1/contacts/%2B27831234567", Some(BRIDGE), None).await;
        assert_eq!((sipho["name"].as_str(), sipho["tags"].clone()), (Some("Sipho, jnr"), json!(["crew-a", "late"])));

        let url = format!("{}{}", app.base, report["rejected_csv"].as_str().unwrap());
        let res = app.client.get(&url).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let text = res.text().await.unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), vec!["Phone number", "Name", "Tags", "Birthday", "line", "reason"]);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3, "every rejected row");
        assert!(rows[0][5].contains("not a valid phone number"), "{:?}", rows[0]);
        assert_eq!(&rows[1][5], "the same number as line 3");
        assert!(rows[2][5].contains("not a birthday"), "{:?}", rows[2]);

        let (_, again) = import(&app, CSV, &[("default_region", "ZA"), ("mode", "skip")]).await;
        assert_eq!((again["created"].as_i64(), again["skipped"].as_i64()), (Some(0), Some(2)));
        let (_, list) = app.api("GET", "/api/v1/contacts", Some(BRIDGE), None).await;
        assert_eq!(list["total"], 2, "re-importing the file created no contact twice");

        let (s, v) = import(&app, CSV, &[("mapping", r#"{"Name": "name"}"#)]).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_mapping")), "no phone column");
        let (s, v) = import(&app, CSV, &[("mode", "replace_all")]).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_mode")));
        let (s, v) = import(&app, "\u{0}\u{1}", &[]).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, _) = app.api("GET", "/api/v1/contacts/imports/999/rejected.csv", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_made_started_paused_and_cancelled_through_the_api() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        for (phone, consent) in [("+27640412391", "opted_in"), ("+27831234567", "opted_in"), ("+27825550100", "unknown")] {
            let body = json!({"phone": phone, "name": "Crew", "consent": consent, "tags": ["crew"]});
            app.api("POST", "/api/v1/contacts", Some(BRIDGE), Some(&body.to_string())).await;
        }
        let spec = json!({"name": "December", "template": "payment_confirmation", "tag": "crew", "pace_per_minute": 1,
            "variables": {"amount": "R 0", "reference": "DEC", "customer_name": "{{ name }}"}});
        let (s, c) = app.api("POST", "/api/v1/campaigns", Some(BRIDGE), Some(&spec.to_string())).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!((c["status"].as_str(), c["eligible"].as_i64()), (Some("draft"), Some(2)));
        assert_eq!(c["excluded"], json!({"not opted in for marketing": 1}));
        let id = c["id"].as_i64().unwrap();
        let (s, v) = app.api("POST", "/api/v1/campaigns", Some(BRIDGE), Some(r#"{"name": "x", "template": "nope", "tag": "crew"}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_campaign")));
        let (s, v) = app.api("POST", &format!("/api/v1/campaigns/{id}/pause"), Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        let (s, v) = app.api("POST", &format!("/api/v1/campaigns/{id}/start"), Some(BRIDGE), None).await;
        assert_eq!((s, v["status"].as_str(), v["recipients"]["pending"].as_i64()), (StatusCode::OK, Some("running"), Some(2)), "{v}");
        assert_eq!(app.store.sweep_campaigns(dropcheck_core::now_ms()).await.unwrap(), 1, "its pace: 1 a minute");
        app.drain().await;
        let (_, v) = app.api("GET", &format!("/api/v1/campaigns/{id}"), Some(BRIDGE), None).await;
        assert_eq!(v["recipients"]["queued"], 1);
        let (_, v) = app.api("POST", &format!("/api/v1/campaigns/{id}/pause"), Some(BRIDGE), None).await;
        assert_eq!(v["status"], "paused");
        assert_eq!(app.store.sweep_campaigns(dropcheck_core::now_ms() + 120_000).await.unwrap(), 0, "paused: nothing");
        let (_, v) = app.api("POST", &format!("/api/v1/campaigns/{id}/cancel"), Some(BRIDGE), None).await;
        assert_eq!(v["status"], "cancelled");
        let (s, v) = app.api("GET", "/api/v1/campaigns", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["campaigns"][0]["id"].as_i64(), Some(id));
        assert_eq!(
            (v["campaigns"][0]["status"].as_str(), v["campaigns"][0]["recipients"]["queued"].as_i64()),
            (Some("cancelled"), Some(1)),
            "{v}"
        );
        let (s, v) = app.api("POST", &format!("/api/v1/campaigns/{id}/explode"), Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_action")));
        let (s, _) = app.api("GET", "/api/v1/campaigns/999", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    })
    .await;
}
