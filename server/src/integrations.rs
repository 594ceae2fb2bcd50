//! Settings → Integrations, the server's half: the provider in effect is built from the
//! environment and the stored settings ([`dropcheck_core::integrations`]), switched while the
//! server runs when an admin saves, and picked up by other replicas from the database within
//! a few seconds. Also the page's panel (sources, webhook addresses, the last webhook seen)
//! and the test send.

use crate::config::ProviderConfig;
use crate::workers::{self, Messaging};
use app::ssr::{BoxFuture, ProviderSettings};
use dropcheck_core::domain::Phone;
use dropcheck_core::integrations::{
    field_named, Change, Effective, ProviderEnv, ProviderStatus, StoredSettings, TestSendOutcome, PROVIDER,
};
use dropcheck_core::providers::Provider;
use dropcheck_core::store::{Store, User};
use dropcheck_core::{now_ms, CoreError, CoreResult, InputError};
use std::sync::Arc;
use std::time::Duration;

/// How often a replica looks for settings another replica saved.
const WATCH_EVERY: Duration = Duration::from_secs(5);

pub struct Integrations {
    store: Store,
    messaging: Arc<Messaging>,
    env: ProviderEnv,
    public_url: String,
    sandbox_token: String,
    /// The stored rows (as in the database, secrets encrypted) the active provider was built
    /// from; a reload with the same rows changes nothing.
    seen: tokio::sync::Mutex<Option<Vec<(String, String)>>>,
}

/// A core error as one line for start-up.
pub fn one_line(e: CoreError) -> String {
    match e {
        CoreError::Input(i) => i.message,
        CoreError::Internal(m) => m,
        other => other.to_string(),
    }
}

pub use dropcheck_core::providers::TWILIO_RETRY_FRAGMENT;

impl Integrations {
    pub fn new(store: Store, messaging: Arc<Messaging>, env: ProviderEnv, public_url: String, sandbox_token: String) -> Self {
        Self { store, messaging, env, public_url, sandbox_token, seen: Default::default() }
    }

    /// Builds the provider from the environment and the stored settings when they changed
    /// since the last time, and makes it the active one. Returns whether it did.
    pub async fn reload(&self) -> CoreResult<bool> {
        let rows = self.store.integration_rows().await?;
        let mut seen = self.seen.lock().await;
        if seen.as_ref() == Some(&rows) {
            return Ok(false);
        }
        let stored = self.store.integration_settings().await?;
        let effective = Effective::resolve(&self.env, &stored)?;
        let provider = ProviderConfig::resolve(&effective, &self.sandbox_token)?;
        let vision = effective.vision()?;
        let myoperator = effective.myoperator()?;
        tracing::info!(provider = ?provider, vision = ?vision, myoperator = ?myoperator, "messaging provider, vision model and MyOperator");
        self.messaging.set_provider(provider);
        self.messaging.vision.set_config(&self.store, vision);
        self.messaging.set_myoperator(myoperator);
        *seen = Some(rows);
        Ok(true)
    }

