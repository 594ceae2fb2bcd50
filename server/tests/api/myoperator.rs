//! MyOperator for notifications (issue 15, item 4): with `MYOPERATOR_*` set, messages queued
//! through the notifications API reach MyOperator's API (a local mock of the documented
//! request and answers) with its headers and body; the contractors' conversation stays with
//! the active provider; 403 and CHAT_0302 fail for good, a 5xx is tried again.

use crate::helpers::spawn_app;
use crate::http::BRIDGE;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::post;
use dropcheck::config::Config;
use dropcheck_core::domain::Phone;
use dropcheck_core::integrations::ProviderEnv;
use dropcheck_core::testing::on_each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Mock {
    /// (authorization, company id header, body)
    got: Vec<(String, String, Value)>,
    /// The answers to give, in turn (then success).
    answers: Vec<(u16, &'static str)>,
}

async fn mock() -> (String, Arc<Mutex<Mock>>) {
    let state: Arc<Mutex<Mock>> = Arc::default();
    let s = state.clone();
    let app = axum::Router::new().route(
        "/chat/messages",
        post(move |headers: HeaderMap, body: String| {
            let s = s.clone();
            async move {
                let mut m = s.lock().unwrap();
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                m.got.push((h("authorization"), h("x-myop-company-id"), serde_json::from_str(&body).unwrap_or(Value::Null)));
                let (status, text) = if m.answers.is_empty() {
                    (200, r#"{"status": "success", "code": "200", "message": "Message Sent"}"#)
                } else {
                    m.answers.remove(0)
                };
                (AxStatus::from_u16(status).unwrap(), text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_go_out_through_myoperator_with_its_documented_request_and_errors() {
    on_each_backend(|store| async move {
        let (base, m) = mock().await;
        let env = ProviderEnv::from_pairs([
            ("MYOPERATOR_API_KEY", "myop-test-key-42".to_string()),
            ("MYOPERATOR_COMPANY_ID", "co-7".to_string()),
            ("MYOPERATOR_PHONE_NUMBER_ID", "pn-1".to_string()),
            ("MYOPERATOR_WABA_ID", "waba-9".to_string()),
            ("MYOPERATOR_API_BASE", base),
        ]);
        let app = spawn_app(store, Config { provider_env: env, ..Config::for_tests() }).await;
        // The recipients wrote today: free text may go.
        for p in ["+27640412391", "+27825550142", "+27835550199", "+27605551234"] {
            app.store.note_inbound(&Phone::parse(p).unwrap(), dropcheck_core::now_ms()).await.unwrap();
        }
        let notify = |phone: &str, reference: &str| {
            json!({"phone": phone, "message_type": "payment_confirmation", "reference_id": reference,
                "context": {"customer_name": "Thabo", "amount": "R 250", "reference": "INV-7"}})
            .to_string()
        };
        let (s, v) = app.api("POST", "/api/notifications/send-message", Some(BRIDGE), Some(&notify("+27640412391", "ref-1"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        app.drain_outbox().await;
        {
            let m = m.lock().unwrap();
            assert_eq!(m.got.len(), 1);
            let (auth, company, body) = &m.got[0];
            assert_eq!((auth.as_str(), company.as_str()), ("Bearer myop-test-key-42", "co-7"));
            assert_eq!(body["waba_id"], "waba-9");
            assert_eq!(body["phone_number_id"], "pn-1");
            assert_eq!((body["customer_country_code"].as_str(), body["customer_number"].as_str()), (Some("27"), Some("640412391")));
            assert_eq!(body["myop_ref_id"], format!("dropcheck-{id}"));
            assert_eq!(body["data"]["type"], "text");
            assert_eq!(body["data"]["context"]["body"], "Payment received! R 250 for INV-7. Thank you, Thabo.");
        }
        let (_, row) = app.api("GET", &format!("/api/notifications/history?phone=%2B27640412391"), Some(BRIDGE), None).await;
        let sent = row["messages"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m["message_type"] == "payment_confirmation"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(sent["status"], "sent", "{row}");
        assert_eq!(sent["provider_message_id"], format!("myop:dropcheck-{id}"));
        assert_eq!(sent["reference_id"], "ref-1");

        // The conversation is not MyOperator's: a message through /send goes to the active
        // provider (the sandbox here).
        let (s, _) = app.api("POST", "/send", Some(BRIDGE), Some(r#"{"to": "+27640412391", "message": "Your drop is approved"}"#)).await;
        assert_eq!(s, StatusCode::OK);
        app.drain_outbox().await;
        assert_eq!(m.lock().unwrap().got.len(), 1, "not through MyOperator");

        // 403 (invalid company) and CHAT_0302 (WABA disabled) fail for good; a 503 is retried.
        m.lock().unwrap().answers = vec![
            (403, r#"{"status": "error", "message": "Invalid company ID!"}"#),
            (400, r#"{"status": "error", "code": "CHAT_0302", "message": "WABA is disabled"}"#),
            (503, "upstream unavailable"),
        ];
        for (phone, r) in [("+27825550142", "ref-2"), ("+27835550199", "ref-3"), ("+27605551234", "ref-4")] {
            let (s, v) = app.api("POST", "/api/notifications/send-message", Some(BRIDGE), Some(&notify(phone, r))).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            app.drain_outbox().await;
        }
        let status = |phone: &str| {
            let phone = Phone::parse(phone).unwrap();
            let store = app.store.clone();
            async move {
                let f = dropcheck_core::outbox::MessageFilter {
                    phone: Some(phone.as_str().trim_start_matches('+').to_string()),
                    ..Default::default()
                };
                let (rows, _) = store.list_messages(&f, None, 5).await.unwrap();
                let r = rows.into_iter().find(|r| r.template.as_deref() == Some("payment_confirmation")).unwrap();
                (r.status, r.error_code, r.attempts)
            }
        };
        assert_eq!(status("+27825550142").await, ("failed".to_string(), Some("403".to_string()), 1), "403: not retried");
        assert_eq!(status("+27835550199").await, ("failed".to_string(), Some("CHAT_0302".to_string()), 1), "CHAT_0302: not retried");
        let (st, _, attempts) = status("+27605551234").await;
        assert_eq!((st.as_str(), attempts), ("sent", 2), "the 503 was tried again, then sent");
        let got = m.lock().unwrap().got.len();
        assert_eq!(got, 5, "one each, and the retry");
        // The key never appears in what the API shows.
        let (_, health) = app.api("GET", "/api/notifications/health", Some(BRIDGE), None).await;
        assert!(!health.to_string().contains("myop-test-key-42"));
    })
    .await;
}
