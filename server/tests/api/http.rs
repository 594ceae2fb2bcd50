//! The server over real HTTP: the JSON API with its error codes, sign-in, sessions, CSRF and
//! admin gating. Every scenario runs on SQLite and on PostgreSQL (see dropcheck_core::testing).

use crate::helpers::{client as spawn_client, spawn, spawn_app, TestApp};
use dropcheck::Config;
use dropcheck_core::domain::{Email, Role, DEFAULT_DROP_PATTERN};
use dropcheck_core::store::Store;
use dropcheck_core::testing::on_each_backend;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

pub(crate) const BRIDGE: &str = "test-bridge-key-0123456789";

async fn spawn_with_env(store: Store, provider_env: dropcheck_core::integrations::ProviderEnv) -> TestApp {
    // Usually nothing from the environment: the provider is chosen under Settings → Integrations.
    spawn_app(store, Config { provider_env, ..Config::for_tests() }).await
}

impl TestApp {
    pub(crate) async fn api(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
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
    pub(crate) async fn form(&self, path: &str, fields: &[(&str, &str)], origin: bool) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).header(header::ACCEPT, "text/html").form(fields);
        if origin {
            req = req.header(header::ORIGIN, self.base.clone());
        }
        req.send().await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    pub(crate) async fn seed_project(&self) {
        self.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    }
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
            // The input is checked before the project is looked up or created.
            (
                Some(BRIDGE),
                r#"{"drop_number":"XX99","contractor_number":"+27640412391","project_name":"Nope"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_drop_number",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        // A fresh install: the empty list says how the first drop arrives, and Review next
        // with nothing waiting says so.
        assert!(app.get("/").await.text().await.unwrap().contains("No drops yet. A drop opens when a contractor sends its number"));
        let r = app.get("/next").await;
        assert_eq!(location(&r), "/?status=unreviewed&waiting=none");
        assert!(app
            .get("/?status=unreviewed&waiting=none")
            .await
            .text()
            .await
            .unwrap()
            .contains("Nothing is waiting for review right now"));
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
        // The server function's own check, with its stable code for the page.
        let body: Value = r.json().await.unwrap();
        assert_eq!((body["code"].as_str(), body["message"].as_str()), (Some("forbidden"), Some("Only admins can do that.")), "{body}");
        assert_eq!(app.get("/settings/users").await.status(), StatusCode::OK, "admins may");

        // Wrong passwords: refused, and after five the account is locked for a while.
        let stranger = spawn_client();
        let mut back = String::new();
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
            assert_eq!(carried(&location(&r)).unwrap()["code"], "wrong_credentials");
            back = location(&r);
        }
        // The page the browser is sent back to shows the error with its code.
        let page = stranger.get(&back).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(r#"data-code="wrong_credentials""#) && page.contains("Wrong e-mail or password."), "{page}");
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
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(r);
    assert!(loc.starts_with(&format!("{base}/login?")), "{loc}");
    carried_error(&loc).unwrap_or_default()
}

/// The message in a redirect's `__err`, if it carries one.
fn carried_error(location: &str) -> Option<String> {
    carried(location).map(|e| e["message"].as_str().unwrap().to_string())
}

/// The error a redirect's `__err` carries: `{code, message}`, as the page shows it.
pub(crate) fn carried(location: &str) -> Option<Value> {
    use base64::Engine;
    let url = reqwest::Url::parse(location).unwrap();
    let err = url.query_pairs().find(|(k, _)| k == "__err").map(|(_, v)| v.to_string())?;
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(err).unwrap()).unwrap();
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("__err is the error as JSON ({e}): {text}")))
}