    /// Looks for changes another replica saved, every few seconds, until aborted.
    pub fn watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            let mut last_error = String::new();
            loop {
                tick.tick().await;
                match self.reload().await {
                    Ok(_) => last_error.clear(),
                    Err(e) => {
                        let line = one_line(e);
                        if line != last_error {
                            tracing::error!(error = %line, "the stored provider settings cannot be used; the provider stays as it was");
                            last_error = line;
                        }
                    }
                }
            }
        })
    }

    /// The webhook addresses to configure at the provider. Twilio's carries its connection
    /// overrides as a fragment, which Twilio reads and does not send: without `rp=all` Twilio
    /// retries only a failed connection, never a 5xx, so a webhook this server answered 503
    /// when overloaded would be lost. The signature check accepts the address with the
    /// fragment or without it (Twilio does not say which it signs).
    fn webhooks(&self, provider: Provider) -> Vec<(String, String)> {
        let base = self.public_url.trim_end_matches('/');
        match provider {
            Provider::Twilio => vec![
                (
                    "Twilio: “A message comes in” (HTTP POST; keep the ending #rc=5&rp=all: with it Twilio retries when Dropcheck is busy)"
                        .into(),
                    format!("{base}/webhooks/twilio{TWILIO_RETRY_FRAGMENT}"),
                ),
                (
                    "Twilio: status callback (sent with each message)".into(),
                    format!("{base}/webhooks/twilio/status{TWILIO_RETRY_FRAGMENT}"),
                ),
            ],
            Provider::Meta => vec![("Meta: callback URL (GET verification, POST events)".into(), format!("{base}/webhooks/meta"))],
            Provider::Sandbox => vec![("Sandbox: the simulator posts signed requests to".into(), format!("{base}/webhooks/twilio"))],
        }
    }

    async fn panel_now(&self) -> CoreResult<ProviderStatus> {
        let (stored, error) = match self.store.integration_settings().await {
            Ok(s) => (s, None),
            Err(e) => {
                let line = one_line(e);
                tracing::error!(error = %line, "stored provider settings unreadable");
                (StoredSettings::default(), Some(line))
            }
        };
        let effective = Effective::resolve(&self.env, &stored)?;
        let active = self.messaging.provider().kind();
        let accepted = self.store.last_webhook_at(active).await?;
        let refused = self.messaging.last_refused().filter(|r| r.provider == active);
        let last_webhook = match (accepted, refused) {
            (_, Some(r)) if accepted.is_none_or(|at| r.at > at) => Some((r.at, Some(r.what.to_string()))),
            (Some(at), _) => Some((at, None)),
            _ => None,
        };
        Ok(ProviderStatus {
            active,
            effective,
            webhooks: self.webhooks(active),
            last_webhook,
            updated: stored.updated_at.map(|at| (at, stored.updated_by.unwrap_or_default())),
            error,
        })
    }

    async fn save_now(&self, provider: Option<String>, values: Vec<(String, String)>, by: &User) -> CoreResult<()> {
        let mut changes: Vec<Change> = Vec::new();
        if let Some(p) = provider {
            let p = Provider::parse(&p)?;
            if let Some(env) = self.env.get(PROVIDER) {
                if Provider::parse(env).ok() != Some(p) {
                    return Err(CoreError::conflict(
                        "set_by_environment",
                        format!("DROPCHECK_PROVIDER is set to {env} in the server's environment; change it there."),
                    ));
                }
            } else {
                changes.push((PROVIDER, Some(p.as_str().to_string())));
            }
        }
        for (name, value) in values {
            let Some(f) = field_named(&name).filter(|f| !f.env_only) else {
                return Err(InputError::new("unknown_setting", format!("{name} cannot be set here")).into());
            };
            let value = value.trim();
            if self.env.get(f.name).is_some() {
                if value.is_empty() {
                    continue;
                }
                return Err(CoreError::conflict(
                    "set_by_environment",
                    format!("{} is set in the server's environment, which wins; change it there.", f.name),
                ));
            }
            if value.is_empty() || f.default == Some(value) {
                // A blank secret keeps the stored one (it is never shown, so the form is blank);
                // a blank or default value of another setting falls back to the default.
                if !f.secret {
                    changes.push((f.name, None));
                }
                continue;
            }
            changes.push((f.name, Some(check_value(f.name, value)?)));
        }
        // Nothing is stored unless the provider it gives can be used.
        let mut candidate = self.store.integration_settings().await?;
        for (name, value) in &changes {
            match value {
                Some(v) => candidate.values.insert(name.to_string(), v.clone()),
                None => candidate.values.remove(*name),
            };
        }
        let effective = Effective::resolve(&self.env, &candidate)?;
        ProviderConfig::resolve(&effective, &self.sandbox_token)?;
        effective.vision()?;
        effective.myoperator()?;
        self.store.save_integration_settings(&changes, &by.email, now_ms()).await?;
        let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
        tracing::info!(user_id = by.user_id.get(), provider = effective.provider.as_str(), settings = ?names, "integration settings saved");
        self.reload().await?;
        Ok(())
    }

    async fn send_test_now(&self, phone: String, by: &User) -> CoreResult<TestSendOutcome> {
        let phone = Phone::parse(&phone)?;
        let provider = self.messaging.provider().kind();
        let body = format!("Test message from Dropcheck through {}, sent by {}.", provider.as_str(), by.email.as_str());
        let id = self.store.queue_message(&phone, &body, None, now_ms()).await?;
        tracing::info!(user_id = by.user_id.get(), message_id = id.get(), provider = provider.as_str(), "test message");
        let mut row = workers::send_now(&self.store, &self.messaging, id).await?;
        // The sender may have claimed it first: wait (a little) for its outcome, which is what
        // the admin wants to see.
        for _ in 0..100 {
            // Still queued after an attempt means it failed and waits for a retry: say so now.
            let pending = row.status == "sending" || (row.status == "queued" && row.attempts == 0);
            if !pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            row = self.store.message(id).await?;
        }
        Ok(TestSendOutcome { provider, message: row })
    }
}

