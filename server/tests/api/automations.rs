//! Automation over HTTP (issue 14): rules through `/api/v1/automations` in the issue's JSON
//! shape, a rule that fires on a review and whose message the sender sends, the run log,
//! dry runs, and `POST /api/v1/events` with an Idempotency-Key.

use crate::helpers::spawn;
use crate::http::BRIDGE;
use dropcheck_core::testing::on_each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_made_through_the_api_fires_on_a_review_and_its_message_goes_out() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let (s, v) = app.api("GET", "/api/v1/automations", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let builtin = &v["automations"][0];
        assert_eq!((builtin["built_in"].as_bool(), builtin["enabled"].as_bool()), (Some(true), Some(false)), "{v}");
        assert_eq!(builtin["trigger"], json!({"type": "drop.status_held", "status": "incomplete", "minutes": 1440}));
        let (s, v) = app.api("DELETE", &format!("/api/v1/automations/{}", builtin["id"]), Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("builtin_rule")));

        // The issue's shape, with a trigger a review causes.
        let rule = json!({"name": "Tell the contractor at once", "enabled": true,
            "trigger": {"type": "drop.status_changed", "to": "incomplete"},
            "conditions": {"all": [{"field": "project", "op": "eq", "value": "Velo Test"}]},
            "actions": [{"type": "send_template", "template": "drop_reminder", "to": "contact"}]});
        let (s, created) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(&rule.to_string())).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["version"], 1);
        assert_eq!(created["trigger"], rule["trigger"]);
        assert_eq!(created["description"], "A drop moves to Incomplete");

        let body = r#"{"drop_number":"DR12345678","contractor_number":"+27640412391","project_name":"Velo Test"}"#;
        app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(body)).await;
        let review = json!({"steps": {"3": {"verdict": "missing", "reason": "no_photo"}}, "action": "incomplete"});
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(&review.to_string())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        app.drain_outbox().await;

        let (s, v) = app.api("GET", &format!("/api/v1/automations/{id}/runs"), Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{v}");
        assert_eq!((runs[0]["status"].as_str(), runs[0]["trigger"].as_str(), runs[0]["subject"].as_str()), (Some("succeeded"), Some("drop.status_changed"), Some("DR12345678")));
        let action = &runs[0]["actions"][0];
        assert_eq!((action["type"].as_str(), action["status"].as_str(), action["error"].as_str()), (Some("send_template"), Some("done"), None));
        let message_id = action["message_id"].as_i64().unwrap();
        let (_, v) = app.api("GET", "/api/v1/messages?drop=DR12345678&direction=out", Some(BRIDGE), None).await;
        let reminder = v["messages"].as_array().unwrap().iter().find(|m| m["id"] == message_id || m["message_id"] == message_id).cloned().unwrap_or_else(|| panic!("{v}"));
        assert!(["sent", "delivered"].contains(&reminder["status"].as_str().unwrap()) && reminder["provider_message_id"].is_string(), "the sender sent it: {reminder}");
        assert!(reminder["body"].as_str().unwrap().contains("DR12345678 (Velo Test) is still waiting"), "{reminder}");

        // Changed: the version goes up; a bad change is a 422 that says what is wrong and keeps the rule.
        let mut changed = rule.clone();
        changed["enabled"] = json!(false);
        let (s, v) = app.api("PUT", &format!("/api/v1/automations/{id}"), Some(BRIDGE), Some(&changed.to_string())).await;
        assert_eq!((s, v["version"].as_i64(), v["enabled"].as_bool()), (StatusCode::OK, Some(2), Some(false)));
        let mut bad = rule.clone();
        bad["trigger"]["to"] = json!("sideways");
        let (s, v) = app.api("PUT", &format!("/api/v1/automations/{id}"), Some(BRIDGE), Some(&bad.to_string())).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule")));
        assert!(v["message"].as_str().unwrap().contains("sideways"), "{v}");
        let (s, v) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(r#"{"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "send_template", "template": "no_such"}]}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule")));
        let (s, v) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some("{not json")).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
        let (s, _) = app.api("GET", "/api/v1/automations/99999", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.api("GET", "/api/v1/automations/abc", Some(BRIDGE), None).await;
        assert!(s.is_client_error());
        let (s, _) = app.api("GET", &format!("/api/v1/automations/{id}/runs?limit=0"), Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

        // A dry run for a sample says what would go out, and logs nothing.
        let sample = json!({"drop_number": "DR1", "project": "Velo Test", "status": "incomplete", "from": "unreviewed", "round": 1, "contractor_name": "Thabo", "contractor_phone": "+27640412391"});
        let (s, v) = app.api("POST", &format!("/api/v1/automations/{id}/dry-run"), Some(BRIDGE), Some(&sample.to_string())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["status"].as_str(), v["trigger_matches"].as_bool(), v["conditions"].as_bool()), (Some("succeeded"), Some(true), Some(true)));
        assert_eq!(v["actions"][0]["status"], "would_send");
        assert!(v["actions"][0]["text"].as_str().unwrap().starts_with("Reminder, Thabo: drop DR1"), "{v}");
        let mut other = sample.clone();
        other["project"] = json!("Elsewhere");
        let (_, v) = app.api("POST", &format!("/api/v1/automations/{id}/dry-run"), Some(BRIDGE), Some(&other.to_string())).await;
        assert_eq!((v["status"].as_str(), v["conditions"].as_bool()), (Some("skipped"), Some(false)));
        let (_, v) = app.api("GET", &format!("/api/v1/automations/{id}/runs"), Some(BRIDGE), None).await;
        assert_eq!(v["runs"].as_array().unwrap().len(), 1, "dry runs write nothing");

        // Deleted: gone with its runs.
        let res = app.client.delete(format!("{}/api/v1/automations/{id}", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let (s, _) = app.api("GET", &format!("/api/v1/automations/{id}"), Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_event_with_the_same_idempotency_key_is_one_event_and_one_run() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let rule = json!({"name": "Paid", "trigger": {"type": "api.event", "event": "order.paid"},
            "actions": [{"type": "send_template", "template": "payment_confirmation", "to": "contact"}]});
        let (_, r) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(&rule.to_string())).await;
        let id = r["id"].as_i64().unwrap();
        let post = |key: &'static str, body: Value| {
            let app = app.clone();
            async move {
                let res = app.client.post(format!("{}/api/v1/events", app.base)).header("X-API-Key", BRIDGE).header("Idempotency-Key", key).json(&body).send().await.unwrap();
                (res.status(), res.json::<Value>().await.unwrap())
            }
        };
        let event = json!({"type": "order.paid", "data": {"phone": "+27640412391", "customer_name": "Thabo", "amount": "R 250", "reference": "INV-7"}});
        let (s, first) = post("pay-7", event.clone()).await;
        assert_eq!((s, first["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(false)), "{first}");
        let (s, again) = post("pay-7", event.clone()).await;
        assert_eq!((s, again["event_id"].clone(), again["duplicate"].as_bool()), (StatusCode::ACCEPTED, first["event_id"].clone(), Some(true)));
        app.drain_outbox().await;
        let (_, v) = app.api("GET", &format!("/api/v1/automations/{id}/runs"), Some(BRIDGE), None).await;
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "one event, one run: {v}");
        assert_eq!(runs[0]["subject"], "+27640412391");
        let (_, m) = app.api("GET", "/api/v1/messages?phone=27640412391&direction=out", Some(BRIDGE), None).await;
        let sent: Vec<&Value> = m["messages"].as_array().unwrap().iter().filter(|m| m["body"].as_str().unwrap_or("").contains("INV-7")).collect();
        assert_eq!(sent.len(), 1, "one message however often the event is posted: {m}");

        let (s, v) = app.api("POST", "/api/v1/events", Some(BRIDGE), Some(r#"{"type": "has space", "data": {}}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event_type")));
        let (s, v) = app.api("POST", "/api/v1/events", Some(BRIDGE), Some(r#"{"type": "a.b", "data": [1]}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event")));
        let (s, _) = app.api("POST", "/api/v1/events", None, Some(r#"{"type": "a.b"}"#)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_carry_tags_and_tagging_one_runs_its_rules() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let rule = json!({"name": "VIP welcome", "trigger": {"type": "contact.tag_added", "tag": "vip"},
            "actions": [{"type": "send_template", "template": "payment_confirmation", "to": "contact", "variables": {"amount": "R 0", "reference": "VIP", "customer_name": "{{ name }}"}}]});
        let (_, r) = app.api("POST", "/api/v1/automations", Some(BRIDGE), Some(&rule.to_string())).await;
        let id = r["id"].as_i64().unwrap();
        let (s, c) = app.api("POST", "/api/v1/contacts", Some(BRIDGE), Some(r#"{"phone": "+27640412391", "name": "Thabo", "tags": ["VIP", "north"]}"#)).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["tags"], json!(["north", "VIP"]));
        let (s, v) = app.api("PUT", "/api/v1/contacts/%2B27640412391", Some(BRIDGE), Some(r#"{"name": "Changed", "tags": ["ok", "not,ok"]}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_tag")));
        let (_, v) = app.api("GET", "/api/v1/contacts/%2B27640412391", Some(BRIDGE), None).await;
        assert_eq!((v["name"].as_str(), v["tags"].clone()), (Some("Thabo"), json!(["north", "VIP"])), "a refused change changes nothing");
        let (_, v) = app.api("PUT", "/api/v1/contacts/%2B27640412391", Some(BRIDGE), Some(r#"{"tags": ["north"]}"#)).await;
        assert_eq!(v["tags"], json!(["north"]));
        let (_, v) = app.api("GET", "/api/v1/contacts", Some(BRIDGE), None).await;
        assert_eq!(v["contacts"][0]["tags"], json!(["north"]));
        let (_, runs) = app.api("GET", &format!("/api/v1/automations/{id}/runs"), Some(BRIDGE), None).await;
        let runs = runs["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "tagged vip once");
        assert_eq!(runs[0]["actions"][0]["status"], "done");
        assert!(runs[0]["actions"][0]["detail"].as_str().unwrap().contains("Thank you, Thabo"), "{}", runs[0]);
    })
    .await;
}