/// Signs the test client in as the first admin (setup through the no-JavaScript form).
pub(crate) async fn sign_in_first_admin(app: &TestApp) {
    let r =
        app.form("/rpc/setup", &[("email", "ann@example.com"), ("password", "correct horse"), ("confirm", "correct horse")], true).await;
    assert!(r.status().is_redirection(), "{}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_checked_on_every_save_and_mark_incomplete_uses_the_stored_one() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        let reader = "dc_reader_key_1234";
        app.store.create_api_key("reader", "dc_reade", &dropcheck_core::auth::hash_api_key(reader), "read").await.unwrap();

        let (s, v) = app.api("GET", "/api/v1/templates", Some(reader), None).await;
        assert_eq!(s, StatusCode::OK);
        let feedback = v["templates"].as_array().unwrap().iter().find(|t| t["name"] == "drop_feedback").unwrap().clone();
        assert_eq!((feedback["built_in"].as_bool(), feedback["enabled"].as_bool()), (Some(true), Some(true)));
        assert_eq!(feedback["sample_vars"]["drop_number"], "DR12345678");
        let (s, v) = app.api("GET", "/api/v1/templates/delivery_reminder", Some(reader), None).await;
        assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("delivery_reminder")), "the predecessor's notifications are built in");
        let (s, v) = app.api("GET", "/api/v1/templates/nope", Some(reader), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("template_not_found")));

        // Writing needs the admin scope.
        let visit = r#"{"name": "site_visit", "body": "Hi {{ name }}, we visit on {{ day }}.", "sample_vars": {"name": "Thabo", "day": "Monday"}}"#;
        let (s, v) = app.api("POST", "/api/v1/templates", Some(reader), Some(visit)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
        // Broken templates are refused with what is wrong, and not stored.
        for (body, code) in [
            (r#"{"name": "site_visit", "body": "Hi {{ name }", "sample_vars": {"name": "x"}}"#, "template_syntax"),
            (r#"{"name": "site_visit", "body": "Hi {{ nmae }}", "sample_vars": {"name": "x"}}"#, "unknown_variable"),
            (r#"{"name": "site_visit", "body": "Hi {% for x in %}", "sample_vars": {}}"#, "template_syntax"),
            (r#"{"name": "Site Visit", "body": "Hi"}"#, "invalid_name"),
            (r#"{"name": "site_visit", "body": "Hi", "provider_template": {"twilio": {"content_sid": "nope"}}}"#, "invalid_provider_template"),
            (r#"{"name": "site_visit", "body": "Hi", "sample_vars": [1]}"#, "invalid_sample"),
        ] {
            let (s, v) = app.api("POST", "/api/v1/templates", Some(BRIDGE), Some(body)).await;
            assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{body}: {v}");
        }
        let (s, _) = app.api("GET", "/api/v1/templates/site_visit", Some(reader), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing broken was saved");
        let (s, v) = app.api("POST", "/api/v1/templates", Some(BRIDGE), Some(visit)).await;
        assert_eq!((s, v["name"].as_str(), v["built_in"].as_bool()), (StatusCode::CREATED, Some("site_visit"), Some(false)));
        let (s, v) = app.api("POST", "/api/v1/templates", Some(BRIDGE), Some(visit)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("template_exists")));

        // An admin rewrites the feedback; the next "Mark incomplete" sends the new text.
        let sample = feedback["sample_vars"].to_string();
        let edit = json!({"body": "Fix {{ drop_number }}: {% for s in steps %}step {{ s.number }} {% endfor %}", "sample_vars": serde_json::from_str::<Value>(&sample).unwrap()});
        let (s, v) = app.api("PUT", "/api/v1/templates/drop_feedback", Some(BRIDGE), Some(&edit.to_string())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let bad = json!({"body": "Fix {{ drop_numbr }}"});
        let (s, v) = app.api("PUT", "/api/v1/templates/drop_feedback", Some(BRIDGE), Some(&bad.to_string())).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_variable")));
        let project = app.store.project_by_name("Velo Test").await.unwrap().unwrap();
        let dn = dropcheck_core::domain::DropNumber::parse("DR12345678").unwrap();
        let phone = dropcheck_core::domain::Phone::parse("+27640412391").unwrap();
        let qa = dropcheck_core::store::ActorRef::system("qa@example.com");
        app.store.create_drop(&project, &dn, Some(&phone), dropcheck_core::domain::DropStatus::Unreviewed, &qa).await.unwrap();
        let missing = |n: i64| dropcheck_core::store::StepVerdict {
            step: dropcheck_core::domain::StepNo::new(n).unwrap(),
            verdict: dropcheck_core::domain::Verdict::Missing,
            reason: Some("no_photo".into()),
            note: String::new(),
        };
        app.store.set_verdicts(&dn, &[missing(3), missing(7)], &qa).await.unwrap();
        let body = app.store.mark_incomplete(&dn, &qa).await.unwrap();
        assert_eq!(body, "Fix DR12345678: step 3 step 7");

        // A revoked key stops working.
        let id = app.store.api_keys().await.unwrap().into_iter().find(|k| k.name == "reader").unwrap().api_key_id;
        app.store.revoke_api_key(id).await.unwrap();
        let (s, v) = app.api("GET", "/api/v1/templates", Some(reader), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("revoked_api_key")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_links_by_a_verify_message_and_codes_expire_lock_and_work_once() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        for (email, role) in [("ann@example.com", Role::Admin), ("bob@example.com", Role::Reviewer)] {
            let hash = dropcheck_core::auth::hash_password("a long password".into()).await.unwrap();
            app.store.create_user(&Email::parse(email).unwrap(), &hash, role).await.unwrap();
        }
        let call = |path: &'static str, body: Value| {
            let app = &app;
            async move { app.api("POST", &format!("/api/integrations/whatsapp/{path}"), Some(BRIDGE), Some(&body.to_string())).await }
        };
        let (s, v) = call("link", json!({"phone": "12345", "user": "ann@example.com"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_phone")));
        let (s, v) = call("link", json!({"phone": "+27 64 041 2391"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("missing_user")));
        let (s, v) = call("link", json!({"phone": "+27 64 041 2391", "user": "ann@example.com"})).await;
        assert_eq!((s, v["phone"].as_str()), (StatusCode::OK, Some("+27640412391")), "normalised to E.164");
        let code = v["code"].as_str().unwrap().to_string();
        assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()));
        assert!(v["expires_at"].as_str().unwrap().contains('T'));
        let wrong = if code == "000000" { "111111" } else { "000000" };

        // Five wrong codes; then even the right one is refused.
        for left in (0..5).rev() {
            let (s, v) = call("verify", json!({"phone": "+27640412391", "code": wrong, "user": "ann@example.com"})).await;
            assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_code")));
            assert!(v["message"].as_str().unwrap().contains(&format!("{left} attempt")), "{v}");
        }
        let (s, v) = call("verify", json!({"phone": "+27640412391", "code": code, "user": "ann@example.com"})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("code_locked")),
            "the sixth attempt is refused even with the right code"
        );

        // A new code, sent from the phone itself as "VERIFY 123456", links the number.
        let (_, v) = call("link", json!({"phone": "+27640412391", "user": "ann@example.com"})).await;
        let code = v["code"].as_str().unwrap().to_string();
        let ann = app.store.user_by_email(&Email::parse("ann@example.com").unwrap()).await.unwrap().unwrap();
        let params: Vec<(String, String)> =
            [("MessageSid", "SMverify1"), ("From", "whatsapp:+27640412391"), ("Body", &format!("verify {code}")), ("NumMedia", "0")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let sig = dropcheck_core::providers::twilio_signature("sandbox-test-token", "http://127.0.0.1/webhooks/twilio", &params);
        let r =
            app.client.post(format!("{}/webhooks/twilio", app.base)).header("X-Twilio-Signature", sig).form(&params).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // The event is stored before the 200; the inbox processes it (the link and the reply
        // to the phone are its effects).
        app.drain_inbox().await;
        assert_eq!(app.store.event_counts().await.unwrap(), (0, 1, 0), "the VERIFY event is processed");
        let linked = app.store.phone_link(ann.user_id).await.unwrap().filter(|l| l.is_verified());
        assert_eq!(linked.expect("linked by the VERIFY message").phone, "+27640412391");
        let f = dropcheck_core::outbox::MessageFilter { direction: Some(dropcheck_core::domain::Direction::Out), ..Default::default() };
        let (out, _) = app.store.list_messages(&f, None, 10).await.unwrap();
        assert!(out.iter().any(|m| m.body.contains("now linked to ann@example.com")), "the phone is told");

        // The code worked once; the number belongs to one account.
        let (s, v) = call("verify", json!({"phone": "+27640412391", "code": code, "user": "ann@example.com"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("code_used")));
        let (s, v) = call("link", json!({"phone": "+27640412391", "user": "bob@example.com"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("phone_linked_elsewhere")));

        // A code older than ten minutes has expired.
        let (_, v) = call("link", json!({"phone": "+27640412392", "user": "bob@example.com"})).await;
        let bob_code = v["code"].as_str().unwrap().to_string();
        let bob_phone = dropcheck_core::domain::Phone::parse("+27640412392").unwrap();
        let later = dropcheck_core::now_ms() + dropcheck_core::linking::CODE_TTL_MS + 1000;
        let outcome = app.store.verify_phone_link(&bob_phone, &bob_code, None, later).await.unwrap();
        assert_eq!(outcome, dropcheck_core::linking::VerifyOutcome::Expired);
        let (s, v) = call("verify", json!({"phone": "+27640412392", "code": "12345", "user": "bob@example.com"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_code")));

        let (s, _) = call("unlink", json!({"phone": "+27640412391", "user": "ann@example.com"})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = call("unlink", json!({"phone": "+27640412391", "user": "ann@example.com"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_linked")));

        // A reviewer's key cannot act for users; no key and no session is 401.
        app.store.create_api_key("sub", "dc_subbb", &dropcheck_core::auth::hash_api_key("dc_submit_key_1234"), "submit").await.unwrap();
        let (s, v) = app
            .api(
                "POST",
                "/api/integrations/whatsapp/link",
                Some("dc_submit_key_1234"),
                Some(r#"{"phone": "+27640412391", "user": "bob@example.com"}"#),
            )
            .await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
        let r = app
            .client
            .post(format!("{}/api/integrations/whatsapp/link", app.base))
            .header(header::ORIGIN, app.base.clone())
            .json(&json!({"phone": "+27640412391"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (s, v) = app.api("GET", "/api/integrations/whatsapp/webhook", None, None).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok", "service": "whatsapp-webhook", "provider": "sandbox"})));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_pages_for_templates_keys_and_linking_work_without_javascript() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        sign_in_first_admin(&app).await;

        // Templates: the editor shows the feedback template and its rendered sample.
        let r = app.get("/settings/templates").await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(html.contains("drop_feedback") && html.contains("Step 3 – Cable entry outside"), "preview rendered on the server");
        // A broken edit comes back as an error and is not stored.
        let r = app
            .client
            .post(format!("{}/rpc/save_template", app.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, app.base.clone())
            .header(header::REFERER, format!("{}/settings/templates", app.base))
            .form(&[("name", "help"), ("body", "{{ oops"), ("sample_vars", "{}"), ("enabled", "on")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert!(location(&r).contains("__err="), "{}", location(&r));
        assert!(app.store.template("help").await.unwrap().body.starts_with("Dropcheck commands"));
        let r = app.form("/rpc/save_template", &[("name", "help"), ("body", "Send DR… then photos."), ("sample_vars", "{}")], true).await;
        assert!(r.status().is_redirection());
        let help = app.store.template("help").await.unwrap();
        assert_eq!((help.body.as_str(), help.enabled), ("Send DR… then photos.", false), "saved, and unchecked means disabled");

        // API keys: created, shown once, then only its prefix.
        let r = app.form("/rpc/create_api_key", &[("name", "planning"), ("scope_read", "on"), ("scope_send", "on")], true).await;
        assert!(r.status().is_redirection());
        let html = app.get("/settings/api-keys").await.text().await.unwrap();
        let start = html.find("dc_").expect("the new key is shown");
        let key: String = html[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        assert_eq!(key.len(), 43, "{key}");
        assert!(!app.get("/settings/api-keys").await.text().await.unwrap().contains(&key), "shown once");
        let (s, _) = app.api("GET", "/api/v1/messages", Some(&key), None).await;
        assert_eq!(s, StatusCode::OK, "the key works");
        let k = app.store.api_keys().await.unwrap().remove(0);
        assert_eq!((k.scopes.as_str(), k.last_used_at.is_some()), ("send read", true));
        let r = app.form("/rpc/revoke_api_key", &[("id", &k.api_key_id.to_string())], true).await;
        assert!(r.status().is_redirection());
        let (s, _) = app.api("GET", "/api/v1/messages", Some(&key), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Phone linking through the page: the code is shown once.
        let r = app
            .client
            .post(format!("{}/rpc/start_link", app.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, app.base.clone())
            .header(header::REFERER, format!("{}/settings/integrations", app.base))
            .form(&[("phone", "0640412391")])
            .send()
            .await
            .unwrap();
        let loc = location(&r);
        assert!(loc.contains("__err="), "a number without its country code is refused: {loc}");
        let r = app.form("/rpc/start_link", &[("phone", "+27640412391")], true).await;
        assert!(r.status().is_redirection());
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains("VERIFY ") && html.contains("+27640412391") && html.contains("/webhooks/twilio"), "code and webhook URLs");

        // A reviewer may link a phone but not edit templates or keys.
        let bob = Email::parse("bob@example.com").unwrap();
        let hash = dropcheck_core::auth::hash_password("reviewer pass".into()).await.unwrap();
        app.store.create_user(&bob, &hash, Role::Reviewer).await.unwrap();
        let reviewer = spawn_client();
        reviewer
            .post(format!("{}/rpc/login", app.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, app.base.clone())
            .form(&[("email", "bob@example.com"), ("password", "reviewer pass")])
            .send()
            .await
            .unwrap();
        assert_eq!(reviewer.get(format!("{}/settings/integrations", app.base)).send().await.unwrap().status(), StatusCode::OK);
        for page in ["/settings/templates", "/settings/api-keys"] {
            assert_eq!(reviewer.get(format!("{}{page}", app.base)).send().await.unwrap().status(), StatusCode::FORBIDDEN, "{page}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_retry_with_the_same_idempotency_key_queues_one_message() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        // A client that retries with the same Idempotency-Key gets the message queued the
        // first time; nothing is queued twice. Another key is another message.
        let keyed = json!({"phone": "+27640412399", "message_type": "payment_confirmation",
            "context": {"customer_name": "John", "amount": "R 200", "reference": "invoice 42"}});
        let with_key = |key: &'static str| {
            let (app, body) = (&app, keyed.to_string());
            async move {
                let r = app
                    .client
                    .post(format!("{}/api/notifications/send-message", app.base))
                    .header("X-API-Key", BRIDGE)
                    .header("Idempotency-Key", key)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let s = r.status();
                (s, r.json::<Value>().await.unwrap())
            }
        };
        let outbound = |app: &TestApp| {
            let store = app.store.clone();
            async move {
                let c = store.outbox_counts().await.unwrap();
                c.queued + c.sending + c.sent + c.delivered + c.read + c.failed
            }
        };
        let before = outbound(&app).await;
        let (s1, first) = with_key("invoice-42-payment").await;
        let (s2, again) = with_key("invoice-42-payment").await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{first} {again}");
        assert_eq!(first["id"], again["id"], "the retry answers with the first message");
        let after = outbound(&app).await;
        assert_eq!(after, before + 1, "one message queued for two requests");
        let (_, other) = with_key("invoice-43-payment").await;
        assert_ne!(other["id"], first["id"]);
        let (s, v) = with_key("not a key").await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_idempotency_key")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifications_api_sends_by_message_type_and_honours_contact_preferences() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let (s, v) = app.api("GET", "/api/notifications/health", None, None).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("healthy")));
        assert!(v["uptime_seconds"].as_f64().is_some());

        let post = |path: &'static str, body: Value| {
            let app = &app;
            async move { app.api("POST", path, Some(BRIDGE), Some(&body.to_string())).await }
        };
        let reminder = json!({"phone": "+27640412391", "message_type": "delivery_reminder",
            "context": {"delivery_date": "2026-02-01", "customer_name": "John Doe"}, "reference_id": "order_123", "immediate": true});
        let (s, v) = post("/api/notifications/send-message", reminder.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "delivered", "sent at once (the sandbox delivers)");
        assert_eq!(v["message_text"], "Reminder: your delivery is scheduled for 2026-02-01, John Doe.");
        assert_eq!((v["message_type"].as_str(), v["reference_id"].as_str()), (Some("delivery_reminder"), Some("order_123")));

        // Bad input says what is wrong.
        for (body, status, code) in [
            (
                json!({"phone": "+27640412391", "message_type": "delivery_reminder", "context": {}}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_variable",
            ),
            (json!({"phone": "+27640412391", "message_type": "nope"}), StatusCode::UNPROCESSABLE_ENTITY, "unknown_message_type"),
            (json!({"phone": "12", "message_type": "delivery_reminder"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone"),
            (
                json!({"phone": "+27640412391", "message_type": "delivery_reminder", "context": [1]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_context",
            ),
        ] {
            let (s, v) = post("/api/notifications/send-message", body.clone()).await;
            assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{body}");
        }

        // Queued without `immediate`: the sender delivers it.
        let payment = json!({"phone": "+27640412391", "message_type": "payment_confirmation",
            "context": {"customer_name": "John", "amount": "R 200", "reference": "invoice 42"}});
        let (s, v) = post("/api/notifications/send-message", payment.clone()).await;
        // Queued, not sent in the request.
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["status"].as_str(), Some("queued"), "{v}");
        let id: dropcheck_core::ids::MessageId = v["id"].as_str().unwrap().parse().unwrap();
        app.drain_outbox().await;
        assert_eq!(app.store.message(id).await.unwrap().status, "delivered");

        // The contact mutes reminders: refused at the API, and a reminder already queued fails at the sender.
        let (s, v) = app
            .api("PUT", "/api/v1/contacts/+27640412391", Some(BRIDGE), Some(r#"{"muted_types": ["delivery_reminder"], "name": "John"}"#))
            .await;
        assert_eq!((s, v["muted_types"].clone()), (StatusCode::OK, json!(["delivery_reminder"])));
        let (s, v) = app.api("PUT", "/api/v1/contacts/+27640412391", Some(BRIDGE), Some(r#"{"muted_types": ["no_such_type"]}"#)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_message_type")));
        let (s, v) = post("/api/notifications/send-message", reminder.clone()).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("muted")));
        let phone = dropcheck_core::domain::Phone::parse("+27640412391").unwrap();
        let vars = dropcheck_core::minijinja::context! { delivery_date => "2026-02-02" };
        let out = dropcheck_core::outbox::Outgoing {
            phone: &phone,
            body: "Reminder",
            template: Some("delivery_reminder"),
            vars: Some(&vars),
            media_url: None,
            idempotency_key: None,
            notification: false,
            reference_id: None,
        };
        let queued = app.store.queue_outbound(&out, dropcheck_core::now_ms()).await.unwrap();
        app.drain_outbox().await;
        assert_eq!(app.store.message(queued).await.unwrap().error_code.as_deref(), Some("muted"));
        let (s, v) = app.api("PUT", "/api/v1/contacts/+27640412391", Some(BRIDGE), Some(r#"{"opted_out": true}"#)).await;
        assert_eq!((s, v["opted_out"].as_bool()), (StatusCode::OK, Some(true)));
        let (s, v) = post("/api/notifications/send-message", payment).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("opted_out")));

        // History, statistics, the queue and resend.
        let (s, v) = app.api("GET", "/api/notifications/history?phone=27640412391&status=delivered&days=7", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let types: Vec<&str> = v["messages"].as_array().unwrap().iter().map(|m| m["message_type"].as_str().unwrap()).collect();
        assert_eq!(types, vec!["payment_confirmation", "delivery_reminder"]);
        let (s, v) = app.api("GET", "/api/notifications/statistics?days=30", Some(BRIDGE), None).await;
        assert_eq!(s, StatusCode::OK);
        let st = &v["statistics"];
        assert_eq!(
            (st["total"].as_i64(), st["by_status"]["delivered"].as_i64(), st["by_status"]["failed"].as_i64()),
            (Some(3), Some(2), Some(1))
        );
        assert_eq!(st["by_message_type"]["delivery_reminder"]["failed"].as_i64(), Some(1));
        assert!((st["failure_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        let (s, v) = app.api("GET", "/api/notifications/statistics?days=0", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_days")));
        app.store.create_api_key("reader", "dc_reade", &dropcheck_core::auth::hash_api_key("dc_reader_key_1234"), "read").await.unwrap();
        let (s, _) = app.api("POST", "/api/notifications/process-queue", Some("dc_reader_key_1234"), Some("{}")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = post("/api/notifications/process-queue", json!({})).await;
        assert_eq!((s, v["success"].as_bool()), (StatusCode::OK, Some(true)));
        let (s, v) = post("/api/notifications/resend/1", json!({})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("not_resendable")), "a delivered message is not resent");
        let (s, v) = app.api("POST", &format!("/api/notifications/resend/{queued}"), Some(BRIDGE), Some("{}")).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("queued")), "a failed one is");
        let (s, v) = app.api("GET", "/api/notifications/templates", Some("dc_reader_key_1234"), None).await;
        assert!(s == StatusCode::OK && v["templates"].as_array().unwrap().len() > 20);

        // Contacts.
        let (s, v) = app.api("GET", "/api/v1/contacts", Some("dc_reader_key_1234"), None).await;
        assert_eq!((s, v["contacts"][0]["name"].as_str()), (StatusCode::OK, Some("John")));
        let (s, v) = post("/api/v1/contacts", json!({"phone": "+27640412391"})).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("contact_exists")));
        let (s, v) = post("/api/v1/contacts", json!({"phone": "+27 64 000 0001", "name": "Sipho"})).await;
        assert_eq!((s, v["phone"].as_str()), (StatusCode::CREATED, Some("+27640000001")));
        let (s, v) = app.api("GET", "/api/v1/contacts/+27640000009", Some(BRIDGE), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("contact_not_found")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_deliveries_reviews_first_time_right_and_fix_times_and_render_as_svg() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.seed_project().await;
        sign_in_first_admin(&app).await;
        let project = app.store.project_by_name("Velo Test").await.unwrap().unwrap();
        let qa = dropcheck_core::store::ActorRef::system("qa@example.com");
        let phone = dropcheck_core::domain::Phone::parse("+27640412391").unwrap();
        let dn = |s: &str| dropcheck_core::domain::DropNumber::parse(s).unwrap();
        // One drop approved at once, one approved after a round of feedback.
        for n in ["DR10000001", "DR10000002"] {
            app.store.create_drop(&project, &dn(n), Some(&phone), dropcheck_core::domain::DropStatus::Unreviewed, &qa).await.unwrap();
        }
        let all_ok: Vec<_> = (1..=12)
            .map(|n| dropcheck_core::store::StepVerdict { verdict: dropcheck_core::domain::Verdict::Ok, reason: None, ..missing_step(n) })
            .collect();
        app.store.set_verdicts(&dn("DR10000001"), &all_ok, &qa).await.unwrap();
        app.store.approve(&dn("DR10000001"), true, &qa).await.unwrap();
        app.store.set_verdicts(&dn("DR10000002"), &[missing_step(3)], &qa).await.unwrap();
        app.store.mark_incomplete(&dn("DR10000002"), &qa).await.unwrap();
        app.store.resubmit(&dn("DR10000002"), &qa).await.unwrap();
        app.store.set_verdicts(&dn("DR10000002"), &all_ok, &qa).await.unwrap();
        app.store.approve(&dn("DR10000002"), true, &qa).await.unwrap();
        // The feedback message is delivered by the sandbox.
        app.drain_outbox().await;

        let s = app.store.stats(7, dropcheck_core::now_ms()).await.unwrap();
        assert_eq!(s.days.len(), 7);
        let today = s.days.last().unwrap();
        assert_eq!((today.reviewed, today.delivered), (3, 1), "approve, incomplete, approve; one feedback delivered");
        assert_eq!((s.approved, s.approved_first_time, s.first_time_right()), (2, 1, Some(0.5)));
        assert_eq!(s.resubmissions, 1);
        assert!(s.median_fix_ms.is_some_and(|ms| ms >= 0));
        assert_eq!(app.store.stats(0, 0).await.unwrap_err().code(), "invalid_days");

        let html = app.get("/stats?days=7").await.text().await.unwrap();
        assert!(
            html.contains(r#"id="delivery-chart""#) && html.contains(r#"id="qa-chart""#) && html.contains("<rect"),
            "charts drawn on the server"
        );
        assert!(html.contains("50%"), "first time right");
    })
    .await;
}

fn missing_step(n: i64) -> dropcheck_core::store::StepVerdict {
    dropcheck_core::store::StepVerdict {
        step: dropcheck_core::domain::StepNo::new(n).unwrap(),
        verdict: dropcheck_core::domain::Verdict::Missing,
        reason: Some("no_photo".into()),
        note: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_document_is_served_as_json_and_as_a_page() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        let (s, v) = app.api("GET", "/api/openapi.json", None, None).await;
        assert_eq!((s, v["openapi"].as_str()), (StatusCode::OK, Some("3.1.0")));
        assert_eq!(v["paths"]["/api/notifications/send-message"]["post"]["security"][0]["apiKey"][0], "send");
        let r = app.get("/api/docs").await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(html.contains("/api/v1/drops/{number}/review") && html.contains("/webhooks/meta"), "every operation listed");
    })
    .await;
}

/// A Twilio Messages API on a loopback port that accepts only one account's exact
/// credentials; records (To, Body) of what it accepted.
async fn mock_twilio(sid: &'static str, token: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use axum::extract::{Path, State};
    use axum::response::IntoResponse;
    use base64::Engine;
    type Sent = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
    let sent: Sent = Default::default();
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}")));
    let handler = move |State(sent): State<Sent>, Path(account): Path<String>, headers: axum::http::HeaderMap, body: String| {
        let expected = expected.clone();
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            if account != sid || auth != expected {
                return (StatusCode::UNAUTHORIZED, r#"{"code": 20003, "message": "Authenticate"}"#).into_response();
            }
            let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let mut sent = sent.lock().unwrap();
            sent.push((get("To"), get("Body")));
            (StatusCode::CREATED, format!(r#"{{"sid": "SM{:032}", "status": "queued"}}"#, sent.len())).into_response()
        }
    };
    let router =
        axum::Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", axum::routing::post(handler)).with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, sent)
}

impl TestApp {
    /// A form post from the integrations page without JavaScript; the error it carried back.
    pub(crate) async fn settings_form(&self, path: &str, fields: &[(&str, &str)]) -> Option<String> {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, self.base.clone())
            .header(header::REFERER, format!("{}/settings/integrations", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        carried_error(&location(&r))
    }

    async fn provider_health(&self) -> String {
        let (_, v) = self.api("GET", "/api/integrations/whatsapp/webhook", None, None).await;
        v["provider"].as_str().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_switches_the_provider_and_its_secrets_are_stored_encrypted_and_never_shown() {
    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tw-secret-auth-token-Q7x9";
    on_each_backend(|store| async move {
        let (mock, sent) = mock_twilio(SID, TOKEN).await;
        // The API base is set only in the environment (so tests reach the mock); the rest is
        // entered on the page.
        let env = dropcheck_core::integrations::ProviderEnv::from_pairs([("TWILIO_API_BASE", mock.clone())]);
        let app = spawn_with_env(store.clone(), env.clone()).await;
        // A second replica on the same database, for the change to reach it too.
        let replica = spawn_with_env(store.clone(), env).await;
        sign_in_first_admin(&app).await;

        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"id="active-provider">sandbox<"#), "sandbox by default");
        assert!(html.contains(&mock) && html.contains("from the environment"), "the environment's API base, shown as such");

        // Refused, and nothing stored: a missing token, a malformed SID, an env-only setting.
        let twilio = |token: &'static str, sid: &'static str| {
            vec![
                ("provider", "twilio"),
                ("twilio_account_sid", sid),
                ("twilio_auth_token", token),
                ("twilio_whatsapp_number", "+1 415 523 8886"),
            ]
        };
        let err = app.settings_form("/rpc/save_provider", &twilio("", SID)).await.expect("refused");
        assert!(err.contains("TWILIO_AUTH_TOKEN is required"), "{err}");
        let err = app.settings_form("/rpc/save_provider", &twilio(TOKEN, "AC123")).await.expect("refused");
        assert!(err.contains("TWILIO_ACCOUNT_SID"), "{err}");
        let err = app.settings_form("/rpc/save_provider", &[("provider", "sms")]).await.expect("refused");
        assert!(err.contains("not a provider"), "{err}");
        assert!(store.integration_rows().await.unwrap().is_empty());
        assert_eq!(app.provider_health().await, "sandbox");

        // Saved: Twilio is active at once, with the webhook addresses to paste into its console.
        assert_eq!(app.settings_form("/rpc/save_provider", &twilio(TOKEN, SID)).await, None);
        assert_eq!(app.provider_health().await, "twilio");
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"id="active-provider">twilio<"#) && html.contains("provider-saved"));
        // The inbound address carries Twilio's connection override, so Twilio retries a 503.
        assert!(
            html.contains("http://127.0.0.1/webhooks/twilio/status") && html.contains("http://127.0.0.1/webhooks/twilio#rc=5&amp;rp=all<")
        );
        assert!(html.contains("set · …Q7x9") && !html.contains(TOKEN), "the secret is never shown back");
        assert!(html.contains(SID) && html.contains("+14155238886"), "normalised number");
        assert!(html.contains("none received from this provider yet"));
        // Encrypted at rest; the number is not a secret.
        let rows = store.integration_rows().await.unwrap();
        let stored = |n: &str| rows.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        assert!(stored("TWILIO_AUTH_TOKEN").starts_with("v1:") && !stored("TWILIO_AUTH_TOKEN").contains("Q7x9"));
        assert_eq!(stored("TWILIO_WHATSAPP_NUMBER"), "+14155238886");
        assert_eq!(stored("DROPCHECK_PROVIDER"), "twilio");

        // The other replica picks the change up from the database (its watcher reloads the
        // settings every few seconds; here, at once).
        replica.integrations.reload().await.unwrap();
        assert_eq!(replica.provider_health().await, "twilio");

        // Webhooks now verify with the stored token; the page shows the last one and its verdict.
        let params: Vec<(String, String)> =
            [("MessageSid", "SMint1"), ("From", "whatsapp:+27640412391"), ("Body", "/help"), ("NumMedia", "0")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let url = "http://127.0.0.1/webhooks/twilio";
        let post =
            |sig: String| app.client.post(format!("{}/webhooks/twilio", app.base)).header("X-Twilio-Signature", sig).form(&params).send();
        assert_eq!(
            post(dropcheck_core::providers::twilio_signature("sandbox-test-token", url, &params)).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"data-ok="false""#) && html.contains("X-Twilio-Signature did not match"), "a refused signature shows");
        assert_eq!(post(dropcheck_core::providers::twilio_signature(TOKEN, url, &params)).await.unwrap().status(), StatusCode::OK);
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"data-ok="true""#) && html.contains("signature verified"));

        // The test send goes through the mock with the stored credentials.
        let phone = dropcheck_core::domain::Phone::parse("+27640412391").unwrap();
        store.note_inbound(&phone, dropcheck_core::now_ms()).await.unwrap();
        let err = app.settings_form("/rpc/send_test_message", &[("phone", "12")]).await.expect("refused");
        assert!(err.contains("phone number"), "{err}");
        assert_eq!(app.settings_form("/rpc/send_test_message", &[("phone", "+27 64 041 2391")]).await, None);
        // Sent in the request, through the mock.
        let reached = || {
            sent.lock()
                .unwrap()
                .iter()
                .any(|(to, body)| to == "whatsapp:+27640412391" && body.starts_with("Test message from Dropcheck through twilio"))
        };
        if !reached() {
            // What the outbox made of it, for whoever reads the failure.
            let f = dropcheck_core::outbox::MessageFilter { direction: Some(dropcheck_core::domain::Direction::Out), ..Default::default() };
            let rows = store.list_messages(&f, None, 20).await.unwrap().0;
            let seen: Vec<_> =
                rows.iter().map(|m| (m.status.clone(), m.attempts, m.error_code.clone(), m.error_text.clone(), m.body.clone())).collect();
            panic!("the test message did not reach the provider; the outbox: {seen:?}");
        }
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains(r#"id="test-result" data-status="sent""#), "the result is shown after the round trip");

        // A blank secret keeps the stored one; Meta without its settings is refused.
        assert_eq!(app.settings_form("/rpc/save_provider", &twilio("", SID)).await, None);
        assert!(store.integration_settings().await.unwrap().values.get("TWILIO_AUTH_TOKEN").is_some_and(|t| t == TOKEN));
        let err = app.settings_form("/rpc/save_provider", &[("provider", "meta")]).await.expect("refused");
        assert!(err.contains("META_ACCESS_TOKEN is required"), "{err}");
        let meta = [
            ("provider", "meta"),
            ("meta_access_token", "EAAG-meta-access-token-0001"),
            ("meta_phone_number_id", "10987654321"),
            ("meta_app_secret", "meta-app-secret-0002"),
            ("meta_verify_token", "meta-verify-0003"),
            ("meta_api_version", "v21.0"),
        ];
        assert_eq!(app.settings_form("/rpc/save_provider", &meta).await, None);
        assert_eq!(app.provider_health().await, "meta");
        assert!(!store.integration_rows().await.unwrap().iter().any(|(k, _)| k == "META_API_VERSION"), "a default is not stored");
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains("http://127.0.0.1/webhooks/meta") && !html.contains("meta-app-secret-0002") && !html.contains("EAAG-meta"));
        // Back to the sandbox; the credentials stay stored for later.
        assert_eq!(app.settings_form("/rpc/save_provider", &[("provider", "sandbox")]).await, None);
        assert_eq!(app.provider_health().await, "sandbox");
        assert_eq!(
            store.integration_settings().await.unwrap().values.get("META_APP_SECRET").map(String::as_str),
            Some("meta-app-secret-0002")
        );

        // A reviewer cannot change it.
        let hash = dropcheck_core::auth::hash_password("a long password".into()).await.unwrap();
        store.create_user(&Email::parse("rita@example.com").unwrap(), &hash, Role::Reviewer).await.unwrap();
        let rita = TestApp { client: spawn_client(), ..app.clone() };
        let r = rita.form("/rpc/login", &[("email", "rita@example.com"), ("password", "a long password")], true).await;
        assert!(r.status().is_redirection());
        let html = rita.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains("Your WhatsApp number") && !html.contains("save-provider"), "reviewers see only their phone link");
        let err = rita.settings_form("/rpc/save_provider", &[("provider", "twilio")]).await.expect("refused");
        assert!(err.contains("Only admins"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_settings_from_the_environment_win_and_are_shown_as_such() {
    on_each_backend(|store| async move {
        // Stored: Meta. The environment says Twilio with its own token.
        let now = dropcheck_core::now_ms();
        store.save_integration_settings(&[("DROPCHECK_PROVIDER", Some("meta".into()))], "ann@example.com", now).await.unwrap();
        let (mock, _) = mock_twilio("AC0123456789abcdef0123456789abcdef", "env-token-ABCD1234").await;
        let env = dropcheck_core::integrations::ProviderEnv::from_pairs([
            ("DROPCHECK_PROVIDER", "twilio".to_string()),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef".into()),
            ("TWILIO_AUTH_TOKEN", "env-token-ABCD1234".into()),
            ("TWILIO_WHATSAPP_NUMBER", "+14155238886".into()),
            ("TWILIO_API_BASE", mock),
        ]);
        let app = spawn_with_env(store.clone(), env).await;
        sign_in_first_admin(&app).await;
        assert_eq!(app.provider_health().await, "twilio");
        let html = app.get("/settings/integrations").await.text().await.unwrap();
        assert!(html.contains("chosen by DROPCHECK_PROVIDER in the server") && html.contains("set · …1234"));
        assert!(
            !html.contains("env-token-ABCD1234") && !html.contains(r#"name="twilio_auth_token""#),
            "no box for what the environment sets"
        );
        let err = app.settings_form("/rpc/save_provider", &[("provider", "meta")]).await.expect("refused");
        assert!(err.contains("DROPCHECK_PROVIDER is set to twilio"), "{err}");
        let err = app
            .settings_form("/rpc/save_provider", &[("provider", "twilio"), ("twilio_auth_token", "other-token")])
            .await
            .expect("refused");
        assert!(err.contains("TWILIO_AUTH_TOKEN is set in the server's environment"), "{err}");
    })
    .await;
}
