//! The optional vision check against a local mock of an OpenAI-compatible endpoint (issue 13,
//! item 3): the request's shape is asserted on every call (model, temperature 0, the photo
//! as a `data:image/jpeg;base64,` URL, the strict schema, the bearer key, a body under 1 MB),
//! and each step of a drop gets one kind of answer: valid, fenced, schema-invalid, a refusal,
//! truncated, 429 with `Retry-After`, 500 once, 500 always, too slow. Each ends in a defined
//! state, shown in `GET /api/v1/drops/{number}`; the contractor's acknowledgment was queued
//! before any of it.

use crate::helpers::{spawn_app, TestApp};
use crate::http::BRIDGE;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use dropcheck::Config;
use dropcheck_core::domain::{Direction, DEFAULT_DROP_PATTERN};
use dropcheck_core::integrations::{ProviderEnv, VISION_API_KEY, VISION_MODEL, VISION_URL};
use dropcheck_core::media::{demo_photo, MediaStore};
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::providers::{InboundMessage, MessageKind};
use dropcheck_core::store::StepVision;
use dropcheck_core::testing::on_each_backend;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Mock {
    /// Calls per step, with when each came.
    calls: HashMap<i64, Vec<Instant>>,
    /// What was wrong with a request's shape.
    wrong: Vec<String>,
}

type MockState = Arc<Mutex<Mock>>;

fn answer(content: &str, finish: &str) -> Response {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "test-vision",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}]});
    (StatusCode::OK, body.to_string()).into_response()
}

const OK: &str = r#"{"shows_expected_subject": true, "legible": true, "confidence": 0.91, "problems": [], "values": {}}"#;
const METER: &str =
    r#"{"shows_expected_subject": true, "legible": true, "confidence": 0.88, "problems": [], "values": {"meter_reading": "004512.7"}}"#;
const WRONG_SUBJECT: &str =
    r#"{"shows_expected_subject": false, "legible": true, "confidence": 0.8, "problems": ["shows a wall"], "values": {}}"#;

