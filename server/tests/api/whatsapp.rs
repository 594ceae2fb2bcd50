//! The WhatsApp loop over real HTTP, against local mock Twilio and Meta servers on loopback
//! ports (the adapters take `*_API_BASE`): webhook signatures, persist-before-acknowledge,
//! redelivery, the contractor's conversation, media downloads, the outbox with its retries,
//! and delivery statuses. Every scenario runs on SQLite and on PostgreSQL.

use crate::helpers::{self, TestApp};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dropcheck::config::{ProviderConfig, RetryPolicy};
use dropcheck::Config;
use dropcheck_core::domain::{DropNumber, DropStatus, StepNo, Verdict, DEFAULT_DROP_PATTERN};
use dropcheck_core::media::demo_photo;
use dropcheck_core::outbox::Outgoing;
use dropcheck_core::providers::{meta_signature, twilio_signature};
use dropcheck_core::store::{ActorRef, StepVerdict, Store};
use dropcheck_core::templates::{MetaTemplate, ProviderTemplates, TwilioContent};
use dropcheck_core::testing::on_each_backend;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "twilio-auth-token-for-tests";
const CONTRACTOR: &str = "+27640412391";

/// What the mock provider received and how it should answer the next sends.
#[derive(Default)]
struct Mock {
    /// (to, body) of every accepted message.
    sent: Vec<(String, String)>,
    /// When each accepted message arrived.
    sent_at: Vec<std::time::Instant>,
    /// Every send attempt, accepted or not.
    attempts: usize,
    /// Scripted answers for the next send attempts: (status, Retry-After seconds, body).
    script: VecDeque<(u16, Option<u64>, String)>,
    media_requests: usize,
    media_failures_left: usize,
    unauthorised_media: usize,
    base: String,
}

type MockState = Arc<Mutex<Mock>>;

/// Script statuses with a special meaning: the connection breaks off after the headers, or
/// the answer comes slowly (but within the client's timeout).
const RESET: u16 = 0;
const SLOW: u16 = 1;
/// The message is accepted (and counted as sent), then the connection breaks: ambiguous.
const ACCEPT_THEN_RESET: u16 = 2;
/// This attempt is answered as usual (accepted): interleaves successes with failures.
const PASS: u16 = 3;

