//! Configuration from the environment (and a `.env` file). Every problem is reported as one
//! line naming the variable, and stops start-up.

use dropcheck_core::integrations::{self, Effective, ProviderEnv};
use dropcheck_core::InputError;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: the SQLite file in the data directory.
    pub database_url: Option<String>,
    pub public_url: String,
    pub bridge_api_key: Option<String>,
    pub site_addr: SocketAddr,
    /// The provider settings found in the environment; they win over those stored under
    /// Settings → Integrations.
    pub provider_env: ProviderEnv,
    /// Signs the sandbox's simulated webhooks (random per process).
    pub sandbox_token: String,
    pub retry: RetryPolicy,
    /// Messages per second per sender number (`DROPCHECK_SEND_RATE`).
    pub send_rate: u32,
    /// The largest inbound media file accepted (`DROPCHECK_MAX_MEDIA_MB`, default 16).
    pub max_media_bytes: u64,
    /// How long a worker's claim on an event or message lasts before another may take it
    /// over (`DROPCHECK_WORKER_LEASE_SECONDS`, default 60).
    pub lease_ms: i64,
    /// `DROPCHECK_SECRET_KEY` (64 hex characters); `None`: generated once into the data
    /// directory (`secret.key`). Keys the hashes of verification codes. Never logged.
    pub secret_key: Option<[u8; 32]>,
    /// `DROPCHECK_TRUSTED_PROXY`: the reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: app::ssr::TrustedProxies,
    /// `DROPCHECK_METRICS_ADDR`: a second listener serving `/metrics` without an API key.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `DROPCHECK_REUSE_HINTS` (off): the crop-tolerant "possibly reused" hints (each server
    /// keeps every photo's pHash in memory too, 8 bytes a photo).
    pub reuse_hints: bool,
    /// `DROPCHECK_RETENTION_DAYS` (90): webhook receipts and finished inbound events older
    /// than this are purged.
    pub retention_days: i64,
    /// How long a client may take to send a request's headers (`DROPCHECK_HEADER_TIMEOUT_SECONDS`, 10).
    pub header_timeout_ms: u64,
    /// How long a request body may take to arrive, and an idle keep-alive connection may stay
    /// open (`DROPCHECK_IDLE_TIMEOUT_SECONDS`, 60).
    pub idle_timeout_ms: u64,
    /// Whether the inbox processor and the outbox sender run in the background (always, in
    /// a real server). Tests turn them off and drive them with `Workers::drain`.
    pub background_workers: bool,
    /// Vision-model requests in flight at once per server (`DROPCHECK_VISION_CONCURRENCY`, 2).
    pub vision_concurrency: usize,
    /// How long one vision-model request may take (`DROPCHECK_VISION_TIMEOUT_SECONDS`, 60).
    pub vision_timeout_ms: u64,
    /// How often held-status automation rules are looked for
    /// (`DROPCHECK_AUTOMATION_SWEEP_SECONDS`, 15).
    pub automation_sweep_ms: u64,
    /// Outbound webhooks may call loopback, private and link-local addresses and plain http
    /// (`DROPCHECK_WEBHOOK_ALLOW_PRIVATE`, false; tests and intranets).
    pub webhook_allow_private: bool,
    /// The delays between webhook attempts (Svix's schedule; tests shorten it).
    pub webhook_schedule_ms: Vec<i64>,
}

impl Config {
    /// The configuration tests start from: a fresh temporary data directory, SQLite in it,
    /// the sandbox provider, a public URL of `http://127.0.0.1`, the bootstrap key
    /// `test-bridge-key-0123456789`, port 0, fast retries and the background workers off (a
    /// test drives them with `Workers::drain`). Tests change what they need with
    /// `Config { field: …, ..Config::for_tests() }`.
    pub fn for_tests() -> Config {
        let data_dir = std::env::temp_dir().join(format!("dropcheck-test-{}", dropcheck_core::auth::random_token(8)));
        Config {
            data_dir,
            database_url: None,
            public_url: "http://127.0.0.1".into(),
            bridge_api_key: Some("test-bridge-key-0123456789".into()),
            site_addr: "127.0.0.1:0".parse().expect("a socket address"),
            provider_env: ProviderEnv::default(),
            sandbox_token: "sandbox-test-token".into(),
            retry: RetryPolicy { base_ms: 10, cap_ms: 100, horizon_ms: 2_000 },
            send_rate: 80,
            max_media_bytes: 16 << 20,
            lease_ms: 60_000,
            secret_key: None,
            trusted_proxies: app::ssr::TrustedProxies::default(),
            metrics_addr: None,
            retention_days: 90,
            reuse_hints: false,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            background_workers: false,
            vision_concurrency: 2,
            vision_timeout_ms: 2_000,
            automation_sweep_ms: 15_000,
            webhook_allow_private: true,
            webhook_schedule_ms: vec![20, 40, 60, 80, 100, 120, 140],
        }
    }
}

