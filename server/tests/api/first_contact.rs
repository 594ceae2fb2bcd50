//! A fresh install takes drops at once (issue 10, item 1): the first start creates a default
//! project with the default checklist, `/setup` lets the first admin name it, a contractor's
//! first drop lands in it, and the predecessor's `submit-installation` creates an unknown
//! project instead of refusing. On SQLite and PostgreSQL.

use crate::helpers::{client, leptos_options, spawn};
use dropcheck::{Application, Config};
use dropcheck_core::domain::DropNumber;
use dropcheck_core::providers::twilio_signature;
use dropcheck_core::store::DEFAULT_PROJECT_NAME;
use dropcheck_core::testing::on_each_backend;
use reqwest::{header, StatusCode};
use serde_json::Value;

const BRIDGE: &str = "test-bridge-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_takes_drops_at_once() {
    on_each_backend(|store| async move {
        assert!(store.projects().await.unwrap().is_empty(), "an empty database");
        let app = spawn(store.clone()).await;
        let base = app.base.clone();
        let projects = store.projects().await.unwrap();
        assert_eq!(projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), [DEFAULT_PROJECT_NAME]);
        let detail = store.checklist(projects[0].project_id).await.unwrap();
        assert_eq!(detail.len(), 12, "the default checklist");

        // A contractor's first message opens a drop in the default project.
        let params: Vec<(String, String)> =
            [("MessageSid", "SMfirst1"), ("From", "whatsapp:+27640412391"), ("Body", "DR12345678"), ("NumMedia", "0")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let sig = twilio_signature("sandbox-test-token", "http://127.0.0.1/webhooks/twilio", &params);
        let r = reqwest::Client::new()
            .post(format!("{base}/webhooks/twilio"))
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let number = DropNumber::parse("DR12345678").unwrap();
        app.drain_inbox().await;
        assert_eq!(store.drop_detail(&number).await.expect("the drop was opened").project, DEFAULT_PROJECT_NAME);

        // The predecessor's call with a project nobody set up: created, with the checklist.
        let api = |body: &'static str| {
            reqwest::Client::new()
                .post(format!("{base}/api/submit-installation"))
                .header("X-API-Key", BRIDGE)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
        };
        let r = api(r#"{"drop_number": "DR12345679", "contractor_number": "+27640412391", "project_name": "Velo Test"}"#).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!((v["success"].as_bool(), v["action"].as_str()), (Some(true), Some("created")), "{v}");
        let velo = store.project_by_name("Velo Test").await.unwrap().expect("the project was created");
        assert_eq!(store.checklist(velo.project_id).await.unwrap().len(), 12);
        assert_eq!(velo.created_by, "API key bridge", "the project says which API key created it");
        assert_eq!(projects[0].created_by, "system");
        assert_eq!(store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap().project, "Velo Test");
        // A bad drop number is refused as such, and creates no project.
        let r = api(r#"{"drop_number": "XX99", "contractor_number": "+27640412391", "project_name": "Another"}"#).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_drop_number");
        assert!(store.project_by_name("Another").await.unwrap().is_none());

        // The first admin names the default project at /setup.
        let browser = client();
        let r = browser
            .post(format!("{base}/rpc/setup"))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, &base)
            .form(&[
                ("email", "ann@example.com"),
                ("password", "correct horse"),
                ("confirm", "correct horse"),
                ("project", "Field Team North"),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        assert!(store.project_by_name("Field Team North").await.unwrap().is_some());
        assert!(store.project_by_name(DEFAULT_PROJECT_NAME).await.unwrap().is_none());
        assert_eq!(store.drop_detail(&number).await.unwrap().project, "Field Team North", "its drops stay with it");

        // A restart with projects in place creates nothing.
        let _again = Application::build_with_store(Config::for_tests(), leptos_options(), store.clone()).await.unwrap();
        assert_eq!(store.projects().await.unwrap().len(), 2);
    })
    .await;
}