/// Checks one value an admin entered; returns it as it is stored.
fn check_value(name: &'static str, v: &str) -> Result<String, InputError> {
    let bad = |why: &str| InputError::new("invalid_setting", format!("{name}: {why}"));
    if v.chars().count() > 512 || v.chars().any(char::is_control) {
        return Err(bad("at most 512 characters, on one line"));
    }
    match name {
        "TWILIO_ACCOUNT_SID" if !(v.len() == 34 && v.starts_with("AC") && v[2..].chars().all(|c| c.is_ascii_hexdigit())) => {
            Err(bad("an account SID is AC followed by 32 hexadecimal characters"))
        }
        // Stored as E.164; the adapter adds the `whatsapp:` prefix.
        "TWILIO_WHATSAPP_NUMBER" => Ok(crate::config::whatsapp_from(v)?.trim_start_matches("whatsapp:").to_string()),
        "META_PHONE_NUMBER_ID" if !v.chars().all(|c| c.is_ascii_digit()) => Err(bad("the phone number ID is digits only")),
        "META_API_VERSION"
            if !(v.starts_with('v') && v[1..].split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))) =>
        {
            Err(bad("a Graph API version looks like v21.0"))
        }
        _ if v.chars().any(char::is_whitespace) && field_named(name).is_some_and(|f| f.secret) => Err(bad("tokens contain no spaces")),
        _ => Ok(v.to_string()),
    }
}

impl ProviderSettings for Integrations {
    fn active(&self) -> &'static str {
        self.messaging.provider().kind().as_str()
    }

    fn panel(&self) -> BoxFuture<'_, CoreResult<ProviderStatus>> {
        Box::pin(self.panel_now())
    }

    fn save<'a>(&'a self, provider: Option<String>, values: Vec<(String, String)>, by: &'a User) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(self.save_now(provider, values, by))
    }

    fn send_test<'a>(&'a self, phone: String, by: &'a User) -> BoxFuture<'a, CoreResult<TestSendOutcome>> {
        Box::pin(self.send_test_now(phone, by))
    }
}

#[cfg(test)]
mod tests {
    use super::check_value;

    #[test]
    fn entered_values_are_checked_and_normalised() {
        assert_eq!(check_value("TWILIO_WHATSAPP_NUMBER", "whatsapp:+1 415 523 8886").unwrap(), "+14155238886");
        assert_eq!(check_value("TWILIO_WHATSAPP_NUMBER", "12").unwrap_err().code, "invalid_setting");
        assert!(check_value("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_value("TWILIO_ACCOUNT_SID", "AC123").is_err());
        assert!(check_value("META_PHONE_NUMBER_ID", "10987654321").is_ok());
        assert!(check_value("META_PHONE_NUMBER_ID", "1098x").is_err());
        assert!(check_value("META_API_VERSION", "v21.0").is_ok());
        assert!(check_value("META_API_VERSION", "21").is_err());
        assert!(check_value("TWILIO_AUTH_TOKEN", "two words").is_err());
        assert!(check_value("META_VERIFY_TOKEN", "line\nbreak").is_err());
    }
}
