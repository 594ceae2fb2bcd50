//! Security over real HTTP (issue 9, docs/SECURITY.md): stored files served inert, browser
//! security headers on every page, sign-in limits under concurrency, bounded bodies, NUL
//! bytes from outside, 4xx (never 500) for bad input, host and path checks, live streams
//! tied to their session, and the header-read timeout. Every scenario runs on SQLite and on
//! PostgreSQL.

use crate::helpers::{client, spawn, spawn_app, TestApp};
use dropcheck::Config;
use dropcheck_core::domain::{DropNumber, Email, Role, DEFAULT_DROP_PATTERN};
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::providers::twilio_signature;
use dropcheck_core::store::Store;
use dropcheck_core::testing::on_each_backend;
use reqwest::{header, StatusCode};
use std::time::Duration;

const BRIDGE: &str = "test-bridge-key-0123456789";
const PASSWORD: &str = "a long password";

/// A client signed in as `email` at the server at `base` (through the no-JavaScript form).
async fn signed_in_at(base: &str, email: &str) -> reqwest::Client {
    let c = client();
    let r = c
        .post(format!("{base}/rpc/login"))
        .header(header::ACCEPT, "text/html")
        .header(header::ORIGIN, base)
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    assert_eq!(r.headers().get(header::LOCATION).unwrap(), "/");
    c
}

async fn spawn_with(store: Store, config: Config) -> TestApp {
    spawn_app(store, config).await
}

impl TestApp {
    async fn user(&self, email: &str, role: Role) {
        let hash = dropcheck_core::auth::hash_password(PASSWORD.into()).await.unwrap();
        self.store.create_user(&Email::parse(email).unwrap(), &hash, role).await.unwrap();
    }

    /// A client signed in as `email` (through the no-JavaScript form).
    async fn signed_in(&self, email: &str) -> reqwest::Client {
        signed_in_at(&self.base, email).await
    }

    /// A server function called as the hydrated page calls it (fetch, not a form navigation).
    async fn rpc(&self, c: &reqwest::Client, name: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        c.post(format!("{}/rpc/{name}", self.base))
            .header(header::ACCEPT, "application/json")
            .header(header::ORIGIN, &self.base)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// A webhook as the sandbox (or Twilio) signs it: over the public URL.
    async fn sandbox_webhook(&self, fields: &[(&str, &str)]) -> StatusCode {
        let params: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let sig = twilio_signature("sandbox-test-token", "http://127.0.0.1/webhooks/twilio", &params);
        client()
            .post(format!("{}/webhooks/twilio", self.base))
            .header("X-Twilio-Signature", sig)
            .form(fields)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn h<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_files_are_served_inert_and_sandbox_media_urls_cannot_be_forged() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        app.user("rita@example.com", Role::Reviewer).await;
        let rita = app.signed_in("rita@example.com").await;
        let html = b"<html><body><script>fetch('/rpc/set_user_role',{method:'POST'})</script></body></html>".to_vec();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&html))
        };
        let form = reqwest::multipart::Form::new()
            .text("phone", "+27640412391")
            .text("body", "DR12345678")
            .part("files", reqwest::multipart::Part::bytes(html).file_name("x.html").mime_str("text/html").unwrap());
        let r = rita.post(format!("{}/sandbox/send", app.base)).header(header::ORIGIN, &app.base).multipart(form).send().await.unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());

        // The URL an attacker can build from what they uploaded is not served, with any type.
        for q in ["", "?type=text/html", "?type=image/svg%2Bxml", &format!("?type=text/html&sig={}", "0".repeat(64))] {
            let r = client().get(format!("{}/sandbox/media/{sha}{q}", app.base)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{q}");
        }
        // The inbox fetched the minted URL and filed the file; it comes back only as a download.
        let number = DropNumber::parse("DR12345678").unwrap();
        app.drain_inbox().await;
        let d = app.store.drop_detail(&number).await.unwrap();
        let a = &app.store.attachments_for_drop(d.drop_id).await.unwrap()[0];
        assert_eq!(a.sha256, sha);
        let r = rita.get(format!("{}/attachments/{}", app.base, a.attachment_id)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(h(&r, "content-disposition").starts_with("attachment"), "{:?}", r.headers());
        assert_eq!(h(&r, "x-content-type-options"), "nosniff");
        assert!(h(&r, "content-security-policy").starts_with("sandbox"), "{:?}", r.headers());

        // A generated photo is shown inline, as the image its bytes are.
        let r = rita
            .post(format!("{}/sandbox/send", app.base))
            .header(header::ORIGIN, &app.base)
            .form(&[("phone", "+27640412391"), ("body", ""), ("photos", "1")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection());
        app.drain_inbox().await;
        let d = app.store.drop_detail(&number).await.unwrap();
        let photo = d.steps.iter().flat_map(|s| &s.photos).next().unwrap();
        let r = rita.get(format!("{}/media/{}", app.base, photo.photo_id)).send().await.unwrap();
        assert_eq!((r.status(), h(&r, "content-type")), (StatusCode::OK, "image/jpeg"));
        assert!(h(&r, "content-disposition").is_empty());

        // A file claiming to be a PNG that is not one is refused.
        let form = reqwest::multipart::Form::new().text("phone", "+27640412391").part(
            "files",
            reqwest::multipart::Part::bytes(b"<svg onload=alert(1)>".to_vec()).file_name("x.png").mime_str("image/png").unwrap(),
        );
        let r = rita.post(format!("{}/sandbox/send", app.base)).header(header::ORIGIN, &app.base).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    })
    .await;
}

