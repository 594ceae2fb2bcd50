//! The Dropcheck server: bootstrap (configuration, storage, migrations), router assembly,
//! and the CLI's commands. Browser pages and server functions come from the `app` crate;
//! the JSON API is in [`api`], media and middleware in [`web`].

pub mod api;
pub mod backup;
pub mod broadcasts_web;
pub mod config;
pub mod contacts_web;
pub mod csv_export;
pub mod group_commit;
pub mod integrations;
pub mod logging;
pub mod metrics;
pub mod myoperator;
pub mod openapi;
pub mod providers;
pub mod routes;
pub mod sandbox;
pub mod sessions;
pub mod vision;
pub mod web;
pub mod webhook_out;
pub mod webhooks;
pub mod workers;

use app::ssr::{AppState, Settings};
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::Router;
use dropcheck_core::media::MediaStore;
use dropcheck_core::store::{database_url, Store};
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use config::Config;

/// Opens (creating if needed) the data directory and the database, and applies migrations.
pub async fn open_store(config: &Config) -> Result<Store, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("DROPCHECK_DATA_DIR: cannot create {}: {e}", config.data_dir.display()))?;
    let url = database_url(config.database_url.as_deref(), &config.data_dir);
    let store = Store::connect(&url).await.map_err(|e| format!("DATABASE_URL: cannot open {}: {e}", config::redact_url(&url)))?;
    store.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    Ok(store)
}

/// The largest body of a form post or server function call (a template body is the
/// largest thing a form carries).
pub const FORM_BODY_LIMIT: usize = 256 << 10;
/// The largest JSON API request body.
pub const API_BODY_LIMIT: usize = 1 << 20;

/// The whole HTTP surface, ready to serve, and the paths of the API and webhook routes in it
/// (the API document names exactly these).
pub fn router_and_api_paths(
    state: AppState,
    messaging: Arc<workers::Messaging>,
    secure_cookies: bool,
    body_timeout: std::time::Duration,
) -> (Router, Vec<&'static str>) {
    let sessions = SessionManagerLayer::new(sessions::DbSessionStore { store: state.store.clone() })
        // `__Host-` pins the cookie to this host and path, but browsers accept it only over https.
        .with_name(if secure_cookies { "__Host-dropcheck" } else { "dropcheck_session" })
        .with_secure(secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // 30 minutes idle: `web::gate` touches the session at most once a minute, which saves it
        // with a fresh expiry (a write per request would be an fsync per page view).
        // 12 hours absolute, checked in app::ssr.
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
    let (linking, mut api_paths) = api::linking::router().into_parts();
    let (api, more) = api::router()
        .merge(api::notifications::router(messaging.clone()))
        .merge(api::webhook_endpoints::router(messaging.clone()))
        .merge(metrics::router(messaging.clone()))
        .merge(openapi::router())
        .into_parts();
    api_paths.extend(more);
    let (webhooks, more) = webhooks::router(messaging.clone(), state.store.clone()).into_parts();
    api_paths.extend(more);
    let (uploads, more) = api::upload_router().into_parts();
    api_paths.extend(more);
    let routes = generate_route_list(app::App);
    let shell_opts = state.leptos_options.clone();
    let pages = Router::new()
        .leptos_routes(&state, routes, move || app::shell(shell_opts.clone()))
        .merge(web::router())
        // Phone linking acts for the session's user too, so it sits behind the session layer.
        .merge(linking)
        // Forms and server functions: small bodies. The sandbox's upload sets its own limit.
        .layer(RequestBodyLimitLayer::new(FORM_BODY_LIMIT))
        .merge(sandbox::router(messaging.clone()))
        .merge(contacts_web::router())
        .merge(broadcasts_web::router())
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(from_fn_with_state(state.clone(), web::gate))
        .layer(from_fn_with_state(state.clone(), web::csrf))
        .layer(sessions);
    // The built wasm, JS and CSS, served with the Brotli or gzip copy that scripts/precompress.mjs
    // made at build time when the browser accepts it. File names are not content-hashed, so
    // browsers revalidate (Last-Modified) instead of caching blindly.
    let pkg_dir = std::path::Path::new(&*state.leptos_options.site_root).join(&*state.leptos_options.site_pkg_dir);
    let pkg = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .service(ServeDir::new(pkg_dir).precompressed_br().precompressed_gzip());
    let router = Router::new()
        .merge(api)
        .layer(RequestBodyLimitLayer::new(API_BODY_LIMIT))
        .merge(uploads)
        .merge(webhooks)
        .nest_service(&format!("/{}", state.leptos_options.site_pkg_dir), pkg)
        .merge(pages)
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(logging::request_span))
        .layer(axum::middleware::from_fn(web::clean_input))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(from_fn_with_state(state.clone(), web::security_headers))
        .with_state(state);
    (router, api_paths)
}

