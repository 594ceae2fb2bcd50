//! Outbound event webhooks (issue 14, item 5) against a local receiver: every delivery
//! verifies with the `standardwebhooks` crate; a receiver that answers 500 twice gets the
//! third attempt with the same `webhook-id`; a rotated secret signs beside the old one; a
//! replay keeps the id; 410 disables the endpoint; private addresses are refused unless
//! allowed; an automation's call_webhook goes once.

use crate::helpers::{spawn, spawn_app};
use crate::http::BRIDGE;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::post;
use dropcheck::Config;
use dropcheck_core::testing::on_each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Receiver {
    /// What each request carried: its webhook-id, whether it verified with each secret given, its body.
    got: Vec<(String, Vec<bool>, Value)>,
    secrets: Vec<String>,
    /// The statuses to answer with, in turn (then 200).
    answers: Vec<u16>,
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let s = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let mut r = s.lock().unwrap();
                let verified =
                    r.secrets.iter().map(|k| standardwebhooks::Webhook::new(k).unwrap().verify(&body, &headers).is_ok()).collect();
                let id = headers.get("webhook-id").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                r.got.push((id, verified, serde_json::from_slice(&body).unwrap()));
                let status = if r.answers.is_empty() { 200 } else { r.answers.remove(0) };
                AxStatus::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_reach_a_signed_endpoint_retried_with_the_same_id_rotated_replayed_and_disabled_by_410() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let (url, rx) = receiver().await;
        let body = json!({"url": url, "event_types": ["drop.status_changed"]}).to_string();
        let (s, ep) = app.api("POST", "/api/v1/webhook-endpoints", Some(BRIDGE), Some(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{ep}");
        let secret = ep["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        let id = ep["id"].as_i64().unwrap();
        let (_, listed) = app.api("GET", "/api/v1/webhook-endpoints", Some(BRIDGE), None).await;
        assert!(!listed.to_string().contains(&secret), "the secret is shown once: {listed}");
        {
            let mut r = rx.lock().unwrap();
            r.secrets = vec![secret.clone()];
            r.answers = vec![500, 500];
        }

        app.api(
            "POST",
            "/api/submit-installation",
            Some(BRIDGE),
            Some(r#"{"drop_number":"DR12345678","contractor_number":"+27640412391","project_name":"Velo Test"}"#),
        )
        .await;
        let review = json!({"steps": {"3": {"verdict": "missing", "reason": "no_photo"}}, "action": "incomplete"});
        app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(&review.to_string())).await;
        app.workers.drain_webhooks().await.unwrap();
        {
            let r = rx.lock().unwrap();
            assert_eq!(r.got.len(), 3, "500, 500, then delivered");
            assert!(r.got.iter().all(|(i, _, _)| *i == r.got[0].0), "the same webhook-id on every attempt");
            assert!(r.got.iter().all(|(_, v, _)| v == &vec![true]), "every attempt verifies with the standardwebhooks crate");
            let b = &r.got[0].2;
            assert_eq!(
                (b["type"].as_str(), b["data"]["drop_number"].as_str(), b["data"]["status"].as_str()),
                (Some("drop.status_changed"), Some("DR12345678"), Some("incomplete"))
            );
            assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        let (_, log) = app.api("GET", &format!("/api/v1/webhook-endpoints/{id}/deliveries"), Some(BRIDGE), None).await;
        let d = &log["deliveries"][0];
        assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("succeeded"), Some(3)), "{log}");
        let statuses: Vec<i64> = d["attempt_log"].as_array().unwrap().iter().map(|a| a["status"].as_i64().unwrap()).collect();
        assert_eq!(statuses, vec![500, 500, 200]);
        let delivery = d["id"].as_i64().unwrap();

        // Rotated: both the new and the old secret verify for 24 hours.
        let (s, rotated) = app.api("POST", &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"), Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let new_secret = rotated["secret"].as_str().unwrap().to_string();
        assert!(rotated["previous_secret_valid_until"].is_string());
        rx.lock().unwrap().secrets = vec![new_secret.clone(), secret.clone()];
        app.api("POST", "/api/resubmit", Some(BRIDGE), Some(r#"{"drop_number":"DR12345678"}"#)).await;
        app.workers.drain_webhooks().await.unwrap();
        assert_eq!(rx.lock().unwrap().got.last().unwrap().1, vec![true, true], "signed with both secrets during the rotation");

        // A replay sends the same webhook-id again.
        let first_id = rx.lock().unwrap().got[0].0.clone();
        let (s, _) = app.api("POST", &format!("/api/v1/webhook-deliveries/{delivery}/replay"), Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        app.workers.drain_webhooks().await.unwrap();
        assert_eq!(rx.lock().unwrap().got.last().unwrap().0, first_id);
        let (s, _) = app.api("POST", "/api/v1/webhook-deliveries/999999/replay", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // 410 Gone disables the endpoint: nothing more is sent to it.
        rx.lock().unwrap().answers = vec![410];
        let review = json!({"steps": {"3": {"verdict": "missing", "reason": "no_photo"}}, "action": "incomplete"});
        app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(&review.to_string())).await;
        app.workers.drain_webhooks().await.unwrap();
        let (_, e) = app.api("GET", &format!("/api/v1/webhook-endpoints/{id}"), Some(BRIDGE), None).await;
        assert_eq!((e["enabled"].as_bool(), e["disabled_reason"].as_str()), (Some(false), Some("410 Gone")), "{e}");
        let before = rx.lock().unwrap().got.len();
        app.api("POST", "/api/resubmit", Some(BRIDGE), Some(r#"{"drop_number":"DR12345678"}"#)).await;
        app.workers.drain_webhooks().await.unwrap();
        assert_eq!(rx.lock().unwrap().got.len(), before);

        let (s, v) =
            app.api("POST", "/api/v1/webhook-endpoints", Some(BRIDGE), Some(r#"{"url": "ftp://x", "event_types": ["a.b"]}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_url")));
        let (s, v) =
            app.api("POST", "/api/v1/webhook-endpoints", Some(BRIDGE), Some(&json!({"url": url, "event_types": []}).to_string())).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event_types")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_calls_its_webhook_once_and_private_addresses_are_refused_unless_allowed() {
    on_each_backend(|store| async move {
        let app = spawn(store.clone()).await;
        let (url, rx) = receiver().await;
        let (_, ep) = app.api("POST", "/api/v1/webhook-endpoints", Some(BRIDGE), Some(&json!({"url": url, "event_types": ["order.paid"]}).to_string())).await;
        rx.lock().unwrap().secrets = vec![ep["secret"].as_str().unwrap().to_string()];
        let rule = json!({"name": "Forward", "trigger": {"type": "api.event", "event": "order.paid"}, "actions": [{"type": "call_webhook", "endpoint": ep["id"]}]});
        let (s, r) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(&rule.to_string())).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let (s, _) = app.api("POST", "/api/v1/events", Some(BRIDGE), Some(r#"{"type": "order.paid", "data": {"amount": 250}}"#)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        app.workers.drain_webhooks().await.unwrap();
        let got = rx.lock().unwrap().got.clone();
        // The endpoint subscribes to order.paid (the event itself) and the rule calls it too.
        let types: Vec<&str> = got.iter().map(|g| g.2["type"].as_str().unwrap()).collect();
        assert_eq!(types.iter().filter(|t| **t == "order.paid").count(), 1, "{types:?}");
        assert_eq!(types.iter().filter(|t| **t == "automation.call_webhook").count(), 1, "the rule's call, once: {types:?}");
        assert!(got.iter().all(|g| g.1 == vec![true]));
        let bad = json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "call_webhook", "endpoint": 999}]});
        let (s, v) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(&bad.to_string())).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule")));

        // A server that does not allow private addresses refuses them when they are added.
        let strict = spawn_app(store, Config { webhook_allow_private: false, ..Config::for_tests() }).await;
        for u in ["http://example.com/hook", "https://127.0.0.1/hook", "https://localhost/hook", "https://169.254.169.254/latest"] {
            let (s, v) = strict.api("POST", "/api/v1/webhook-endpoints", Some(BRIDGE), Some(&json!({"url": u, "event_types": ["a.b"]}).to_string())).await;
            assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_url")), "{u}: {v}");
        }
    })
    .await;
}
