//! The one harness every server test starts from.

use dropcheck::integrations::Integrations;
use dropcheck::workers::Workers;
use dropcheck::{Application, Config};
use dropcheck_core::store::Store;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;

/// A running server on a loopback port, with its background workers off. A clone with
/// another `client` is a second browser on the same server.
#[derive(Clone)]
pub struct TestApp {
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub base: String,
    /// The public URL it was configured with (providers sign webhooks for it).
    pub public_url: String,
    pub store: Store,
    /// Keeps cookies, follows no redirects (a test sees each answer as it was sent).
    pub client: reqwest::Client,
    pub workers: Workers,
    pub integrations: Arc<Integrations>,
    /// The paths of the API and webhook routes the server routes.
    pub api_paths: Vec<&'static str>,
}

/// The build options a server under test renders its pages with.
pub fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder().output_name("dropcheck").site_root("target/site").build()
}

/// A client that keeps cookies and follows no redirects.
pub fn client() -> reqwest::Client {
    // A request the server never answers fails its test here, with its place, instead of
    // holding up the whole run.
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Starts a server over `store` with `config` (usually `Config { …, ..Config::for_tests() }`).
pub async fn spawn_app(store: Store, config: Config) -> TestApp {
    // The server's log on request: `TEST_LOG=info` (any filter) prints it, interleaved
    // across the tests that run at once.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter(filter).try_init();
    }
    let public_url = config.public_url.clone();
    let app = Application::build_with_store(config, leptos_options(), store.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let (workers, integrations, api_paths) = (app.workers(), app.integrations(), app.api_paths().to_vec());
    tokio::spawn(app.run_until_stopped());
    TestApp { base, public_url, store, client: client(), workers, integrations, api_paths }
}

/// [`spawn_app`] with the test configuration as it is.
pub async fn spawn(store: Store) -> TestApp {
    spawn_app(store, Config::for_tests()).await
}

impl TestApp {
    /// Processes every stored inbound event and sends every message that queued, waiting
    /// for backoffs and delayed acknowledgments only until they are due.
    pub async fn drain(&self) {
        self.workers.drain().await.expect("draining the inbox and the outbox");
    }

    /// Processes every stored inbound event (the replies stay queued).
    pub async fn drain_inbox(&self) {
        self.workers.drain_inbox().await.expect("draining the inbox");
    }

    /// Sends every queued message.
    pub async fn drain_outbox(&self) {
        self.workers.drain_outbox().await.expect("draining the outbox");
    }
}