async fn chat(State(m): State<MockState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let mut wrong = vec![];
    if body.len() >= 1 << 20 {
        wrong.push(format!("body of {} bytes", body.len()));
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test-vision") {
        wrong.push("no bearer key".into());
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if v["model"] != "test-vision" {
        wrong.push(format!("model {}", v["model"]));
    }
    if v["temperature"] != 0 {
        wrong.push(format!("temperature {}", v["temperature"]));
    }
    let parts = &v["messages"][1]["content"];
    if !parts[1]["image_url"]["url"].as_str().is_some_and(|u| u.starts_with("data:image/jpeg;base64,")) {
        wrong.push("no data:image/jpeg;base64, part".into());
    }
    let schema = &v["response_format"]["json_schema"];
    if v["response_format"]["type"] != "json_schema" || schema["strict"] != true || schema["schema"]["additionalProperties"] != false {
        wrong.push(format!("response_format {}", v["response_format"]));
    }
    let text = parts[0]["text"].as_str().unwrap_or_default();
    let step: i64 = text.strip_prefix("Step ").and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    let nth = {
        let mut m = m.lock().unwrap();
        m.wrong.extend(wrong);
        let calls = m.calls.entry(step).or_default();
        calls.push(Instant::now());
        calls.len()
    };
    match (step, nth) {
        (1, _) => answer(METER, "stop"),
        (2, _) => answer(&format!("```json\n{OK}\n```"), "stop"),
        (3, _) => answer(r#"{"shows_expected_subject": "probably", "legible": true}"#, "stop"),
        (4, _) => {
            let body = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": null, "refusal": "I can't help with that request."}}]});
            (StatusCode::OK, body.to_string()).into_response()
        }
        (5, _) => answer(r#"{"shows_expected_subject": true, "legible": tr"#, "length"),
        (6, 1) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], r#"{"error": {"message": "Rate limit reached"}}"#).into_response()
        }
        (6, _) => answer(OK, "stop"),
        (7, 1) => (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response(),
        (7, _) => answer(WRONG_SUBJECT, "stop"),
        (8, _) => (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response(),
        (9, _) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            answer(OK, "stop")
        }
        (10, _) => answer(WRONG_SUBJECT, "stop"),
        _ => (StatusCode::BAD_REQUEST, "unexpected step").into_response(),
    }
}

async fn start_mock() -> (String, MockState) {
    let state: MockState = Arc::default();
    let app = Router::new().route("/v1/chat/completions", post(chat)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

fn vision_check(d: &Value, step: usize) -> Value {
    let checks = d["steps"][step - 1]["photos"][0]["checks"].as_array().unwrap_or_else(|| panic!("step {step}: {d}"));
    checks.iter().find(|c| c["kind"] == "vision").cloned().unwrap_or_else(|| panic!("step {step} has no vision check: {checks:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_answer_from_the_vision_model_ends_in_a_defined_state() {
    on_each_backend(|store| async move {
        let (base, mock) = start_mock().await;
        let env = ProviderEnv::from_pairs([
            (VISION_URL, base.clone()),
            (VISION_MODEL, "test-vision".to_string()),
            (VISION_API_KEY, "sk-test-vision".to_string()),
        ]);
        let config = Config { provider_env: env, vision_timeout_ms: 500, ..Config::for_tests() };
        // The photos go where the server keeps its media.
        let media = MediaStore::new(&config.data_dir);
        let app: TestApp = spawn_app(store, config).await;
        // The drop goes to the default project a fresh install has.
        let project = app.store.projects().await.unwrap().remove(0);
        let meter = StepVision { step: 1, values: vec!["Meter reading".into()], ..Default::default() };
        app.store.set_step_vision(project.project_id, &meter).await.unwrap();
        app.store.set_step_vision(project.project_id, &StepVision { step: 10, auto_retake: true, ..Default::default() }).await.unwrap();

        let now = dropcheck_core::now_ms();
        let msg = |id: String, body: &str, kind| InboundMessage {
            provider_id: id,
            from: "+27640412391".into(),
            profile_name: "Sipho".into(),
            body: body.into(),
            kind,
            media: vec![],
        };
        app.store.handle_message(&msg("SM0".into(), "DR12345678", MessageKind::Text), &[], now).await.unwrap();
        for step in 1..=10i64 {
            let p = media.store_image(demo_photo("DR12345678", step, "x", step as u32)).await.unwrap();
            app.store.handle_message(&msg(format!("MM{step}"), &step.to_string(), MessageKind::Media), &[Ok(p)], now + step).await.unwrap();
        }
        // Filed and acknowledged first; the checks wait for the vision worker.
        let f = MessageFilter { direction: Some(Direction::Out), ..Default::default() };
        let (sent, _) = app.store.list_messages(&f, None, 50).await.unwrap();
        assert!(sent.iter().any(|m| m.body.starts_with("Got ")), "the acknowledgment is queued before any vision check");
        assert!(mock.lock().unwrap().calls.is_empty());

        app.workers.drain_vision().await.unwrap();
        let (status, d) = app.api("GET", "/api/v1/drops/DR12345678", Some(BRIDGE), None).await;
        assert_eq!(status, StatusCode::OK);
        let m = mock.lock().unwrap();
        assert!(m.wrong.is_empty(), "requests of the wrong shape: {:?}", m.wrong);

        // A valid answer, with the value read by its label.
        let c = vision_check(&d, 1);
        assert_eq!((c["result"].as_str(), c["suggestion"].as_str(), c["model"].as_str()), (Some("pass"), Some("ok"), Some("test-vision")));
        assert_eq!(c["values"], json!({"Meter reading": "004512.7"}));
        assert_eq!(c["value"], 0.88);
        // A fenced one is read all the same.
        assert_eq!(vision_check(&d, 2)["suggestion"], "ok");
        // Schema-invalid, refused, truncated: no suggestion, a warning saying why, not retried.
        for (step, status) in [(3, "unknown"), (4, "refused"), (5, "truncated")] {
            let c = vision_check(&d, step);
            assert_eq!((c["result"].as_str(), &c["suggestion"]), (Some("warn"), &Value::Null), "step {step}: {c}");
            assert!(c["detail"].as_str().unwrap().contains(status), "step {step}: {c}");
            assert_eq!(m.calls[&(step as i64)].len(), 1, "step {step} is not asked again");
        }
        // 429 with Retry-After: asked again no sooner than it said, then answered.
        let calls = &m.calls[&6];
        assert_eq!(calls.len(), 2);
        assert!(calls[1] - calls[0] >= Duration::from_millis(950), "waited {:?}", calls[1] - calls[0]);
        assert_eq!(vision_check(&d, 6)["suggestion"], "ok");
        // 500 once, then an answer suggesting a retake: a warning for the reviewer.
        assert_eq!(m.calls[&7].len(), 2);
        let c = vision_check(&d, 7);
        assert_eq!((c["result"].as_str(), c["suggestion"].as_str()), (Some("warn"), Some("retake")));
        assert!(c["detail"].as_str().unwrap().contains("shows a wall"), "{c}");
        // 500 every time, and too slow every time: failed after the last attempt.
        for (step, why) in [(8, "HTTP 500"), (9, "no answer within")] {
            assert_eq!(m.calls[&step].len(), 4, "step {step}: four attempts");
            let c = vision_check(&d, step as usize);
            assert_eq!((c["result"].as_str(), &c["suggestion"]), (Some("warn"), &Value::Null));
            assert!(c["detail"].as_str().unwrap().contains("failed") && c["detail"].as_str().unwrap().contains(why), "step {step}: {c}");
        }
        // A step that sends a retake answer back: a flag (the drop is flagged).
        assert_eq!(vision_check(&d, 10)["result"], "flag");
        let (_, list) = app.api("GET", "/api/v1/drops?flagged=true", Some(BRIDGE), None).await;
        assert_eq!(list["drops"][0]["drop_number"], "DR12345678");
        drop(m);

        // ... and the contractor is asked to take it again, once; step 7's retake suggestion
        // (a step that does not send them back) is for the reviewer only.
        let retakes = |sent: Vec<dropcheck_core::store::MessageRow>| -> Vec<String> {
            sent.into_iter().filter(|m| m.template.as_deref() == Some("vision_retake")).map(|m| m.body).collect()
        };
        let asked = retakes(app.store.list_messages(&f, None, 50).await.unwrap().0);
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(
            asked[0].starts_with("DR12345678 step 10 (") && asked[0].contains("shows a wall") && asked[0].contains("caption \"10\""),
            "{asked:?}"
        );

        // Nothing is left queued, and the work is not done twice.
        assert_eq!(app.store.next_vision_due().await.unwrap(), None);
        app.workers.drain_vision().await.unwrap();
        let total: usize = mock.lock().unwrap().calls.values().map(Vec::len).sum();
        assert_eq!(total, 1 + 1 + 1 + 1 + 1 + 2 + 2 + 4 + 4 + 1);
        assert_eq!(retakes(app.store.list_messages(&f, None, 50).await.unwrap().0).len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_vision_model_no_check_is_queued() {
    on_each_backend(|store| async move {
        let app = spawn_app(store, Config::for_tests()).await;
        app.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = MediaStore::new(dir.path()).store_image(demo_photo("DR12345678", 1, "x", 1)).await.unwrap();
        let msg = InboundMessage {
            provider_id: "MM1".into(),
            from: "+27640412391".into(),
            profile_name: String::new(),
            body: "DR12345678 1".into(),
            kind: MessageKind::Media,
            media: vec![],
        };
        app.store.handle_message(&msg, &[Ok(p)], dropcheck_core::now_ms()).await.unwrap();
        assert_eq!(app.store.next_vision_due().await.unwrap(), None);
        let (_, d) = app.api("GET", "/api/v1/drops/DR12345678", Some(BRIDGE), None).await;
        let checks = d["steps"][0]["photos"][0]["checks"].as_array().unwrap();
        assert!(checks.iter().all(|c| c["kind"] != "vision"), "{checks:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_the_vision_model_and_each_steps_question_in_plain_forms() {
    const KEY: &str = "sk-vision-secret-K9z2";
    on_each_backend(|store| async move {
        let app = crate::helpers::spawn(store.clone()).await;
        crate::http::sign_in_first_admin(&app).await;
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"id="vision-state" data-on="false""#), "off until set");

        // An endpoint without a model is refused, and nothing is stored.
        let form = |url: &'static str, model: &'static str, key: &'static str| {
            vec![("dropcheck_vision_url", url), ("dropcheck_vision_model", model), ("dropcheck_vision_api_key", key)]
        };
        let err = app.settings_form("/rpc/save_vision", &form("http://127.0.0.1:9", "", "")).await.expect("refused");
        assert!(err.contains("DROPCHECK_VISION_MODEL is required"), "{err}");
        let err = app.settings_form("/rpc/save_vision", &form("ftp://models", "m", "")).await.expect("refused");
        assert!(err.contains("http://"), "{err}");
        assert!(store.integration_rows().await.unwrap().is_empty());
        assert!(!app.store.vision_checks());

        // Saved: on at once, the key stored encrypted and never shown back.
        assert_eq!(app.settings_form("/rpc/save_vision", &form("http://127.0.0.1:9", "llava", KEY)).await, None);
        assert!(app.store.vision_checks(), "photos filed from now on get a vision job");
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"data-on="true""#) && html.contains("set · …K9z2") && !html.contains(KEY), "the key is never shown");
        let rows = store.integration_rows().await.unwrap();
        let key = rows.iter().find(|(k, _)| k == "DROPCHECK_VISION_API_KEY").map(|(_, v)| v.clone()).unwrap();
        assert!(key.starts_with("v1:") && !key.contains("K9z2"));

        // Per step: the values to read and "send back automatically"; a value named twice is refused.
        let project = app.store.projects().await.unwrap().remove(0);
        let pid = project.project_id.get().to_string();
        let step = |values: &'static str, auto: bool| {
            let mut f = vec![("project_id", pid.clone()), ("step", "7".into()), ("prompt", String::new()), ("values", values.into())];
            if auto {
                f.push(("auto_retake", "on".into()));
            }
            f
        };
        let as_refs = |f: &Vec<(&'static str, String)>| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
        let post = |f: Vec<(&'static str, String)>| {
            let app = app.clone();
            async move {
                let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                app.settings_form("/rpc/save_step_vision", &fields).await
            }
        };
        let err = post(as_refs(&step("Meter reading, meter  reading", false))).await.expect("refused");
        assert!(err.contains("named twice"), "{err}");
        assert_eq!(post(as_refs(&step("Meter reading", true))).await, None);
        let v = app.store.step_vision(project.project_id).await.unwrap();
        assert_eq!((v[6].values.clone(), v[6].auto_retake), (vec!["Meter reading".to_string()], true));
        assert!(v.iter().filter(|s| s.step != 7).all(|s| s.values.is_empty() && !s.auto_retake));
        let html = app.get("/settings/projects").await.text().await.unwrap();
        assert!(html.contains(r#"value="Meter reading""#), "the projects page shows the step's values");

        // Blank endpoint and model: off again.
        assert_eq!(app.settings_form("/rpc/save_vision", &form("", "", "")).await, None);
        assert!(!app.store.vision_checks());
    })
    .await;
}
