//! Operations (issue 15, item 5): `/metrics` in the Prometheus text format, readable with an
//! admin-scoped key, whose counters move with the traffic the test sends.

use crate::helpers::spawn;
use crate::http::BRIDGE;
use dropcheck_core::testing::on_each_backend;
use reqwest::StatusCode;
use std::collections::HashMap;

/// Parses the exposition strictly: every line a `# HELP`/`# TYPE`/`# UNIT` line, `# EOF` (last),
/// or `name{label="value",…} number`; returns the samples by `name{labels}`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let kind = meta.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "a comment that is not metadata: {line}");
            if kind == "TYPE" {
                let t = meta.rsplit(' ').next().unwrap();
                assert!(["counter", "gauge", "histogram", "info", "summary", "unknown"].contains(&t), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "a metric name: {name}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "labels: {labels}");
            for pair in labels[1..labels.len() - 1].split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("a label: {pair} in {line}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "a label name: {k}");
                assert!(!v.trim_end_matches('"').contains('\n'));
            }
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("a number: {value} in {line}")),
        };
        assert!(samples.insert(series.to_string(), v).is_none(), "a series twice: {series}");
    }
    samples
}

async fn scrape(app: &crate::helpers::TestApp, key: Option<&str>) -> (StatusCode, String) {
    let mut req = app.client.get(format!("{}/metrics", app.base));
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    }
    (status, res.text().await.unwrap())
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_with_the_traffic() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let (s, _) = scrape(&app, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "a key is needed");
        let reader = "dc_reader_key_metrics_1";
        app.store.create_api_key("reader", "dc_reade", &dropcheck_core::auth::hash_api_key(reader), "read").await.unwrap();
        let (s, _) = scrape(&app, Some(reader)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "an admin-scoped key");
        let (s, text) = scrape(&app, Some(BRIDGE)).await;
        assert_eq!(s, StatusCode::OK);
        let before = parse(&text);
        assert_eq!(get(&before, "dropcheck_inbox_backlog"), 0.0);

        // Five signed webhooks (a contractor's drop number and texts) and one with a bad signature.
        let post = |sid: String, body: &str, good: bool| {
            let params: Vec<(String, String)> =
                [("MessageSid", sid.as_str()), ("From", "whatsapp:+27640412391"), ("Body", body), ("NumMedia", "0")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            let token = if good { "sandbox-test-token" } else { "a-wrong-token" };
            let sig = dropcheck_core::providers::twilio_signature(token, "http://127.0.0.1/webhooks/twilio", &params);
            app.client.post(format!("{}/webhooks/twilio", app.base)).header("X-Twilio-Signature", sig).form(&params).send()
        };
        for i in 0..5 {
            let body = if i == 0 { "DR12345678" } else { "/status" };
            assert_eq!(post(format!("SMmetrics{i}"), body, true).await.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(post("SMmetricsbad".into(), "x", false).await.unwrap().status(), StatusCode::FORBIDDEN);
        let (_, text) = scrape(&app, Some(BRIDGE)).await;
        let waiting = parse(&text);
        assert_eq!(get(&waiting, "dropcheck_inbox_backlog"), 5.0, "stored, not processed yet");
        assert!(get(&waiting, "dropcheck_inbox_oldest_pending_age_seconds") >= 0.0);
        app.drain().await;

        let (_, text) = scrape(&app, Some(BRIDGE)).await;
        let after = parse(&text);
        let delta = |series: &str| get(&after, series) - get(&before, series);
        assert_eq!(delta(r#"dropcheck_webhook_requests_total{provider="sandbox",outcome="accepted"}"#), 5.0, "{text}");
        assert_eq!(delta(r#"dropcheck_webhook_requests_total{provider="sandbox",outcome="refused"}"#), 1.0);
        assert_eq!(delta(r#"dropcheck_signature_refusals_total{provider="sandbox"}"#), 1.0);
        assert_eq!(get(&after, "dropcheck_inbox_backlog"), 0.0, "processed");
        assert_eq!(delta("dropcheck_event_processing_seconds_count"), 5.0, "each event timed");
        let replies =
            get(&after, r#"dropcheck_outbox_messages{status="sent"}"#) + get(&after, r#"dropcheck_outbox_messages{status="delivered"}"#);
        assert!(replies >= 5.0, "the replies went out: {replies}");
        assert_eq!(delta(r#"dropcheck_sends_total{provider="sandbox",result="sent",code=""}"#), replies, "each send counted");
    })
    .await;
}