pub struct Application {
    listener: TcpListener,
    /// `DROPCHECK_METRICS_ADDR`'s listener, if set.
    metrics_listener: Option<TcpListener>,
    router: Router,
    /// The paths of the API and webhook routes the router serves.
    api_paths: Vec<&'static str>,
    state: AppState,
    messaging: Arc<workers::Messaging>,
    workers: workers::Workers,
    /// Whether [`Application::run_until_stopped`] runs the workers (tests drive them instead).
    background_workers: bool,
    integrations: Arc<integrations::Integrations>,
    timeouts: Timeouts,
    retention_days: i64,
}

/// Connection timeouts: a client has `header` to send a request's headers (also the longest
/// a kept-alive connection waits idle for its next request), and `idle` for a request body.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header: std::time::Duration,
    pub idle: std::time::Duration,
}

impl Application {
    /// Opens storage and binds the listener (port 0 picks a free port, for tests).
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, String> {
        let store = open_store(&config).await?;
        Self::build_with_store(config, leptos_options, store).await
    }

    /// As [`Application::build`], over an already opened and migrated store (tests).
    pub async fn build_with_store(config: Config, leptos_options: LeptosOptions, store: Store) -> Result<Self, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("DROPCHECK_DATA_DIR: cannot create {}: {e}", config.data_dir.display()))?;
        store.set_secret_key(config::load_secret_key(&config)?);
        store.set_reuse_hints(config.reuse_hints).map_err(|e| format!("the reuse index: {e}"))?;
        // A fresh install takes drops at once: a default project when there is none.
        if let Some(p) = store.ensure_default_project().await.map_err(|e| format!("creating the default project: {e}"))? {
            tracing::info!(project = %p.name, "no project yet: created the default project with the default checklist");
        }
        let listener = TcpListener::bind(config.site_addr)
            .await
            .map_err(|e| format!("LEPTOS_SITE_ADDR: cannot listen on {}: {e}", config.site_addr))?;
        let metrics_listener = match config.metrics_addr {
            Some(a) => Some(TcpListener::bind(a).await.map_err(|e| format!("DROPCHECK_METRICS_ADDR: cannot listen on {a}: {e}"))?),
            None => None,
        };
        let mut own = listener.local_addr().map_err(|e| format!("LEPTOS_SITE_ADDR: {e}"))?;
        if own.ip().is_unspecified() {
            own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let messaging = Arc::new(workers::Messaging::new(
            config::ProviderConfig::Sandbox { signing_token: config.sandbox_token.clone() },
            config.public_url.clone(),
            format!("http://{own}"),
            config.retry,
            config.send_rate,
            config.max_media_bytes,
            config.lease_ms,
            vision::Vision::new(config.vision_concurrency, std::time::Duration::from_millis(config.vision_timeout_ms), config.retry),
            webhook_out::WebhookSender::new(config.webhook_allow_private, config.webhook_schedule_ms.clone(), config.lease_ms),
        ));
        // The provider in effect: the environment's settings, else those stored under
        // Settings → Integrations. A missing or unusable one stops start-up here.
        let integrations = Arc::new(integrations::Integrations::new(
            store.clone(),
            messaging.clone(),
            config.provider_env.clone(),
            config.public_url.clone(),
            config.sandbox_token.clone(),
        ));
        integrations.reload().await.map_err(integrations::one_line)?;
        let state = AppState {
            leptos_options,
            store: store.clone(),
            media: MediaStore::new(&config.data_dir),
            settings: Arc::new(Settings {
                bridge_api_key: config.bridge_api_key.clone(),
                webhook_allow_private: config.webhook_allow_private,
                public_url: config.public_url.clone(),
                started_at: std::time::Instant::now(),
                integrations: integrations.clone(),
                trusted_proxies: config.trusted_proxies.clone(),
                live: app::ssr::LiveHub::new(store.clone()),
            }),
        };
        let timeouts = Timeouts {
            header: std::time::Duration::from_millis(config.header_timeout_ms),
            idle: std::time::Duration::from_millis(config.idle_timeout_ms),
        };
        let (router, api_paths) = router_and_api_paths(state.clone(), messaging.clone(), config.secure_cookies(), timeouts.idle);
        Ok(Self {
            router,
            api_paths,
            listener,
            metrics_listener,
            workers: workers::Workers::new(store.clone(), state.media.clone(), messaging.clone())
                .with_automation_sweep(std::time::Duration::from_millis(config.automation_sweep_ms)),
            background_workers: config.background_workers,
            state,
            messaging,
            integrations,
            timeouts,
            retention_days: config.retention_days,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The paths of the API and webhook routes served (the API document names exactly these).
    pub fn api_paths(&self) -> &[&'static str] {
        &self.api_paths
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn messaging(&self) -> Arc<workers::Messaging> {
        self.messaging.clone()
    }

    /// The provider settings (stored under Settings → Integrations and the environment's).
    pub fn integrations(&self) -> Arc<integrations::Integrations> {
        self.integrations.clone()
    }

    /// The inbox processor and outbox sender, to drive by hand when the configuration turned
    /// the background workers off (tests).
    pub fn workers(&self) -> workers::Workers {
        self.workers.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let retention_ms = self.retention_days * 86_400_000;
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                if let Err(e) = store.purge_expired(dropcheck_core::now_ms()).await {
                    tracing::warn!(error = ?e, "housekeeping failed");
                }
                match store.purge_old_webhooks(dropcheck_core::now_ms() - retention_ms).await {
                    Ok(p) if p.receipts + p.events > 0 => {
                        tracing::info!(
                            receipts = p.receipts,
                            events = p.events,
                            "old webhook receipts and events purged (DROPCHECK_RETENTION_DAYS)"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = ?e, "retention purge failed"),
                }
            }
        });
        // The reuse index is filled in the background: start-up does not wait for the archive.
        let warm = self.state.store.clone();
        let reuse_index = tokio::spawn(async move {
            let started = std::time::Instant::now();
            match warm.refresh_reuse_index().await {
                Ok(n) => tracing::info!(photos = n, ms = started.elapsed().as_millis() as u64, "reuse index loaded"),
                Err(e) => tracing::error!(error = ?e, "loading the reuse index failed; the first lookup loads it"),
            }
        });
        let mut workers = if self.background_workers { self.workers.spawn() } else { Vec::new() };
        if let Some(l) = self.metrics_listener {
            let addr = l.local_addr().ok();
            let router = metrics::open_router(self.state.store.clone(), self.messaging.clone());
            tracing::info!(addr = ?addr, "metrics listener (DROPCHECK_METRICS_ADDR): /metrics without an API key");
            workers.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            }));
        }
        workers.push(reuse_index);
        workers.push(self.integrations.clone().watch());
        let res = serve(self.listener, self.router, self.timeouts, shutdown_signal()).await;
        housekeeping.abort();
        for w in workers {
            w.abort();
        }
        res
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then lets open requests finish
/// (at most 10 s). Each request carries the peer's address (`ConnectInfo`); a client that
/// does not send its headers within `timeouts.header` is disconnected (axum::serve has no
/// such timeout, so slow clients could hold connections open).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { tower::Service::call(&mut router, req.map(axum::body::Body::new)).await }
        });
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open 10 s after shutdown began");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