/// The CSP a page must carry: no inline script except by this response's nonce, no framing,
/// no plugins, no base URL.
fn assert_strict_csp(path: &str, csp: &str, body: &str) {
    for part in ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "default-src 'self'"] {
        assert!(csp.contains(part), "{path}: {part} missing from {csp}");
    }
    let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap_or_else(|| panic!("{path}: no script-src"));
    let tokens: Vec<&str> = script.split_whitespace().collect();
    assert!(!tokens.contains(&"'unsafe-inline'") && !tokens.contains(&"'unsafe-eval'"), "{path}: {script}");
    // Every inline script in the page carries the nonce the header allows.
    let nonce = script.split_whitespace().find_map(|t| t.strip_prefix("'nonce-").and_then(|n| n.strip_suffix('\'')));
    for (i, _) in body.match_indices("<script") {
        let tag = &body[i..i + body[i..].find('>').unwrap()];
        if tag.contains(" src=") {
            continue;
        }
        let n = nonce.unwrap_or_else(|| panic!("{path}: inline script without a nonce in the CSP: {tag}"));
        assert!(tag.contains(&format!("nonce=\"{n}\"")), "{path}: inline script without this response's nonce: {tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_sends_the_browser_security_headers() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        // Signed out first: the set-up page, then sign-in.
        let anon = client();
        let r = anon.get(format!("{}/setup", app.base)).send().await.unwrap();
        let csp = h(&r, "content-security-policy").to_string();
        assert_strict_csp("/setup", &csp, &r.text().await.unwrap());
        app.user("ann@example.com", Role::Admin).await;
        let ann = app.signed_in("ann@example.com").await;
        let pages = [
            "/",
            "/drops/DR12345678",
            "/next",
            "/messages",
            "/sandbox",
            "/events",
            "/stats",
            "/settings/projects",
            "/settings/users",
            "/settings/templates",
            "/settings/api-keys",
            "/settings/integrations",
            "/no-such-page",
            "/api/docs",
            "/api/openapi.json",
            "/health",
            "/api/v1/drops",
            "/media/999999",
            "/live/drops/x",
        ];
        for path in pages {
            let r = ann.get(format!("{}{path}", app.base)).send().await.unwrap();
            let status = r.status();
            assert_eq!(h(&r, "x-content-type-options"), "nosniff", "{path} ({status})");
            assert_eq!(h(&r, "x-frame-options"), "DENY", "{path}");
            assert_eq!(h(&r, "referrer-policy"), "same-origin", "{path}");
            assert!(h(&r, "strict-transport-security").is_empty(), "{path}: no HSTS over http");
            let csp = h(&r, "content-security-policy").to_string();
            let html = h(&r, "content-type").starts_with("text/html");
            let body = r.text().await.unwrap();
            assert_strict_csp(path, &csp, &body);
            if html && path != "/api/docs" && !path.starts_with("/media") {
                assert!(body.contains("<script"), "{path}: a Leptos page has its hydration script ({status})");
            }
        }
        // Two renders, two nonces.
        let a = ann.get(format!("{}/", app.base)).send().await.unwrap();
        let b = ann.get(format!("{}/", app.base)).send().await.unwrap();
        assert_ne!(h(&a, "content-security-policy"), h(&b, "content-security-policy"));
    })
    .await;
    // Over https (as the public URL says), browsers are told to stay on https.
    on_each_backend(|store| async move {
        let app = spawn_with(store, Config { public_url: "https://qa.example.com".into(), ..Config::for_tests() }).await;
        let r = client().get(format!("{}/login", app.base)).send().await.unwrap();
        assert!(h(&r, "strict-transport-security").starts_with("max-age=31536000"), "{:?}", r.headers());
        let r = client().get(format!("{}/health", app.base)).send().await.unwrap();
        assert!(h(&r, "strict-transport-security").starts_with("max-age="));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_sign_ins_are_held_to_the_limit_and_the_owner_elsewhere_is_not_locked_out() {
    on_each_backend(|store| async move {
        let proxies = app::ssr::TrustedProxies::parse("127.0.0.1").unwrap();
        let app = spawn_with(store, Config { trusted_proxies: proxies, ..Config::for_tests() }).await;
        app.user("bob@example.com", Role::Reviewer).await;
        // 40 wrong passwords at once from one address (behind the trusted proxy).
        let attacker = || {
            client()
                .post(format!("{}/rpc/login", app.base))
                .header(header::ORIGIN, &app.base)
                .header("X-Forwarded-For", "198.51.100.7")
                .form(&[("email", "bob@example.com"), ("password", "guess")])
                .send()
        };
        let answers = futures_util::future::join_all((0..40).map(|_| attacker())).await;
        let mut wrong = 0;
        let mut limited = 0;
        for r in answers {
            let r = r.unwrap();
            match (r.status(), h(&r, "x-dropcheck-error")) {
                (StatusCode::UNAUTHORIZED, "wrong_credentials") => wrong += 1,
                (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts") => {
                    assert!(h(&r, "retry-after").parse::<u64>().unwrap() >= 1);
                    limited += 1
                }
                (s, code) => panic!("unexpected answer {s} {code}"),
            }
        }
        assert_eq!((wrong, limited), (5, 35), "exactly the limit of 5 reached the password check");
        // The right password from the attacker's address is refused too (locked)…
        let r = client()
            .post(format!("{}/rpc/login", app.base))
            .header(header::ORIGIN, &app.base)
            .header("X-Forwarded-For", "198.51.100.7")
            .form(&[("email", "bob@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // …but the owner at another address signs in at once.
        let r = client()
            .post(format!("{}/rpc/login", app.base))
            .header(header::ORIGIN, &app.base)
            .header("X-Forwarded-For", "203.0.113.20")
            .header(header::ACCEPT, "text/html")
            .form(&[("email", "bob@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        assert_eq!(h(&r, "location"), "/");
        // A client cannot pick its address: without the trusted proxy in front, the header is ignored.
        let app2 = spawn(app.store.clone()).await;
        for fake in ["203.0.113.21", "203.0.113.22"] {
            let r = client()
                .post(format!("{}/rpc/login", app2.base))
                .header(header::ORIGIN, &app2.base)
                .header("X-Forwarded-For", fake)
                .form(&[("email", "bob@example.com"), ("password", "guess")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let _ = app2; // its failures count against 127.0.0.1, not the forged addresses
    })
    .await;
}

/// The resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap()))
        .unwrap()
}

/// `n` MiB of form body, generated as it is sent (the client holds 1 MiB at a time).
fn lazy_body(n: usize) -> reqwest::Body {
    let chunks = futures_util::stream::iter((0..n).map(|i| {
        let mut c = vec![b'a'; 1 << 20];
        if i == 0 {
            c[..26].copy_from_slice(b"phone=%2B27640412391&body=");
        }
        Ok::<_, std::io::Error>(c)
    }));
    reqwest::Body::wrap_stream(chunks)
}

/// The server as its own process (so its memory is measured alone), on SQLite or on the
/// PostgreSQL schema the scenario got.
struct ServerProcess {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn server_process(database_url: &str) -> ServerProcess {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dropcheck"));
        c.args(args)
            .env("DROPCHECK_DATA_DIR", dir.path())
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_SITE_ROOT", dir.path())
            .env("LEPTOS_OUTPUT_NAME", "dropcheck")
            .env("RUST_LOG", "warn")
            .env_remove("DROPCHECK_PROVIDER");
        if !database_url.starts_with("sqlite") {
            c.env("DATABASE_URL", database_url);
        }
        c
    };
    let mut add = cmd(&["user", "add", "--email", "rita@example.com", "--role", "reviewer"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
    let child = cmd(&["serve"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if client().get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ServerProcess { child, base, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413_and_memory_stays_bounded() {
    for backend in ["sqlite", "postgresql"] {
        let db = match backend {
            "sqlite" => None,
            _ => match dropcheck_core::testing::TestDb::postgres().await {
                Some(db) => Some(db),
                None => continue,
            },
        };
        let url = db.as_ref().map(|d| d.url.clone()).unwrap_or_else(|| "sqlite".into());
        let server = server_process(&url).await;
        let base = server.base.clone();
        let rita = signed_in_at(&base, "rita@example.com").await;
        let pid = server.child.id();
        let before = rss_kb(pid);
        // 100 MB of form to the sandbox: declared (Content-Length), then chunked (no length).
        for declared in [true, false] {
            let mut req = rita
                .post(format!("{}/sandbox/send", base))
                .header(header::ORIGIN, &base)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(lazy_body(100));
            if declared {
                req = req.header(header::CONTENT_LENGTH, (100usize << 20).to_string());
            }
            // The server may answer and close before the whole body is sent.
            if let Ok(r) = req.send().await {
                assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "declared: {declared}");
            }
        }
        for (path, ct) in [("/api/v1/templates", "application/json"), ("/rpc/login", "application/x-www-form-urlencoded")] {
            let r = client()
                .post(format!("{}{path}", base))
                .header("X-API-Key", BRIDGE)
                .header(header::ORIGIN, &base)
                .header(header::CONTENT_TYPE, ct)
                .body(lazy_body(20))
                .send()
                .await;
            if let Ok(r) = r {
                assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            }
        }
        let grown_mb = rss_kb(pid).saturating_sub(before) / 1024;
        assert!(grown_mb < 20, "{backend}: the server's resident memory grew by {grown_mb} MB");
        // A normal post still works afterwards.
        let r = rita
            .post(format!("{}/sandbox/send", base))
            .header(header::ORIGIN, &base)
            .form(&[("phone", "+27640412391"), ("body", "/help")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        drop(server);
        if let Some(db) = db {
            db.cleanup().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_from_outside_are_cleaned_and_never_hold_up_a_contractor() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let from = "whatsapp:+27640412391";
        assert_eq!(
            app.sandbox_webhook(&[
                ("MessageSid", "SMnul1"),
                ("From", from),
                ("Body", "DR12345678\0 bad\0byte"),
                ("NumMedia", "0"),
                ("ProfileName", "N\0o")
            ])
            .await,
            StatusCode::OK
        );
        assert_eq!(
            app.sandbox_webhook(&[("MessageSid", "SMnul2"), ("From", from), ("Body", "/status"), ("NumMedia", "0")]).await,
            StatusCode::OK
        );
        app.drain_inbox().await;
        assert_eq!(app.store.event_counts().await.unwrap(), (0, 2, 0), "both messages processed");
        let (rows, _) = app
            .store
            .list_messages(&MessageFilter { direction: Some(dropcheck_core::domain::Direction::In), ..Default::default() }, None, 10)
            .await
            .unwrap();
        let bodies: Vec<&str> = rows.iter().map(|m| m.body.as_str()).collect();
        assert!(bodies.contains(&"DR12345678 badbyte"), "{bodies:?}");
        assert!(bodies.contains(&"/status"));
        assert!(app.store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.is_ok(), "the drop was opened");

        // A NUL in what a browser or an API client sends is cleaned too: no 500.
        app.user("ann@example.com", Role::Admin).await;
        let r = app.rpc(&client(), "login", &[("email", "ann@exam\0ple.com"), ("password", "x\0y")]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let ann = app.signed_in("ann@example.com").await;
        let r = ann.get(format!("{}/?q=DR%00123&contractor=%00", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r =
            client().get(format!("{}/api/v1/drops?q=DR1%002&contractor=a%00", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = client()
            .post(format!("{}/api/v1/templates", app.base))
            .header("X-API-Key", BRIDGE)
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"name": "nul_test", "body": "Hello\u0000 there", "description": "a\u0000b"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
        let t: serde_json::Value = client()
            .get(format!("{}/api/v1/templates/nul_test", app.base))
            .header("X-API-Key", BRIDGE)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["body"], "Hello there");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_its_code_never_a_500() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.user("rita@example.com", Role::Reviewer).await;
        app.user("ann@example.com", Role::Admin).await;
        let rita = app.signed_in("rita@example.com").await;
        // Search terms over the limit.
        let long = "D".repeat(60_000);
        let r = client().get(format!("{}/api/v1/drops?q={long}", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "search_too_long");
        let r = client()
            .get(format!("{}/api/v1/messages?phone={}", app.base, "1".repeat(300)))
            .header("X-API-Key", BRIDGE)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = app.rpc(&rita, "drops_page", &[("q", &"D".repeat(201))]).await;
        assert_eq!((r.status(), h(&r, "x-dropcheck-error")), (StatusCode::UNPROCESSABLE_ENTITY, "search_too_long"));
        let r = rita.get(format!("{}/?q={}", app.base, "D".repeat(300))).send().await.unwrap();
        assert!(r.status().is_success() || r.status().is_client_error(), "{}", r.status());
        // Refusals of server functions are 4xx with their code.
        let r = app.rpc(&client(), "login", &[("email", "rita@example.com"), ("password", "wrong")]).await;
        assert_eq!((r.status(), h(&r, "x-dropcheck-error")), (StatusCode::UNAUTHORIZED, "wrong_credentials"));
        let r = app.rpc(&client(), "drops_page", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "signed out");
        let r = app.rpc(&rita, "move_photo", &[("photo_id", "x"), ("step", "2"), ("number", "DR12345678")]).await;
        assert!(r.status().is_client_error(), "{}", r.status());
        // A path parameter of the wrong type is the JSON error.
        for path in ["/api/v1/messages/abc/resend", "/api/notifications/resend/12x"] {
            let r = client().post(format!("{}{path}", app.base)).header("X-API-Key", BRIDGE).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"], "not_found", "{path}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_must_name_our_host_and_admin_paths_cannot_be_dodged() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.user("rita@example.com", Role::Reviewer).await;
        // DNS rebinding: the browser thinks the attacker's name is same-origin.
        let r = client()
            .post(format!("{}/rpc/setup", app.base))
            .header(header::HOST, "rebind.attacker.example")
            .header("sec-fetch-site", "same-origin")
            .form(&[("email", "eve@example.com"), ("password", "eve's password"), ("confirm", "eve's password")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.store.user_count().await.unwrap(), 1, "nobody was added");
        let rita = app.signed_in("rita@example.com").await;
        for path in ["/events/", "/EVENTS", "/%65vents", "//events", "/settings/users/", "/Settings/Api-Keys"] {
            let r = rita.get(format!("{}{path}", app.base)).send().await.unwrap();
            assert!(
                r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::NOT_FOUND,
                "{path}: {} (must not render the admin page)",
                r.status()
            );
            assert!(!r.text().await.unwrap().contains("Reprocess"), "{path}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_per_user_and_end_at_sign_out() {
    on_each_backend(|store| async move {
        let app = spawn(store).await;
        app.user("rita@example.com", Role::Reviewer).await;
        let rita = app.signed_in("rita@example.com").await;
        let mut streams = vec![];
        for _ in 0..app::ssr::LiveHub::MAX_PER_USER {
            let r = rita.get(format!("{}/live/drops", app.base)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            streams.push(r);
        }
        let r = rita.get(format!("{}/live/drops", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // A change reaches an open stream.
        app.store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let r = client()
            .post(format!("{}/api/submit-installation", app.base))
            .header("X-API-Key", BRIDGE)
            .json(&serde_json::json!({"drop_number": "DR12345678", "contractor_number": "+27640412391", "project_name": "Velo Test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut first = streams.remove(0);
        let mut seen = String::new();
        while !seen.contains("event: change") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), first.chunk()).await.expect("a change event").unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        // Signing out ends every stream of the session.
        let r = rita
            .post(format!("{}/rpc/logout", app.base))
            .header(header::ORIGIN, &app.base)
            .header(header::ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection());
        streams.push(first);
        for mut s in streams {
            let ended = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match s.chunk().await {
                        Ok(Some(_)) => continue, // keep-alives or a late change
                        _ => break,
                    }
                }
            })
            .await;
            assert!(ended.is_ok(), "the stream ended at sign-out");
        }
        let r = rita.get(format!("{}/live/drops", app.base)).send().await.unwrap();
        assert!(r.status().is_client_error() || r.status().is_redirection(), "{}", r.status());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_send_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    on_each_backend(|store| async move {
        let app = spawn_with(store, Config { header_timeout_ms: 500, ..Config::for_tests() }).await;
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap(); // never finishes
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await.expect("the server closed it");
        // Closed (0 bytes) or answered 408; either way the connection is not held.
        if let Ok(n) = read {
            assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"), "{}", String::from_utf8_lossy(&buf[..n]));
        }
        // A prompt client is served.
        let r = client().get(format!("{}/health", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    })
    .await;
}
