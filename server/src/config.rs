//! Configuration from the environment (and a `.env` file). Every problem is reported as one
//! line naming the variable, and stops start-up.

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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("bridge_api_key", &self.bridge_api_key.as_ref().map(|_| "[set]"))
            .field("site_addr", &self.site_addr)
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
        if let Some(p) = var("DROPCHECK_PROVIDER") {
            if p != "sandbox" {
                return Err(format!("DROPCHECK_PROVIDER={p} is not available in this version; use sandbox (the default)"));
            }
        }
        Ok(Config { data_dir, database_url, public_url: public_url.trim_end_matches('/').to_string(), bridge_api_key, site_addr })
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
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
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("key-that-is-secret"), "{shown}");
    }
}