/// The server's secret key: from the environment, else the data directory's `secret.key`,
/// created (owner-only) on first start.
pub fn load_secret_key(config: &Config) -> Result<[u8; 32], String> {
    if let Some(k) = config.secret_key {
        return Ok(k);
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read(&path) {
        Ok(bytes) => bytes.as_slice().try_into().map_err(|_| format!("{} must hold 32 bytes; delete it to make a new key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(&key).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The active WhatsApp provider and its credentials. Secrets never reach Debug output.
#[derive(Clone)]
pub enum ProviderConfig {
    /// The built-in simulator. Its inbound messages are Twilio-format requests signed with
    /// this per-process token.
    Sandbox {
        signing_token: String,
    },
    Twilio {
        account_sid: String,
        auth_token: String,
        from: String,
        api_base: String,
    },
    Meta {
        access_token: String,
        phone_number_id: String,
        app_secret: String,
        verify_token: String,
        api_base: String,
        api_version: String,
    },
}

impl ProviderConfig {
    pub fn kind(&self) -> dropcheck_core::providers::Provider {
        use dropcheck_core::providers::Provider;
        match self {
            ProviderConfig::Sandbox { .. } => Provider::Sandbox,
            ProviderConfig::Twilio { .. } => Provider::Twilio,
            ProviderConfig::Meta { .. } => Provider::Meta,
        }
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderConfig::Sandbox { .. } => f.write_str("Sandbox"),
            ProviderConfig::Twilio { account_sid, from, api_base, .. } => f
                .debug_struct("Twilio")
                .field("account_sid", account_sid)
                .field("auth_token", &"[set]")
                .field("from", from)
                .field("api_base", api_base)
                .finish(),
            ProviderConfig::Meta { phone_number_id, api_base, api_version, .. } => f
                .debug_struct("Meta")
                .field("phone_number_id", phone_number_id)
                .field("access_token", &"[set]")
                .field("app_secret", &"[set]")
                .field("verify_token", &"[set]")
                .field("api_base", api_base)
                .field("api_version", api_version)
                .finish(),
        }
    }
}

/// Outbox retries: exponential backoff with full jitter until a deadline;
/// the policy itself is in the core crate, beside the outbox it drives.
pub use dropcheck_core::outbox::RetryPolicy;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("bridge_api_key", &self.bridge_api_key.as_ref().map(|_| "[set]"))
            .field("site_addr", &self.site_addr)
            .field("provider_env", &self.provider_env)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl Config {
    /// Reads the environment. `site_addr` comes from Leptos' own configuration (`LEPTOS_SITE_ADDR`).
    pub fn from_env(site_addr: SocketAddr) -> Result<Config, String> {
        let data_dir = PathBuf::from(var("DROPCHECK_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = var("DATABASE_URL");
        if let Some(url) = &database_url {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(format!("DATABASE_URL must start with sqlite: or postgres:// (got {})", redact_url(url)));
            }
        }
        let public_url = var("DROPCHECK_PUBLIC_URL").unwrap_or_else(|| format!("http://{site_addr}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) || public_url.len() < 10 {
            return Err(format!("DROPCHECK_PUBLIC_URL must be an http:// or https:// URL (got {public_url:?})"));
        }
        let bridge_api_key = var("BRIDGE_API_KEY");
        if let Some(k) = &bridge_api_key {
            if k.len() < 16 {
                return Err("BRIDGE_API_KEY must be at least 16 characters".into());
            }
        }
        let provider_env = ProviderEnv::from_env();
        check_provider_env(&provider_env)?;
        let num = |name: &str, default: i64, min: i64, max: i64| -> Result<i64, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!("{name} must be a whole number from {min} to {max} (got {v:?})")),
                },
            }
        };
        if var("DROPCHECK_RETRY_MAX_ATTEMPTS").is_some() {
            // Retries end at a deadline now, not after a count (a provider outage of a few
            // minutes used to fail every message sent meanwhile).
            tracing::warn!(
                "DROPCHECK_RETRY_MAX_ATTEMPTS is no longer read: messages retry for DROPCHECK_RETRY_FOR_SECONDS (default 86400)"
            );
        }
        let retry = RetryPolicy {
            base_ms: num("DROPCHECK_RETRY_BASE_SECONDS", 10, 0, 86_400)? * 1000,
            cap_ms: num("DROPCHECK_RETRY_CAP_SECONDS", 600, 1, 7 * 86_400)? * 1000,
            horizon_ms: num("DROPCHECK_RETRY_FOR_SECONDS", 86_400, 1, 30 * 86_400)? * 1000,
        };
        let send_rate = num("DROPCHECK_SEND_RATE", 80, 1, 10_000)? as u32;
        let max_media_bytes = num("DROPCHECK_MAX_MEDIA_MB", 16, 1, 100)? as u64 * 1024 * 1024;
        let lease_ms = num("DROPCHECK_WORKER_LEASE_SECONDS", 60, 1, 3600)? * 1000;
        let secret_key = match var("DROPCHECK_SECRET_KEY") {
            None => None,
            Some(hexed) => Some(
                hex::decode(&hexed)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                    .ok_or("DROPCHECK_SECRET_KEY must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`")?,
            ),
        };
        let trusted_proxies = app::ssr::TrustedProxies::parse(&var("DROPCHECK_TRUSTED_PROXY").unwrap_or_default())
            .map_err(|e| format!("DROPCHECK_TRUSTED_PROXY: {e}"))?;
        let metrics_addr = match var("DROPCHECK_METRICS_ADDR").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            Some(a) => Some(a.parse().map_err(|_| format!("DROPCHECK_METRICS_ADDR: '{a}' is not an address like 127.0.0.1:9464"))?),
            None => None,
        };
        let retention_days = num("DROPCHECK_RETENTION_DAYS", 90, 1, 3650)?;
        let header_timeout_ms = num("DROPCHECK_HEADER_TIMEOUT_SECONDS", 10, 1, 600)? as u64 * 1000;
        let idle_timeout_ms = num("DROPCHECK_IDLE_TIMEOUT_SECONDS", 60, 1, 3600)? as u64 * 1000;
        let vision_concurrency = num("DROPCHECK_VISION_CONCURRENCY", 2, 1, 64)? as usize;
        let vision_timeout_ms = num("DROPCHECK_VISION_TIMEOUT_SECONDS", 60, 1, 600)? as u64 * 1000;
        let automation_sweep_ms = num("DROPCHECK_AUTOMATION_SWEEP_SECONDS", 15, 1, 3600)? as u64 * 1000;
        let switch = |name: &str| match std::env::var(name).ok().as_deref().map(str::trim) {
            None | Some("") | Some("false") | Some("0") | Some("off") => Ok(false),
            Some("true") | Some("1") | Some("on") => Ok(true),
            Some(other) => Err(format!("{name} is true or false (on or off), not '{other}'")),
        };
        let webhook_allow_private = switch("DROPCHECK_WEBHOOK_ALLOW_PRIVATE")?;
        let reuse_hints = switch("DROPCHECK_REUSE_HINTS")?;
        Ok(Config {
            automation_sweep_ms,
            webhook_allow_private,
            webhook_schedule_ms: dropcheck_core::webhooks::RETRY_SCHEDULE_MS.to_vec(),
            vision_concurrency,
            vision_timeout_ms,
            trusted_proxies,
            metrics_addr,
            retention_days,
            reuse_hints,
            header_timeout_ms,
            idle_timeout_ms,
            background_workers: true,
            secret_key,
            data_dir,
            database_url,
            public_url: public_url.trim_end_matches('/').to_string(),
            bridge_api_key,
            site_addr,
            provider_env,
            sandbox_token: dropcheck_core::auth::random_token(24),
            retry,
            send_rate,
            max_media_bytes,
            lease_ms,
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Checks what can be checked of the environment's provider settings before the database
/// is open (the stored settings fill the gaps later, see [`ProviderConfig::resolve`]).
fn check_provider_env(env: &ProviderEnv) -> Result<(), String> {
    if let Some(p) = env.get(integrations::PROVIDER) {
        dropcheck_core::providers::Provider::parse(p)
            .map_err(|_| format!("DROPCHECK_PROVIDER must be sandbox, twilio or meta (got {p:?})"))?;
    }
    for name in ["TWILIO_API_BASE", "META_API_BASE"] {
        if let Some(v) = env.get(name) {
            check_base(name, v).map_err(|e| e.message)?;
        }
    }
    if let Some(n) = env.get("TWILIO_WHATSAPP_NUMBER") {
        whatsapp_from(n).map_err(|e| e.message)?;
    }
    Ok(())
}

fn check_base(name: &str, v: &str) -> Result<String, InputError> {
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(InputError::new("invalid_setting", format!("{name} must be an http:// or https:// URL (got {v:?})")));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// `+14155238886` or `whatsapp:+14155238886` → `whatsapp:+14155238886`.
pub(crate) fn whatsapp_from(raw: &str) -> Result<String, InputError> {
    let number = raw.strip_prefix("whatsapp:").unwrap_or(raw);
    let number = dropcheck_core::domain::Phone::parse(number)
        .map_err(|e| InputError::new("invalid_setting", format!("TWILIO_WHATSAPP_NUMBER: {}", e.message)))?;
    Ok(format!("whatsapp:{}", number.as_str()))
}

impl ProviderConfig {
    /// The provider in effect (the environment's settings, else the stored ones, else the
    /// defaults), or an error naming the setting that is missing or wrong. The sandbox signs
    /// its simulated webhooks with `sandbox_token`.
    pub fn resolve(e: &Effective, sandbox_token: &str) -> Result<ProviderConfig, InputError> {
        use dropcheck_core::providers::Provider;
        Ok(match e.provider {
            Provider::Sandbox => ProviderConfig::Sandbox { signing_token: sandbox_token.to_string() },
            Provider::Twilio => ProviderConfig::Twilio {
                account_sid: e.required("TWILIO_ACCOUNT_SID")?.to_string(),
                auth_token: e.required("TWILIO_AUTH_TOKEN")?.to_string(),
                from: whatsapp_from(e.required("TWILIO_WHATSAPP_NUMBER")?)?,
                api_base: check_base("TWILIO_API_BASE", e.required("TWILIO_API_BASE")?)?,
            },
            Provider::Meta => ProviderConfig::Meta {
                access_token: e.required("META_ACCESS_TOKEN")?.to_string(),
                phone_number_id: e.required("META_PHONE_NUMBER_ID")?.to_string(),
                app_secret: e.required("META_APP_SECRET")?.to_string(),
                verify_token: e.required("META_VERIFY_TOKEN")?.to_string(),
                api_base: check_base("META_API_BASE", e.required("META_API_BASE")?)?,
                api_version: e.required("META_API_VERSION")?.to_string(),
            },
        })
    }

    /// The environment variables that give exactly this provider (tests and benchmarks
    /// configure the server this way).
    pub fn as_env(&self) -> ProviderEnv {
        let pairs: Vec<(&str, String)> = match self {
            ProviderConfig::Sandbox { .. } => vec![(integrations::PROVIDER, "sandbox".into())],
            ProviderConfig::Twilio { account_sid, auth_token, from, api_base } => vec![
                (integrations::PROVIDER, "twilio".into()),
                ("TWILIO_ACCOUNT_SID", account_sid.clone()),
                ("TWILIO_AUTH_TOKEN", auth_token.clone()),
                ("TWILIO_WHATSAPP_NUMBER", from.clone()),
                ("TWILIO_API_BASE", api_base.clone()),
            ],
            ProviderConfig::Meta { access_token, phone_number_id, app_secret, verify_token, api_base, api_version } => vec![
                (integrations::PROVIDER, "meta".into()),
                ("META_ACCESS_TOKEN", access_token.clone()),
                ("META_PHONE_NUMBER_ID", phone_number_id.clone()),
                ("META_APP_SECRET", app_secret.clone()),
                ("META_VERIFY_TOKEN", verify_token.clone()),
                ("META_API_BASE", api_base.clone()),
                ("META_API_VERSION", api_version.clone()),
            ],
        };
        ProviderEnv::from_pairs(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        let c = Config {
            data_dir: "d".into(),
            database_url: Some("postgres://a:topsecret@h/db".into()),
            public_url: "http://x".into(),
            bridge_api_key: Some("key-that-is-secret".into()),
            site_addr: "127.0.0.1:1".parse().unwrap(),
            provider_env: ProviderConfig::Meta {
                access_token: "meta-token-secret".into(),
                phone_number_id: "123".into(),
                app_secret: "meta-app-secret".into(),
                verify_token: "meta-verify-secret".into(),
                api_base: "http://127.0.0.1:9".into(),
                api_version: "v21.0".into(),
            }
            .as_env(),
            sandbox_token: "sandbox-token-secret".into(),
            retry: RetryPolicy { base_ms: 10, cap_ms: 100, horizon_ms: 2_000 },
            max_media_bytes: 1,
            ..Config::for_tests()
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("META_PHONE_NUMBER_ID"), "{shown}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("key-that-is-secret") && !shown.contains("sandbox-token-secret"),
            "{shown}"
        );
        assert!(
            !shown.contains("meta-token-secret") && !shown.contains("meta-app-secret") && !shown.contains("meta-verify-secret"),
            "{shown}"
        );
    }
}
