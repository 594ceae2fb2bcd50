//! Usable-photo checks over HTTP (issue 13): a flagged photo's checks in
//! `GET /api/v1/drops/{number}`, `?flagged=true` on the list, and "Approve all" asking for a
//! confirmation (a plain form post, as without JavaScript) while a flag is open.

use crate::helpers::{spawn, TestApp};
use crate::http::{carried, location, sign_in_first_admin, BRIDGE};
use dropcheck_core::domain::{DropNumber, DropStatus, StepNo};
use dropcheck_core::media::{demo_photo, spoiled_photo, MediaStore};
use dropcheck_core::store::{ActorRef, NewPhoto};
use dropcheck_core::testing::on_each_backend;
use reqwest::{header, StatusCode};

/// The drop page's form posted as a browser without JavaScript posts it (from the page).
async fn post_from_drop_page(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = format!("{}/drops/DR12345678", app.base);
    let req = app.client.post(format!("{}{path}", app.base)).header(header::ACCEPT, "text/html").form(fields);
    req.header(header::ORIGIN, app.base.clone()).header(header::REFERER, page).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flagged_photo_is_in_the_api_and_the_list_and_approving_it_asks_first() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let body = r#"{"drop_number":"DR12345678","contractor_number":"+27640412391","project_name":"Velo Test"}"#;
        app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(body)).await;
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let dn = DropNumber::parse("DR12345678").unwrap();
        for (step, dark) in (1..=12).map(|s| (s, s == 1)) {
            let jpeg = demo_photo("DR12345678", step, "x", step as u32);
            let jpeg = if dark { spoiled_photo(&jpeg, 4, 0.0).unwrap() } else { jpeg };
            let s = media.store_image(jpeg).await.unwrap();
            let photo = NewPhoto::from_stored(StepNo::new(step).unwrap(), &s, None, dropcheck_core::now_ms());
            app.store.add_photo(&dn, &photo, &ActorRef::system("test")).await.unwrap();
        }

        let (s, v) = app.api("GET", "/api/v1/drops/DR12345678", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let checks = v["steps"][0]["photos"][0]["checks"].as_array().unwrap().clone();
        let dark = checks.iter().find(|c| c["kind"] == "dark").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(dark["result"], "flag");
        assert!(dark["value"].as_f64().unwrap() < 45.0, "{dark}");
        assert!(dark["detail"].as_str().unwrap().contains("brightness"), "{dark}");
        assert_eq!(dark["resolved_at"], serde_json::Value::Null);
        let kinds: Vec<&str> =
            v["steps"][1]["photos"][0]["checks"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["blurred", "dark", "featureless", "overexposed", "reused", "small"]);
        assert!(v["steps"][1]["photos"][0]["checks"].as_array().unwrap().iter().all(|c| c["result"] == "pass"));

        let (s, v) = app.api("GET", "/api/v1/drops?flagged=true", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["drops"].as_array().unwrap().len(), 1);
        assert_eq!((v["drops"][0]["drop_number"].as_str(), v["drops"][0]["open_flags"].as_i64()), (Some("DR12345678"), Some(1)));
        let (s, v) = app.api("GET", "/api/v1/drops?flagged=maybe", Some(BRIDGE), None).await;
        assert!(s.is_client_error() && v["error"].is_string(), "{s} {v}");

        // "Approve all" without JavaScript: refused with the reason while the flag is open,
        // done with the page's confirmation.
        sign_in_first_admin(&app).await;
        let r = post_from_drop_page(&app, "/rpc/approve_all", &[("number", "DR12345678")]).await;
        let err = carried(&location(&r)).unwrap_or_else(|| panic!("an error carried back: {}", location(&r)));
        assert_eq!(err["code"], "open_flags", "{err}");
        assert_eq!(app.store.drop_summary(&dn).await.unwrap().status, DropStatus::Unreviewed);
        let page = app.get("/drops/DR12345678").await.text().await.unwrap();
        assert!(page.contains("id=\"approve-panel\"") && page.contains("step 1: too dark"), "the page asks first");
        let r = post_from_drop_page(&app, "/rpc/approve_all", &[("number", "DR12345678"), ("confirm", "flags")]).await;
        assert!(carried(&location(&r)).is_none(), "{}", location(&r));
        assert_eq!(app.store.drop_summary(&dn).await.unwrap().status, DropStatus::Approved);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_the_contractor_about_reused_photos_is_a_projects_choice_saved_without_javascript() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        sign_in_first_admin(&app).await;
        let project = app.store.projects().await.unwrap().remove(0);
        let id = project.project_id.get().to_string();
        let t = dropcheck_core::photo_checks::Thresholds::default();
        let (sf, sw, bf) = (t.small_flag.to_string(), t.small_warn.to_string(), t.blur_flag.to_string());
        let mut fields = vec![
            ("project_id", id.as_str()),
            ("small_flag", sf.as_str()),
            ("small_warn", sw.as_str()),
            ("dark_flag", "45"),
            ("dark_warn", "70"),
            ("dark_highlight", "128"),
            ("overexposed_flag", "25"),
            ("overexposed_warn", "10"),
            ("blur_flag", bf.as_str()),
            ("blur_tile_flag", "60"),
            ("blur_warn", "60"),
            ("featureless_flag", "50"),
            ("featureless_warn", "70"),
            ("screenshot_steps", ""),
        ];
        let page = format!("{}/settings/projects", app.base);
        let post = |fields: Vec<(&'static str, String)>| {
            let req = app.client.post(format!("{}/rpc/save_photo_checks", app.base)).header(header::ACCEPT, "text/html").form(&fields);
            req.header(header::ORIGIN, app.base.clone()).header(header::REFERER, page.clone()).send()
        };
        let owned = |f: &Vec<(&'static str, &str)>| f.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>();
        assert!(!app.store.photo_check_settings(project.project_id).await.unwrap().thresholds.ask_about_reuse, "off by default");
        fields.push(("ask_about_reuse", "on"));
        let r = post(owned(&fields)).await.unwrap();
        assert!(carried(&location(&r)).is_none(), "{}", location(&r));
        assert!(app.store.photo_check_settings(project.project_id).await.unwrap().thresholds.ask_about_reuse);
        let html = app.get("/settings/projects").await.text().await.unwrap();
        assert!(html.contains(r#"name="ask_about_reuse" value="on" checked"#), "the box shows ticked");
        // Unticked, the box sends nothing: off again.
        fields.pop();
        let r = post(owned(&fields)).await.unwrap();
        assert!(carried(&location(&r)).is_none(), "{}", location(&r));
        assert!(!app.store.photo_check_settings(project.project_id).await.unwrap().thresholds.ask_about_reuse);
    })
    .await;
}

/// With `DROPCHECK_REUSE_HINTS` on, a cropped copy of another drop's photo is a
/// `possibly_reused` warning in the API, with the original under `match`, and the drop page
/// shows the original beside it; the drop is not "flagged".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_possibly_reused_hint_is_in_the_api_with_its_original() {
    on_each_backend(|store| async move {
        let app = crate::helpers::spawn_app(store, dropcheck::Config { reuse_hints: true, ..dropcheck::Config::for_tests() }).await;
        app.seed_project().await;
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let original = dropcheck_core::testing::scene_photo(7);
        let cropped = dropcheck_core::testing::cropped_photo(&original, 70);
        for (number, jpeg) in [("DR12345678", original), ("DR12345679", cropped)] {
            let body = format!(r#"{{"drop_number":"{number}","contractor_number":"+27640412391","project_name":"Velo Test"}}"#);
            app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(&body)).await;
            let s = media.store_image(jpeg).await.unwrap();
            let photo = NewPhoto::from_stored(StepNo::new(1).unwrap(), &s, None, dropcheck_core::now_ms());
            app.store.add_photo(&DropNumber::parse(number).unwrap(), &photo, &ActorRef::system("test")).await.unwrap();
        }
        let (_, a) = app.api("GET", "/api/v1/drops/DR12345678", Some(BRIDGE), None).await;
        let (s, v) = app.api("GET", "/api/v1/drops/DR12345679", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let checks = v["steps"][0]["photos"][0]["checks"].as_array().unwrap().clone();
        let hint = checks.iter().find(|c| c["kind"] == "possibly_reused").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(hint["result"], "warn");
        assert_eq!(hint["match"]["drop_number"], "DR12345678");
        assert_eq!(hint["match"]["step"], 1);
        assert_eq!(hint["match"]["photo_id"], a["steps"][0]["photos"][0]["id"]);
        assert!(hint["match"]["distance"].as_f64().unwrap() <= 10.0, "{hint}");
        let (_, list) = app.api("GET", "/api/v1/drops?flagged=true", Some(BRIDGE), None).await;
        assert_eq!(list["drops"].as_array().unwrap().len(), 0, "a hint is not a flag: {list}");

        sign_in_first_admin(&app).await;
        let page = app.get("/drops/DR12345679").await.text().await.unwrap();
        assert!(page.contains("Possibly reused") && page.contains("possibly reused from DR12345678 step 1"), "the hint is shown");
        let original_id = a["steps"][0]["photos"][0]["id"].as_i64().unwrap();
        assert!(page.contains(&format!("/media/{original_id}/thumb")), "the original beside it");
    })
    .await;
}