async fn mock_twilio_send(State(state): State<MockState>, Path(sid): Path<String>, headers: HeaderMap, body: String) -> Response {
    // Each attempt takes the next script entry and acts on it under one lock, so two sends at
    // once (the server sends in parallel) never take the same entry or each other's.
    state.lock().unwrap().attempts += 1;
    loop {
        let slow = {
            let mut m = state.lock().unwrap();
            let next = m.script.pop_front();
            match next {
                Some((RESET | ACCEPT_THEN_RESET, _, _)) => {
                    if next.as_ref().is_some_and(|(s, _, _)| *s == ACCEPT_THEN_RESET) {
                        let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
                        m.sent.push((get("To"), get("Body")));
                    }
                    let broken = futures_util::stream::once(async {
                        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"))
                    });
                    return Response::builder().status(StatusCode::CREATED).body(axum::body::Body::from_stream(broken)).unwrap();
                }
                // Slow, then the next entry decides.
                Some((SLOW, _, _)) => true,
                _ => {
                    let authed = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Basic "));
                    if sid != SID || !authed {
                        return (StatusCode::UNAUTHORIZED, r#"{"code": 20003, "message": "Authenticate"}"#).into_response();
                    }
                    if let Some((status, after, body)) = next.filter(|(s, _, _)| *s != PASS) {
                        let mut res = (StatusCode::from_u16(status).unwrap(), body).into_response();
                        if let Some(a) = after {
                            res.headers_mut().insert("retry-after", a.to_string().parse().unwrap());
                        }
                        return res;
                    }
                    false
                }
            }
        };
        if !slow {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let mut m = state.lock().unwrap();
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // Every send names the status callback with the connection override, so that Twilio
    // retries a callback the server could not take.
    if !get("StatusCallback").is_some_and(|u| u.ends_with("/webhooks/twilio/status#rc=5&rp=all")) {
        return (StatusCode::BAD_REQUEST, format!(r#"{{"code": 21609, "message": "StatusCallback {:?}"}}"#, get("StatusCallback")))
            .into_response();
    }
    // As Twilio: a content template goes without Body and MediaUrl.
    let what = match (get("ContentSid"), get("Body"), get("MediaUrl")) {
        (Some(sid), None, None) => format!("template {sid} {}", get("ContentVariables").unwrap_or_default()),
        (None, Some(body), None) => body,
        (None, Some(body), Some(url)) => format!("{body} [media {url}]"),
        _ => {
            return (StatusCode::BAD_REQUEST, r#"{"code": 21619, "message": "A text message body or media urls must be specified"}"#)
                .into_response()
        }
    };
    m.sent.push((get("To").unwrap_or_default(), what));
    m.sent_at.push(std::time::Instant::now());
    let n = m.sent.len();
    (StatusCode::CREATED, format!(r#"{{"sid": "SM{n:032}", "status": "queued"}}"#)).into_response()
}

/// Twilio's message list (used to reconcile an ambiguous failure before retrying).
async fn mock_twilio_list(State(m): State<MockState>, axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let m = m.lock().unwrap();
    let to = q.iter().find(|(k, _)| k == "To").map(|(_, v)| v.clone()).unwrap_or_default();
    let messages: Vec<serde_json::Value> = m
        .sent
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t == to)
        .map(|(i, (t, b))| serde_json::json!({"sid": format!("SM{:032}", i + 1), "to": t, "body": b, "status": "sent"}))
        .collect();
    (StatusCode::OK, serde_json::json!({ "messages": messages }).to_string()).into_response()
}

async fn mock_document() -> Response {
    ([("content-type", "application/pdf")], b"%PDF-1.4 a delivery note".to_vec()).into_response()
}

async fn mock_media(State(m): State<MockState>, Path(n): Path<u32>, headers: HeaderMap) -> Response {
    let mut m = m.lock().unwrap();
    m.media_requests += 1;
    let authed =
        headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Basic ") || v.starts_with("Bearer "));
    if !authed {
        m.unauthorised_media += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if m.media_failures_left > 0 {
        m.media_failures_left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let jpeg = demo_photo("DR12345678", n as i64, "test", n);
    ([("content-type", "image/jpeg")], jpeg).into_response()
}

async fn mock_meta_send(State(m): State<MockState>, headers: HeaderMap, body: String) -> Response {
    let mut m = m.lock().unwrap();
    m.attempts += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer meta-access-token") {
        return (StatusCode::UNAUTHORIZED, r#"{"error": {"code": 190, "message": "bad token"}}"#).into_response();
    }
    if let Some((status, after, body)) = m.script.pop_front() {
        let mut res = (StatusCode::from_u16(status).unwrap(), body).into_response();
        if let Some(a) = after {
            res.headers_mut().insert("retry-after", a.to_string().parse().unwrap());
        }
        return res;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let what = match v["type"].as_str().unwrap() {
        "text" => v["text"]["body"].as_str().unwrap().to_string(),
        "template" => format!("template {} {} {}", v["template"]["name"], v["template"]["language"]["code"], v["template"]["components"]),
        kind => format!("{} [{kind} {}]", v[kind]["caption"].as_str().unwrap(), v[kind]["link"].as_str().unwrap()),
    };
    m.sent.push((v["to"].as_str().unwrap().to_string(), what));
    let n = m.sent.len();
    (StatusCode::OK, format!(r#"{{"messaging_product": "whatsapp", "messages": [{{"id": "wamid.OUT{n}"}}]}}"#)).into_response()
}

/// Meta's media lookup: id → a short-lived URL (on this mock), fetched with the same token.
async fn mock_meta_media_info(State(m): State<MockState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer meta-access-token") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let base = m.lock().unwrap().base.clone();
    let body = serde_json::json!({"messaging_product": "whatsapp", "url": format!("{base}/media/7"), "mime_type": "image/jpeg", "id": id});
    (StatusCode::OK, body.to_string()).into_response()
}

async fn start_mock() -> (String, MockState) {
    let state: MockState = Arc::default();
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(mock_twilio_send).get(mock_twilio_list))
        .route("/media/{n}", get(mock_media))
        .route("/files/note.pdf", get(mock_document))
        .route("/v21.0/{phone_id}/messages", post(mock_meta_send))
        .route("/v21.0/{media_id}", get(mock_meta_media_info))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    state.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

type App = TestApp;

async fn spawn_app(store: Store, provider: ProviderConfig) -> App {
    spawn_app_paced(store, provider, 80).await
}

async fn spawn_app_paced(store: Store, provider: ProviderConfig, send_rate: u32) -> App {
    // As behind a proxy: providers sign for the public URL, not the address we listen on.
    let config = Config {
        public_url: "https://dropcheck.example".into(),
        bridge_api_key: None,
        provider_env: provider.as_env(),
        sandbox_token: match &provider {
            ProviderConfig::Sandbox { signing_token } => signing_token.clone(),
            _ => "sandbox-unused".into(),
        },
        retry: RetryPolicy { base_ms: 50, cap_ms: 400, horizon_ms: 30_000 },
        send_rate,
        ..Config::for_tests()
    };
    helpers::spawn_app(store, config).await
}

fn twilio_config(mock: &str) -> ProviderConfig {
    ProviderConfig::Twilio {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: "whatsapp:+14155238886".into(),
        api_base: mock.into(),
    }
}

impl App {
    /// Posts a Twilio-format webhook signed as Twilio signs it (over the public URL).
    async fn twilio(&self, path: &str, fields: &[(&str, &str)], sign_with: Option<&str>) -> StatusCode {
        let params: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut req = self.client.post(format!("{}{path}", self.base)).form(fields);
        if let Some(token) = sign_with {
            req = req.header("X-Twilio-Signature", twilio_signature(token, &format!("{}{path}", self.public_url), &params));
        }
        req.send().await.unwrap().status()
    }

    async fn text(&self, sid: &str, body: &str) {
        let st = self
            .twilio(
                "/webhooks/twilio",
                &[("MessageSid", sid), ("From", &format!("whatsapp:{CONTRACTOR}")), ("Body", body), ("NumMedia", "0")],
                Some(TOKEN),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "text {body}");
    }

    async fn photo(&self, sid: &str, media_url: &str, caption: &str) {
        let fields = [
            ("MessageSid", sid),
            ("From", &format!("whatsapp:{CONTRACTOR}")),
            ("Body", caption),
            ("NumMedia", "1"),
            ("MediaUrl0", media_url),
            ("MediaContentType0", "image/jpeg"),
        ];
        assert_eq!(self.twilio("/webhooks/twilio", &fields, Some(TOKEN)).await, StatusCode::OK);
    }
}

/// Lets the server finish everything it has to do (every event processed, every message sent
/// or failed, backoffs and delayed acknowledgments waited out), then checks what the mock
/// provider was sent.
async fn sent_after_drain<F: Fn(&Mock) -> bool>(app: &App, mock: &MockState, what: &str, f: F) {
    app.drain().await;
    let m = mock.lock().unwrap();
    assert!(f(&m), "no {what} was sent; sent: {:?}", m.sent);
}

fn dn(s: &str) -> DropNumber {
    DropNumber::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_webhooks_are_verified_stored_before_200_and_deduplicated() {
    on_each_backend(|store| async move {
        let (mock, _m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        let fields = [("MessageSid", "SM100"), ("From", "whatsapp:+27640412391"), ("Body", "hello"), ("NumMedia", "0")];

        // Missing or wrong signature: 403, nothing stored.
        assert_eq!(app.twilio("/webhooks/twilio", &fields, None).await, StatusCode::FORBIDDEN);
        assert_eq!(app.twilio("/webhooks/twilio", &fields, Some("not-the-token")).await, StatusCode::FORBIDDEN);
        assert!(store.recent_receipts(10).await.unwrap().is_empty());

        // Good signature: 200 with empty TwiML, stored; a redelivery is stored but has no second event.
        assert_eq!(app.twilio("/webhooks/twilio", &fields, Some(TOKEN)).await, StatusCode::OK);
        assert_eq!(app.twilio("/webhooks/twilio", &fields, Some(TOKEN)).await, StatusCode::OK);
        let receipts = store.recent_receipts(10).await.unwrap();
        assert_eq!(receipts.len(), 2);
        assert_eq!((receipts[0].event_count, receipts[0].duplicate_count), (0, 1));
        assert_eq!((receipts[1].event_count, receipts[1].duplicate_count), (1, 0));

        // Good signature, malformed body: 400, kept as rejected for inspection.
        let bad = [("From", "whatsapp:+27640412391"), ("Body", "no sid")];
        assert_eq!(app.twilio("/webhooks/twilio", &bad, Some(TOKEN)).await, StatusCode::BAD_REQUEST);
        let r = &store.recent_receipts(1).await.unwrap()[0];
        assert_eq!(r.verdict, "rejected");
        assert!(r.error.as_deref().unwrap().contains("MessageSid"));

        app.drain_inbox().await;
        let events = store.recent_events(10).await.unwrap();
        assert_eq!(events.len(), 1, "one event for two deliveries");
        assert_eq!(events[0].state, "done");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_a_finished_event_from_the_ledger_changes_nothing_and_sends_nothing() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        app.text("SM700", "DR12345678").await;
        app.drain_inbox().await;
        app.drain().await;
        sent_after_drain(&app, &m, "the checklist reply", |m| m.sent.iter().any(|(_, b)| b.contains("DR12345678"))).await;
        let before_sent = m.lock().unwrap().sent.len();
        let drop = store.drop_detail(&dn("DR12345678")).await.unwrap();
        let event = store.recent_events(1).await.unwrap().remove(0);
        assert_eq!(event.state, "done");

        // "Reprocess" on /events puts the event back in the queue.
        store.requeue_event(event.event_id, dropcheck_core::now_ms()).await.unwrap();
        app.drain_inbox().await;
        app.drain().await;
        let again = store.recent_events(1).await.unwrap().remove(0);
        assert_eq!((again.event_id, again.state.as_str()), (event.event_id, "done"));
        assert!(again.result.as_deref().unwrap().contains("already applied"), "{:?}", again.result);
        let after = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(after.history.len(), drop.history.len(), "no new history");
        assert_eq!(after.messages.len(), drop.messages.len(), "no new message in or out");
        // Nothing was queued again, so nothing leaves.
        app.drain().await;
        assert_eq!(m.lock().unwrap().sent.len(), before_sent, "nothing sent again");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_submits_a_drop_with_photos_and_gets_feedback_then_resubmits() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;

        // A photo before any drop number is held, not lost; the reply asks for the drop number.
        app.photo("MM1", &format!("{mock}/media/1"), "").await;
        app.drain_inbox().await;
        sent_after_drain(&app, &m, "the held-photo reply", |m| m.sent.iter().any(|(_, b)| b.contains("Which drop"))).await;

        // The drop number opens the drop and files the held photo on step 1.
        app.text("SM2", "DR12345678").await;
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(d.status, DropStatus::Collecting);
        assert_eq!(d.contractor.as_ref().unwrap().phone, CONTRACTOR);
        assert_eq!(d.steps[0].photos.len(), 1, "the held photo is filed on step 1");
        sent_after_drain(&app, &m, "the checklist reply", |m| {
            m.sent.iter().any(|(_, b)| b.contains("DR12345678") && b.contains("Next: step 2"))
        })
        .await;

        // DONE too early: the reply lists what is missing, the drop stays collecting.
        app.text("SM3", "DR12345678 DONE").await;
        app.drain_inbox().await;
        assert_eq!(store.drop_summary(&dn("DR12345678")).await.unwrap().status.as_str(), "collecting");
        sent_after_drain(&app, &m, "the not-ready reply", |m| m.sent.iter().any(|(_, b)| b.contains("Still missing: 2 "))).await;

        // Eleven more photos, one captioned for step 12 out of order; a burst gets one acknowledgment.
        // The earlier replies first leave (the held-photo reply waits out its batching delay),
        // so that only the burst's acknowledgment is counted.
        app.drain().await;
        let before = m.lock().unwrap().sent.len();
        app.photo("MM12", &format!("{mock}/media/12"), "step 12").await;
        for n in 2..=11u32 {
            app.photo(&format!("MM{n}"), &format!("{mock}/media/{n}"), "").await;
        }
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert!(d.steps.iter().all(|s| s.photos.len() == 1), "one photo on every step");
        sent_after_drain(&app, &m, "one batched acknowledgment", |m| {
            m.sent.len() > before && m.sent.last().unwrap().1.starts_with("Got 11 photos")
        })
        .await;
        assert_eq!(m.lock().unwrap().sent.len(), before + 1, "eleven photos, one reply");
        // Every step has a photo: the drop went to review by itself, and the reply says so.
        assert_eq!(store.drop_summary(&dn("DR12345678")).await.unwrap().status.as_str(), "unreviewed");
        assert!(m.lock().unwrap().sent.last().unwrap().1.contains("now with QA"));

        // A DONE out of habit is confirmed.
        app.text("SM13", "DR12345678 DONE").await;
        app.drain_inbox().await;
        sent_after_drain(&app, &m, "the submitted reply", |m| m.sent.iter().any(|(_, b)| b.contains("submitted for review"))).await;

        // The reviewer marks steps 3 and 7 missing; the feedback goes out through the queue.
        let reviewer = ActorRef::system("qa@example.com");
        let v = |n: i64| StepVerdict {
            step: StepNo::new(n).unwrap(),
            verdict: Verdict::Missing,
            reason: Some("no_photo".into()),
            note: String::new(),
        };
        store.set_verdicts(&dn("DR12345678"), &[v(3), v(7)], &reviewer).await.unwrap();
        store.mark_incomplete(&dn("DR12345678"), &reviewer).await.unwrap();
        sent_after_drain(&app, &m, "the feedback", |m| {
            m.sent.iter().any(|(to, b)| to == "whatsapp:+27640412391" && b.contains("Step 3") && b.contains("Step 7"))
        })
        .await;

        // Two new photos, then DONE: resubmitted.
        app.photo("MM20", &format!("{mock}/media/20"), "3").await;
        app.text("SM21", "DR12345678 DONE").await;
        app.drain_inbox().await;
        assert_eq!(store.drop_summary(&dn("DR12345678")).await.unwrap().status.as_str(), "incomplete", "step 7 still has no new photo");
        app.photo("MM22", &format!("{mock}/media/22"), "").await;
        app.text("SM23", "DR12345678 DONE").await;
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(d.status, DropStatus::Resubmitted);
        assert_eq!(d.steps[6].photos.len(), 2, "the uncaptioned photo went to the open step 7");
        sent_after_drain(&app, &m, "the resubmission reply", |m| m.sent.iter().any(|(_, b)| b.contains("fixes for DR12345678"))).await;
        assert_eq!(m.lock().unwrap().unauthorised_media, 0, "media is fetched with the account's credentials");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_retries_transient_failures_and_statuses_only_move_forward() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        {
            let mut m = m.lock().unwrap();
            m.script.push_back((500, None, r#"{"code": 20500, "message": "Internal Server Error"}"#.into()));
            m.script.push_back((RESET, None, String::new()));
            m.script.push_back((429, Some(1), r#"{"code": 20429, "message": "Too Many Requests"}"#.into()));
            m.script.push_back((SLOW, None, String::new()));
            m.media_failures_left = 1;
        }
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        // A media download that fails once is retried, and the photo arrives.
        app.text("SM1", "DR12345678").await;
        app.photo("MM2", &format!("{mock}/media/2"), "").await;
        app.drain_inbox().await;
        assert_eq!(store.drop_detail(&dn("DR12345678")).await.unwrap().steps[0].photos.len(), 1);
        // The first reply met a 500, a connection reset and a 429 (Retry-After: 1), then a slow
        // answer: delivered once.
        sent_after_drain(&app, &m, "the first reply after retries", |m| !m.sent.is_empty()).await;
        let (attempts, sent) = {
            let m = m.lock().unwrap();
            (m.attempts, m.sent.clone())
        };
        assert!(attempts >= 4, "{attempts} attempts");
        assert_eq!(sent.iter().filter(|(_, b)| b.starts_with("Drop DR12345678")).count(), 1);

        sent_after_drain(&app, &m, "the photo acknowledgment", |m| m.sent.iter().any(|(_, b)| b.starts_with("Got 1 photo"))).await;
        app.drain().await;
        // A not-retryable error (invalid number) fails at once with the provider's reason.
        m.lock().unwrap().script.push_back((400, None, r#"{"code": 21211, "message": "Invalid 'To' Phone Number"}"#.into()));
        let id = store
            .queue_message(&dropcheck_core::domain::Phone::parse(CONTRACTOR).unwrap(), "hello", None, dropcheck_core::now_ms())
            .await
            .unwrap();
        app.drain_outbox().await;
        let failed = store.message(id).await.unwrap();
        assert_eq!((failed.status.as_str(), failed.error_code.as_deref(), failed.attempts), ("failed", Some("21211"), 1));
        // Resend queues it again; this time it goes.
        store.resend(id, dropcheck_core::now_ms()).await.unwrap();
        app.drain_outbox().await;
        let sent = store.message(id).await.unwrap();
        assert_eq!(sent.status, "sent");
        let sid = sent.provider_message_id.clone().unwrap();

        // Accepted, then the connection broke: the retry finds it in Twilio's list and does
        // not send it again.
        m.lock().unwrap().script.push_back((ACCEPT_THEN_RESET, None, String::new()));
        let amb = store
            .queue_message(&dropcheck_core::domain::Phone::parse(CONTRACTOR).unwrap(), "ambiguous hello", None, dropcheck_core::now_ms())
            .await
            .unwrap();
        app.drain_outbox().await;
        let reconciled = store.message(amb).await.unwrap();
        assert_eq!((reconciled.status.as_str(), reconciled.attempts), ("sent", 2));
        assert!(reconciled.provider_message_id.is_some());
        assert_eq!(m.lock().unwrap().sent.iter().filter(|(_, b)| b == "ambiguous hello").count(), 1, "not sent twice");

        // Status callbacks: delivered, then read; a late "sent" changes nothing.
        for status in ["delivered", "read", "sent"] {
            let st = app
                .twilio(
                    "/webhooks/twilio/status",
                    &[("MessageSid", &sid), ("MessageStatus", status), ("To", "whatsapp:+27640412391")],
                    Some(TOKEN),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
            app.drain_inbox().await;
        }
        assert_eq!(store.message(id).await.unwrap().status, "read");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_handshake_signatures_and_envelopes() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let provider = ProviderConfig::Meta {
            access_token: "meta-access-token".into(),
            phone_number_id: "106540352242922".into(),
            app_secret: "meta-app-secret".into(),
            verify_token: "meta-verify-token".into(),
            api_base: mock.clone(),
            api_version: "v21.0".into(),
        };
        let app = spawn_app(store.clone(), provider).await;
        let c = &app.client;
        let url = |q: &str| format!("{}/webhooks/meta?{q}", app.base);
        let r = c.get(url("hub.mode=subscribe&hub.verify_token=meta-verify-token&hub.challenge=1158201444")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "1158201444");
        let r = c.get(url("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // Twilio's route is not open while Meta is the provider.
        assert_eq!(app.twilio("/webhooks/twilio", &[("MessageSid", "SM1")], Some(TOKEN)).await, StatusCode::NOT_FOUND);

        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/fixtures/meta-inbound-text.json")).unwrap();
        let post = |body: Vec<u8>, sig: String| {
            c.post(format!("{}/webhooks/meta", app.base))
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", sig)
                .body(body)
                .send()
        };
        assert_eq!(post(fixture.clone(), "sha256=00".into()).await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(post(fixture.clone(), meta_signature("wrong", &fixture)).await.unwrap().status(), StatusCode::FORBIDDEN);
        assert!(store.recent_receipts(5).await.unwrap().is_empty());
        assert_eq!(post(fixture.clone(), meta_signature("meta-app-secret", &fixture)).await.unwrap().status(), StatusCode::OK);
        assert_eq!(post(fixture.clone(), meta_signature("meta-app-secret", &fixture)).await.unwrap().status(), StatusCode::OK);
        let bad = b"{\"entry\": 5}".to_vec();
        assert_eq!(post(bad.clone(), meta_signature("meta-app-secret", &bad)).await.unwrap().status(), StatusCode::BAD_REQUEST);
        app.drain_inbox().await;
        assert_eq!(store.recent_events(10).await.unwrap().len(), 1, "a redelivered wamid is one event");
        // The text got the hint, sent through Meta's API with the token (the window is open).
        sent_after_drain(&app, &m, "the hint via Meta", |m| m.sent.iter().any(|(_, b)| b.contains("/help"))).await;

        // Every fixture envelope parses and is accepted.
        for name in ["meta-inbound-image.json", "meta-status-sent.json", "meta-status-failed.json"] {
            let body = std::fs::read(format!("{}/../testdata/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert_eq!(post(body.clone(), meta_signature("meta-app-secret", &body)).await.unwrap().status(), StatusCode::OK, "{name}");
        }
        app.drain_inbox().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_sends_through_the_real_webhook_and_shows_the_conversation() {
    on_each_backend(|store| async move {
        use dropcheck_core::domain::{Email, Role};
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let hash = dropcheck_core::auth::hash_password("reviewer pass".into()).await.unwrap();
        store.create_user(&Email::parse("qa@example.com").unwrap(), &hash, Role::Reviewer).await.unwrap();
        let app = spawn_app(store.clone(), ProviderConfig::Sandbox { signing_token: "sandbox-token".into() }).await;
        let browser = helpers::client();
        let post = |path: &str, form: Vec<(&'static str, String)>| {
            browser.post(format!("{}{path}", app.base)).header("accept", "text/html").header("origin", app.base.clone()).form(&form).send()
        };
        // Signed out, the simulator refuses to send.
        let r = post("/sandbox/send", vec![("phone", CONTRACTOR.into()), ("body", "hi".into())]).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = post("/rpc/login", vec![("email", "qa@example.com".into()), ("password", "reviewer pass".into())]).await.unwrap();
        assert!(r.status().is_redirection());

        let r =
            post("/sandbox/send", vec![("phone", CONTRACTOR.into()), ("body", "DR12345678".into()), ("photos", "0".into())]).await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/sandbox?phone=%2B27640412391");
        let r = post("/sandbox/send", vec![("phone", CONTRACTOR.into()), ("body", String::new()), ("photos", "3".into())]).await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(d.steps.iter().filter(|s| !s.photos.is_empty()).count(), 3, "photos fetched from the sandbox's media URLs");
        let receipts = store.recent_receipts(10).await.unwrap();
        assert_eq!(receipts.len(), 4, "one signed webhook per message");
        assert!(receipts.iter().all(|r| r.provider == "sandbox" && r.verdict == "accepted"));

        // Bad input is a clear page, not an error from deep inside.
        let r = post("/sandbox/send", vec![("phone", "12".into()), ("body", "x".into())]).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = post("/sandbox/send", vec![("phone", CONTRACTOR.into()), ("photos", "99".into())]).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // The replies reach the simulated phone (delivered) and show on the page and in /messages.
        app.drain().await;
        let f = dropcheck_core::outbox::MessageFilter {
            direction: Some(dropcheck_core::domain::Direction::Out),
            status: Some("delivered".into()),
            ..Default::default()
        };
        assert!(store.list_messages(&f, None, 10).await.unwrap().0.iter().any(|m| m.body.starts_with("Got 3 photos")), "delivered");
        let page = browser.get(format!("{}/sandbox?phone=%2B27640412391", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Drop DR12345678 (Velo Test)"), "{page}");
        assert!(page.contains("Got 3 photos for DR12345678"));
        let page = browser.get(format!("{}/messages?direction=out", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Got 3 photos for DR12345678"));
        let r = browser.get(format!("{}/messages?status=bogus", app.base)).send().await.unwrap();
        assert!(r.text().await.unwrap().contains("not a message status"));

        // The simulated phone can also send real files (multipart): a photo goes on the next
        // step, a PDF is kept as an attachment.
        let jpeg = demo_photo("DR12345678", 4, "upload", 7);
        let form = reqwest::multipart::Form::new()
            .text("phone", CONTRACTOR)
            .text("body", "")
            .text("photos", "0")
            .part("files", reqwest::multipart::Part::bytes(jpeg).file_name("meter.jpg").mime_str("image/jpeg").unwrap())
            .part(
                "files",
                reqwest::multipart::Part::bytes(b"%PDF-1.4 note".to_vec()).file_name("note.pdf").mime_str("application/pdf").unwrap(),
            );
        let r = browser.post(format!("{}/sandbox/send", app.base)).header("origin", app.base.clone()).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(d.steps.iter().filter(|s| !s.photos.is_empty()).count(), 4, "the uploaded photo is on step 4");
        let files = store.attachments_for_drop(d.drop_id).await.unwrap();
        assert_eq!(files.iter().map(|f| f.mime_type.as_str()).collect::<Vec<_>>(), vec!["application/pdf"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_that_cannot_be_downloaded_is_retried_then_reported_to_the_contractor_and_on_the_drop() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        m.lock().unwrap().media_failures_left = 1000;
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        app.text("SM1", "DR12345678").await;
        app.photo("MM2", &format!("{mock}/media/2"), "").await;
        app.drain_inbox().await;
        let requests = m.lock().unwrap().media_requests;
        assert!(requests >= 8, "the download was retried ({requests} requests)");
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert!(d.steps.iter().all(|s| s.photos.is_empty()));
        let failure = d.history.iter().find(|h| h.kind == "media_failed").expect("the failure is on the drop's timeline");
        assert!(failure.detail.contains("download failed"), "{}", failure.detail);
        sent_after_drain(&app, &m, "the please-resend reply", |m| m.sent.iter().any(|(_, b)| b.contains("could not be downloaded"))).await;
        let events = store.recent_events(5).await.unwrap();
        assert!(events.iter().all(|e| e.state == "done"), "the message itself was processed: {events:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_photos_are_kept_as_attachments_of_the_drop() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        app.text("SM1", "DR12345678").await;
        let fields = [
            ("MessageSid", "MM2"),
            ("From", "whatsapp:+27640412391"),
            ("Body", ""),
            ("NumMedia", "1"),
            ("MediaUrl0", &format!("{mock}/files/note.pdf")),
            ("MediaContentType0", "application/pdf"),
        ];
        assert_eq!(app.twilio("/webhooks/twilio", &fields, Some(TOKEN)).await, StatusCode::OK);
        app.drain_inbox().await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert!(d.steps.iter().all(|s| s.photos.is_empty()), "a PDF is not a checklist photo");
        let files = store.attachments_for_drop(d.drop_id).await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].mime_type.as_str(), files[0].size_bytes), ("application/pdf", 24));
        assert!(d.history.iter().any(|h| h.kind == "attachment"));
        sent_after_drain(&app, &m, "the file reply", |m| m.sent.iter().any(|(_, b)| b.contains("Got your file (application/pdf)"))).await;
        // Served only to signed-in users, always as a download.
        let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = no_redirects.get(format!("{}/attachments/{}", app.base, files[0].attachment_id)).send().await.unwrap();
        assert!(r.status().is_redirection(), "signed out: sent to sign in, not served ({})", r.status());
        assert_eq!(r.headers()["location"], "/login");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_twilio_fixture_replays_through_the_real_routes() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        let fixture = |name: &str| std::fs::read(format!("{}/../testdata/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let replay = |path: &'static str, mut params: Vec<(String, String)>| {
            // Media stays on this machine: the recorded Twilio media URL points at the mock.
            for (k, v) in params.iter_mut() {
                if k.starts_with("MediaUrl") {
                    *v = format!("{mock}/media/5");
                }
            }
            let sig = twilio_signature(TOKEN, &format!("{}{path}", app.public_url), &params);
            app.client.post(format!("{}{path}", app.base)).header("X-Twilio-Signature", sig).form(&params).send()
        };
        let text = dropcheck_core::providers::parse_form(&fixture("twilio-inbound-text.form"));
        let image = dropcheck_core::providers::parse_form(&fixture("twilio-inbound-image.form"));
        let status = dropcheck_core::providers::parse_form(&fixture("twilio-status-delivered.form"));
        assert_eq!(replay("/webhooks/twilio", text.clone()).await.unwrap().status(), StatusCode::OK);
        assert_eq!(replay("/webhooks/twilio", image.clone()).await.unwrap().status(), StatusCode::OK);
        assert_eq!(replay("/webhooks/twilio/status", status.clone()).await.unwrap().status(), StatusCode::OK);
        // Replayed again (as Twilio redelivers): no second effect.
        assert_eq!(replay("/webhooks/twilio", image).await.unwrap().status(), StatusCode::OK);
        assert_eq!(replay("/webhooks/twilio/status", status).await.unwrap().status(), StatusCode::OK);
        app.drain_inbox().await;
        let events = store.recent_events(10).await.unwrap();
        assert_eq!(events.len(), 3, "three distinct events: {events:?}");
        assert!(events.iter().all(|e| e.state == "done"), "{events:?}");
        // The image (no drop number yet) was downloaded with the account's credentials and held.
        assert!(m.lock().unwrap().media_requests >= 1);
        assert_eq!(m.lock().unwrap().unauthorised_media, 0);
        sent_after_drain(&app, &m, "the which-drop reply", |m| {
            m.sent.iter().any(|(to, b)| to == "whatsapp:+31612345678" && b.contains("Which drop"))
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_24_hour_window_or_after_stop_a_message_fails_at_once_with_the_reason() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        let wait_failed = |id: dropcheck_core::ids::MessageId| {
            let (store, workers) = (store.clone(), app.workers.clone());
            async move {
                workers.drain_outbox().await.unwrap();
                let msg = store.message(id).await.unwrap();
                assert_eq!(msg.status, "failed", "message {id}");
                msg
            }
        };
        // A number that never wrote: WhatsApp refuses free-form messages; not retried.
        let silent = dropcheck_core::domain::Phone::parse("+27640000077").unwrap();
        let id = store.queue_message(&silent, "hello", None, dropcheck_core::now_ms()).await.unwrap();
        let msg = wait_failed(id).await;
        assert_eq!((msg.error_code.as_deref(), msg.attempts), (Some("window_closed"), 1));
        let failed: Vec<serde_json::Value> =
            store.events_of("+27640000077", 10).await.unwrap().into_iter().filter(|e| e.0 == "message.failed").map(|e| e.1).collect();
        assert_eq!(failed.len(), 1, "a message given up on is a message.failed event");
        assert_eq!((failed[0]["error_code"].as_str(), failed[0]["message_id"].as_i64()), (Some("window_closed"), Some(id.0)));
        // A number that sent STOP gets only the confirmation.
        app.text("SM1", "STOP").await;
        app.drain_inbox().await;
        sent_after_drain(&app, &m, "the STOP confirmation", |m| m.sent.iter().any(|(_, b)| b.contains("START to resume"))).await;
        let me = dropcheck_core::domain::Phone::parse(CONTRACTOR).unwrap();
        // STOP is the contact's consent withdrawn, with when and how, and an event.
        let c = store.contact(&me).await.unwrap();
        assert_eq!(
            (c.consent.status, c.consent.source.as_deref()),
            (dropcheck_core::contacts::ConsentStatus::OptedOut, Some("WhatsApp STOP"))
        );
        assert!(store.events_of(CONTRACTOR, 10).await.unwrap().iter().any(|e| e.0 == "contact.opted_out"));
        let id = store.queue_message(&me, "a notice", None, dropcheck_core::now_ms()).await.unwrap();
        let msg = wait_failed(id).await;
        assert_eq!(msg.error_code.as_deref(), Some("opted_out"));
        assert!(!m.lock().unwrap().sent.iter().any(|(_, b)| b == "hello" || b == "a notice"), "neither reached the provider");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_24_hour_window_the_approved_provider_template_is_sent_with_the_message_variables() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        let reviewer = ActorRef::system("qa@example.com");
        // A drop registered by another system: the contractor never wrote, the window is closed.
        let me = dropcheck_core::domain::Phone::parse(CONTRACTOR).unwrap();
        store.create_drop(&project, &dn("DR12345678"), Some(&me), DropStatus::Unreviewed, &reviewer).await.unwrap();
        let v = |n: i64| StepVerdict { step: StepNo::new(n).unwrap(), verdict: Verdict::Missing, reason: Some("no_photo".into()), note: String::new() };
        store.set_verdicts(&dn("DR12345678"), &[v(3), v(7)], &reviewer).await.unwrap();
        store
            .set_provider_template(
                "drop_feedback",
                Some(&ProviderTemplates {
                    twilio: Some(TwilioContent {
                        content_sid: "HX0123456789abcdef0123456789abcdef".into(),
                        variables: vec!["drop_number".into(), "steps | map(attribute='number') | join(', ')".into()],
                    }),
                    meta: None,
                }),
            )
            .await
            .unwrap();
        store.mark_incomplete(&dn("DR12345678"), &reviewer).await.unwrap();
        sent_after_drain(&app, &m, "the feedback as the content template", |m| {
            m.sent.iter().any(|(to, b)| {
                to == "whatsapp:+27640412391" && b == r#"template HX0123456789abcdef0123456789abcdef {"1":"DR12345678","2":"3, 7"}"#
            })
        })
        .await;
        let d = store.drop_detail(&dn("DR12345678")).await.unwrap();
        let feedback = d.messages.iter().find(|x| x.template.as_deref() == Some("drop_feedback")).unwrap();
        let sent = store.message(feedback.message_id).await.unwrap();
        assert_eq!(sent.sent_as.as_deref(), Some("template:HX0123456789abcdef0123456789abcdef"));
        assert_eq!(sent.attempts, 1);

        // Inside the window (the contractor wrote) a text goes as text; when Twilio still
        // answers 63016 (its clock, not ours), the template goes out in the same attempt.
        app.text("SM1", "/status").await;
        app.drain_inbox().await;
        // The reply to /status goes first, or it would meet the scripted answer below.
        app.drain().await;
        m.lock().unwrap().script.push_back((400, None, r#"{"code": 63016, "message": "Outside messaging window"}"#.into()));
        let vars = dropcheck_core::minijinja::context! { drop_number => "DR12345678", steps => vec![dropcheck_core::minijinja::context! { number => 5 }] };
        let out = Outgoing { phone: &me, body: "Drop DR12345678: step 5", template: Some("drop_feedback"), vars: Some(&vars), media_url: None, idempotency_key: None, notification: false, reference_id: None };
        let id = store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        sent_after_drain(&app, &m, "the template after 63016", |m| m.sent.iter().any(|(_, b)| b.ends_with(r#"{"1":"DR12345678","2":"5"}"#))).await;
        assert_eq!(store.message(id).await.unwrap().attempts, 1);

        // A picture by URL goes with its caption.
        let out = Outgoing { phone: &me, body: "Site plan", template: None, vars: None, media_url: Some("https://files.example/plan.png"), idempotency_key: None, notification: false, reference_id: None };
        store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        sent_after_drain(&app, &m, "the media message", |m| m.sent.iter().any(|(_, b)| b == "Site plan [media https://files.example/plan.png]")).await;
        let bad = Outgoing { phone: &me, body: "x", template: None, vars: None, media_url: Some("file:///etc/passwd"), idempotency_key: None, notification: false, reference_id: None };
        assert_eq!(store.queue_outbound(&bad, 0).await.unwrap_err().code(), "invalid_media_url");

        // Without a provider template for the active provider, it fails at once with the reason.
        store.set_provider_template("drop_feedback", None).await.unwrap();
        let silent = dropcheck_core::domain::Phone::parse("+27640000078").unwrap();
        let out = Outgoing { phone: &silent, body: "feedback", template: Some("drop_feedback"), vars: Some(&vars), media_url: None, idempotency_key: None, notification: false, reference_id: None };
        let id = store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        app.drain_outbox().await;
        assert_eq!(store.message(id).await.unwrap().error_code.as_deref(), Some("window_closed"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_sends_templates_with_body_parameters_and_media_by_link() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let provider = ProviderConfig::Meta {
            access_token: "meta-access-token".into(),
            phone_number_id: "106540352242922".into(),
            app_secret: "meta-app-secret".into(),
            verify_token: "meta-verify-token".into(),
            api_base: mock.clone(),
            api_version: "v21.0".into(),
        };
        let app = spawn_app(store.clone(), provider).await;
        store
            .set_provider_template(
                "drop_feedback",
                Some(&ProviderTemplates {
                    meta: Some(MetaTemplate {
                        name: "drop_feedback".into(),
                        language: "en_US".into(),
                        params: vec!["drop_number".into(), "steps | map(attribute='number') | join(', ')".into()],
                    }),
                    twilio: None,
                }),
            )
            .await
            .unwrap();
        // Never wrote: outside the window.
        let silent = dropcheck_core::domain::Phone::parse("+27640000079").unwrap();
        let vars = dropcheck_core::minijinja::context! { drop_number => "DR12345678", steps => vec![dropcheck_core::minijinja::context! { number => 3 }, dropcheck_core::minijinja::context! { number => 7 }] };
        let out = Outgoing { phone: &silent, body: "feedback", template: Some("drop_feedback"), vars: Some(&vars), media_url: None, idempotency_key: None, notification: false, reference_id: None };
        store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        sent_after_drain(&app, &m, "the Meta template", |m| {
            m.sent.iter().any(|(to, b)| {
                to == "+27640000079"
                    && b == r#"template "drop_feedback" "en_US" [{"parameters":[{"text":"DR12345678","type":"text"},{"text":"3, 7","type":"text"}],"type":"body"}]"#
            })
        })
        .await;
        // A template without an approved provider template fails at once outside the window.
        let out = Outgoing { phone: &silent, body: "a notice", template: Some("help"), vars: None, media_url: None, idempotency_key: None, notification: false, reference_id: None };
        let id = store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        app.drain_outbox().await;
        assert_eq!(store.message(id).await.unwrap().error_code.as_deref(), Some("window_closed"));
        // Inside the window: a document by link, with its caption.
        store.upsert_contact(&silent, "").await.unwrap();
        store.note_inbound(&silent, dropcheck_core::now_ms()).await.unwrap();
        let out = Outgoing { phone: &silent, body: "Your invoice", template: None, vars: None, media_url: Some("https://files.example/inv.pdf?x=1"), idempotency_key: None, notification: false, reference_id: None };
        store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        sent_after_drain(&app, &m, "the document", |m| m.sent.iter().any(|(_, b)| b == "Your invoice [document https://files.example/inv.pdf?x=1]")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_never_exceeds_the_configured_rate_per_sender_number() {
    on_each_backend(|store| async move {
        const RATE: usize = 5;
        const N: usize = 20;
        let (mock, m) = start_mock().await;
        let app = spawn_app_paced(store.clone(), twilio_config(&mock), RATE as u32).await;
        // Twenty numbers (the sender works on 16 at once), all inside the 24-hour window.
        let now = dropcheck_core::now_ms();
        for i in 0..N {
            let phone = dropcheck_core::domain::Phone::parse(&format!("+2764000{i:04}")).unwrap();
            store.upsert_contact(&phone, "").await.unwrap();
            store.note_inbound(&phone, now).await.unwrap();
            store.queue_message(&phone, &format!("paced {i}"), None, now).await.unwrap();
        }
        sent_after_drain(&app, &m, "every paced message", |m| m.sent.iter().filter(|(_, b)| b.starts_with("paced ")).count() == N).await;
        app.drain().await;
        let m = m.lock().unwrap();
        assert_eq!(m.sent.len(), N, "each sent once");
        let at = &m.sent_at;
        // GCRA at RATE/s with a burst of RATE: the first RATE go at once, then one every 1/RATE s.
        let span = at[N - 1].duration_since(at[0]).as_secs_f64();
        let least = (N - RATE) as f64 / RATE as f64 - 0.25;
        assert!(span >= least, "{N} messages took {span:.2} s; at {RATE}/s they need at least {least:.2} s");
        // In no stretch of time did more go than the rate allows (2 messages of slack for the
        // variable time between the limiter's permit and the mock's clock).
        for i in 0..N {
            for j in i..N {
                let secs = at[j].duration_since(at[i]).as_secs_f64();
                let allowed = RATE as f64 + RATE as f64 * secs + 2.0;
                assert!((j - i + 1) as f64 <= allowed, "{} messages within {secs:.3} s", j - i + 1);
            }
        }
    })
    .await;
}

/// Issue 11, item 4: retries end at a deadline, not after a count. A provider that fails every
/// send for a while (60 attempts in a row; the old budget gave up after 6 per message) loses
/// nothing, and one failing half the calls (500, connection resets, 429 with Retry-After)
/// delivers every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_a_flaky_provider_delivers_everything_once() {
    on_each_backend(|store| async move {
        let (mock, m) = start_mock().await;
        {
            let mut m = m.lock().unwrap();
            for _ in 0..60 {
                m.script.push_back((503, None, r#"{"code": 20503, "message": "Service Unavailable"}"#.into()));
            }
        }
        let app = spawn_app(store.clone(), twilio_config(&mock)).await;
        let phones: Vec<dropcheck_core::domain::Phone> =
            (0..5).map(|i| dropcheck_core::domain::Phone::parse(&format!("+2764000020{i}")).unwrap()).collect();
        for p in &phones {
            // Inside the 24-hour window, so plain text may go.
            store.upsert_contact(p, "").await.unwrap();
            store.note_inbound(p, dropcheck_core::now_ms()).await.unwrap();
        }
        // Queues `n` messages "{prefix} {i}" over the five numbers, sends until none is left
        // to send, and checks each arrived exactly once.
        let deliver_once = |prefix: &'static str, n: usize| {
            let (store, m, phones, workers) = (store.clone(), m.clone(), phones.clone(), app.workers.clone());
            async move {
                let mut ids = vec![];
                for i in 0..n {
                    let body = format!("{prefix} {i}");
                    let out = Outgoing {
                        phone: &phones[i % phones.len()],
                        body: &body,
                        template: None,
                        vars: None,
                        media_url: None,
                        idempotency_key: None,
                        notification: false,
                        reference_id: None,
                    };
                    ids.push(store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap());
                }
                workers.drain_outbox().await.unwrap();
                let sent = m.lock().unwrap().sent.clone();
                for i in 0..n {
                    assert_eq!(sent.iter().filter(|(_, b)| *b == format!("{prefix} {i}")).count(), 1, "{prefix} {i}: exactly once");
                }
                for id in &ids {
                    let msg = store.message(*id).await.unwrap();
                    assert_eq!(msg.status, "sent", "{msg:?}");
                }
            }
        };

        deliver_once("outage message", 5).await;
        assert!(m.lock().unwrap().attempts >= 65, "the outage was met");

        // Half the calls fail.
        {
            let mut m = m.lock().unwrap();
            for k in 0..30 {
                let fail = match k {
                    2 | 14 | 26 => (429, Some(1), r#"{"code": 20429, "message": "Too Many Requests"}"#.to_string()),
                    k if k % 2 == 0 => (500, None, r#"{"code": 20500, "message": "Internal Server Error"}"#.to_string()),
                    _ => (RESET, None, String::new()),
                };
                m.script.push_back(fail);
                m.script.push_back((PASS, None, String::new()));
            }
        }
        deliver_once("flaky message", 60).await;
        assert_eq!(store.outbox_counts().await.unwrap().failed, 0);
    })
    .await;
}
