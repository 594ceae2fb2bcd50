//! The server over real HTTP: the JSON API with its error codes, sign-in, sessions, CSRF and
//! admin gating. Every scenario runs on SQLite and on PostgreSQL (see dropcheck_core::testing).

use dropcheck::config::{ProviderConfig, RetryPolicy};
use dropcheck::{Application, Config};
use dropcheck_core::domain::{Email, Role, DEFAULT_DROP_PATTERN};
use dropcheck_core::store::Store;
use dropcheck_core::testing::on_each_backend;
use leptos::prelude::LeptosOptions;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

const BRIDGE: &str = "test-bridge-key-0123456789";

struct TestApp {
    base: String,
    store: Store,
    /// Keeps cookies, follows no redirects.
    client: reqwest::Client,
}

async fn spawn(store: Store) -> TestApp {
    let data = tempfile::tempdir().unwrap().keep();
    let config = Config {
        data_dir: data,
        database_url: None,
        public_url: "http://127.0.0.1".into(),
        bridge_api_key: Some(BRIDGE.into()),
        site_addr: "127.0.0.1:0".parse().unwrap(),
        provider: ProviderConfig::Sandbox { signing_token: "sandbox-test-token".into() },
        retry: RetryPolicy { base_ms: 10, cap_ms: 100, max_attempts: 3 },
        send_rate: 80,
        max_media_bytes: 16 << 20,
        lease_ms: 60_000,
    };
    let opts = LeptosOptions::builder().output_name("dropcheck").site_root("target/site").build();
    let app = Application::build_with_store(config, opts, store.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { base, store, client }
}

impl TestApp {
    async fn api(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        if let Some(b) = body {
            req = req.header(header::CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }

    /// A plain HTML form post, as a browser without JavaScript sends it.
    async fn form(&self, path: &str, fields: &[(&str, &str)], origin: bool) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).header(header::ACCEPT, "text/html").form(fields);
        if origin {
            req = req.header(header::ORIGIN, self.base.clone());
        }
        req.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    async fn seed_project(&self) {
        self.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn health_and_db_test_report_the_backend() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let (s, v) = app.api("GET", "/health", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["success"], true);
        let (s, v) = app.api("GET", "/db/test", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["success"], true);
        assert_eq!(v["database"], app.store.backend());
    })
    .await;
}

#[tokio::test]
async fn submit_installation_creates_once_and_rejects_bad_input_with_codes() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let good = r#"{"drop_number":"dr12345678","contractor_number":"+27 64 041 2391","project_name":"velo test"}"#;

        let (s, v) = app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(good)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["success"].as_bool(), v["action"].as_str(), v["drop_number"].as_str()),
            (Some(true), Some("created"), Some("DR12345678"))
        );
        let (s, v) = app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(good)).await;
        assert_eq!((s, v["action"].as_str()), (StatusCode::OK, Some("exists")));

        let cases: &[(Option<&str>, &str, StatusCode, &str)] = &[
            (None, good, StatusCode::UNAUTHORIZED, "missing_api_key"),
            (Some("wrong-key-wrong-key"), good, StatusCode::UNAUTHORIZED, "invalid_api_key"),
            (Some(BRIDGE), r#"{"drop_number": "DR1"#, StatusCode::BAD_REQUEST, "malformed_json"),
            (Some(BRIDGE), r#"{"drop_number": 5}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            (
                Some(BRIDGE),
                r#"{"drop_number":"XX99","contractor_number":"+27640412391","project_name":"Velo Test"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_drop_number",
            ),
            (
                Some(BRIDGE),
                r#"{"drop_number":"DR00000001","contractor_number":"12","project_name":"Velo Test"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_phone",
            ),
            (
                Some(BRIDGE),
                r#"{"drop_number":"DR00000001","contractor_number":"+27640412391","project_name":"Nope"}"#,
                StatusCode::NOT_FOUND,
                "project_not_found",
            ),
        ];
        for (key, body, status, code) in cases {
            let (s, v) = app.api("POST", "/api/submit-installation", *key, Some(body)).await;
            assert_eq!((s, v["error"].as_str()), (*status, Some(*code)), "{body}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        // A revoked key is refused as revoked; a key without the scope is refused as such.
        let hash = dropcheck_core::auth::hash_api_key("dc_revoked_key_1234");
        let id = app.store.create_api_key("old", "dc_revok", &hash, "submit").await.unwrap();
        app.store.revoke_api_key(id).await.unwrap();
        let (s, v) = app.api("POST", "/api/submit-installation", Some("dc_revoked_key_1234"), Some(good)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("revoked_api_key")));
        app.store.create_api_key("reader", "dc_reade", &dropcheck_core::auth::hash_api_key("dc_reader_key_1234"), "read").await.unwrap();
        let (s, v) = app.api("POST", "/api/submit-installation", Some("dc_reader_key_1234"), Some(good)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
        let (s, _) = app.api("GET", "/api/v1/drops", Some("dc_reader_key_1234"), None).await;
        assert_eq!(s, StatusCode::OK);
        // Bearer works as well as X-API-Key.
        let res = app.client.get(format!("{}/api/v1/drops", app.base)).bearer_auth(BRIDGE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn the_review_api_runs_the_loop_and_refuses_what_the_lifecycle_forbids() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let body = r#"{"drop_number":"DR12345678","contractor_number":"+27640412391","project_name":"Velo Test"}"#;
        app.api("POST", "/api/submit-installation", Some(BRIDGE), Some(body)).await;

        let (s, v) = app.api("GET", "/api/v1/drops/dr12345678", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["status"], "unreviewed");
        assert_eq!(v["contractor"]["phone"], "+27640412391");
        assert_eq!(v["steps"].as_array().unwrap().len(), 12);
        assert_eq!(v["steps"][2]["name"], "Cable entry outside");
        for k in ["drop_number", "project", "round", "history"] {
            assert!(v.get(k).is_some(), "missing key {k}");
        }

        // Bad verdicts and actions are 422 and change nothing.
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(r#"{"steps":{"3":{"verdict":"awful"}}}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_verdict")));
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(r#"{"steps":{"99":{"verdict":"ok"}}}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_step")));
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(r#"{"action":"explode"}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_action")));

        let review = json!({"steps": {"3": {"verdict": "missing", "reason": "no_photo"}, "7": {"verdict": "retake", "note": "blurry meter"}}, "action": "incomplete"});
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(&review.to_string())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["steps"][6]["note"], "blurry meter");

        // Approving an incomplete drop is a 409 with the reason, and leaves verdicts alone.
        let (s, v) = app.api("POST", "/api/v1/drops/DR12345678/review", Some(BRIDGE), Some(r#"{"steps":{"3":{"verdict":"ok"}},"action":"approve"}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        assert!(v["message"].as_str().unwrap().contains("Incomplete"));
        let (_, v) = app.api("GET", "/api/v1/drops/DR12345678", Some(BRIDGE), None).await;
        assert_eq!(v["steps"][2]["verdict"], "missing");

        let (s, v) = app.api("POST", "/api/resubmit", Some(BRIDGE), Some(r#"{"drop_number":"dr12345678"}"#)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["success"].as_bool(), v["drop_number"].as_str()), (Some(true), Some("DR12345678")));
        let (s, v) = app.api("POST", "/api/resubmit", Some(BRIDGE), Some(r#"{"drop_number":"DR12345678"}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        let (s, v) = app.api("POST", "/api/resubmit", Some(BRIDGE), Some(r#"{"drop_number":"DR99999999"}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("drop_not_found")));

        let (s, v) = app.api("GET", "/api/v1/drops?status=resubmitted", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["drops"][0]["drop_number"], "DR12345678");
        assert_eq!(v["drops"][0]["round"], 2);
        assert!(v.get("next_cursor").is_some());
        let (s, v) = app.api("GET", "/api/v1/drops?status=sideways", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_status")));
        let (s, v) = app.api("GET", "/api/v1/drops?cursor=zzz", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cursor")));
        let (s, v) = app.api("GET", "/api/v1/drops?project=Nope", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("project_not_found")));
        let (s, v) = app.api("GET", "/api/v1/drops/DR404", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("drop_not_found")));
        let (s, v) = app.api("GET", "/api/v1/drops/..%2F..%2Fetc", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_drop_number")));
    })
    .await;
}

#[tokio::test]
async fn first_run_setup_sign_in_csrf_and_admin_gating() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;

        // A fresh install sends everyone to /setup.
        let r = app.get("/").await;
        assert!(r.status().is_redirection());
        assert_eq!(location(&r), "/login");
        assert_eq!(location(&app.get("/login").await), "/setup");
        assert_eq!(app.get("/setup").await.status(), StatusCode::OK);

        // State changes from another site are refused (no Origin, no Sec-Fetch-Site).
        let r = app
            .form("/rpc/setup", &[("email", "ann@example.com"), ("password", "correct horse"), ("confirm", "correct horse")], false)
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app
            .client
            .post(format!("{}/rpc/setup", app.base))
            .header("sec-fetch-site", "cross-site")
            .header(header::ORIGIN, app.base.clone())
            .form(&[("email", "ann@example.com"), ("password", "correct horse"), ("confirm", "correct horse")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.store.user_count().await.unwrap(), 0);

        let r = app
            .form("/rpc/setup", &[("email", "ann@example.com"), ("password", "correct horse"), ("confirm", "correct horse")], true)
            .await;
        assert!(r.status().is_redirection(), "{}", r.status());
        assert_eq!(location(&r), "/");
        let cookie = r.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert_eq!(app.get("/").await.status(), StatusCode::OK, "signed in after setup");
        // Setup works once.
        assert_eq!(location(&app.get("/setup").await), "/");

        let bob = Email::parse("bob@example.com").unwrap();
        let hash = dropcheck_core::auth::hash_password("reviewer pass".into()).await.unwrap();
        app.store.create_user(&bob, &hash, Role::Reviewer).await.unwrap();

        // A reviewer signs in with a new session id and is refused admin pages.
        let reviewer = spawn_client();
        let r = reviewer
            .post(format!("{}/rpc/login", app.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, app.base.clone())
            .form(&[("email", "bob@example.com"), ("password", "reviewer pass")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        assert_eq!(location(&r), "/");
        let r = reviewer.get(format!("{}/settings/users", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("Admins only"));
        let r = reviewer.post(format!("{}/rpc/users_data", app.base)).header(header::ORIGIN, app.base.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.get("/settings/users").await.status(), StatusCode::OK, "admins may");

        // Wrong passwords: refused, and after five the account is locked for a while.
        let stranger = spawn_client();
        for _ in 0..5 {
            let r = stranger
                .post(format!("{}/rpc/login", app.base))
                .header(header::ACCEPT, "text/html")
                .header(header::ORIGIN, app.base.clone())
                .header(header::REFERER, format!("{}/login", app.base))
                .form(&[("email", "bob@example.com"), ("password", "guess")])
                .send()
                .await
                .unwrap();
            assert_eq!(form_error(&r, &app.base), "Wrong e-mail or password.");
        }
        let r = stranger
            .post(format!("{}/rpc/login", app.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, app.base.clone())
            .header(header::REFERER, format!("{}/login", app.base))
            .form(&[("email", "bob@example.com"), ("password", "reviewer pass")])
            .send()
            .await
            .unwrap();
        assert!(form_error(&r, &app.base).starts_with("Too many failed sign-ins"), "locked even with the right password");
        let r = stranger.get(format!("{}/", app.base)).send().await.unwrap();
        assert_eq!(location(&r), "/login");
    })
    .await;
}

/// The error a no-JavaScript form post carries back: a redirect to the form's page with the
/// encoded error in `__err` (what the page then shows).
fn form_error(r: &reqwest::Response, base: &str) -> String {
    use base64::Engine;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(r);
    assert!(loc.starts_with(&format!("{base}/login?")), "{loc}");
    let url = reqwest::Url::parse(&loc).unwrap();
    let err = url.query_pairs().find(|(k, _)| k == "__err").map(|(_, v)| v.to_string()).unwrap_or_default();
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(err).unwrap()).unwrap();
    text.split_once('|').map(|(_, m)| m.to_string()).unwrap_or(text)
}

fn spawn_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
