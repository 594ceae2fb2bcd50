//! The WhatsApp provider's settings as admins enter them under Settings → Integrations
//! (or sets in the environment, which wins): which provider is active and its credentials.
//!
//! Every setting has the name of its environment variable. A value from the environment
//! always wins over one stored here, and the page shows it as coming from the environment.
//! Stored secrets (tokens, app secrets) are encrypted with XChaCha20-Poly1305 under a key
//! derived from the server's secret key (`DROPCHECK_SECRET_KEY` or `<data dir>/secret.key`),
//! with the setting's name as associated data, so a ciphertext cannot be moved to another
//! setting. A secret is never shown back: only that it is set and its last four characters.

use std::collections::BTreeMap;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{CoreError, CoreResult, InputError};
use crate::providers::Provider;
use crate::store::{on_db, on_tx, Db, Store};

/// The setting that chooses the provider.
pub const PROVIDER: &str = "DROPCHECK_PROVIDER";

pub use crate::myoperator::{
    MyOperatorSettings, MYOPERATOR_API_BASE, MYOPERATOR_API_KEY, MYOPERATOR_COMPANY_ID, MYOPERATOR_PHONE_NUMBER_ID, MYOPERATOR_WABA_ID,
};

/// Where a setting belongs on the page: a WhatsApp provider's credentials, or the vision
/// model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Provider(Provider),
    Vision,
    /// MyOperator, the notifications API's send-only channel.
    MyOperator,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Provider(p) => p.as_str(),
            Section::Vision => "vision",
            Section::MyOperator => "myoperator",
        }
    }
}

/// One credential or option of a provider, or of the vision model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The environment variable, also the stored setting's name.
    pub name: &'static str,
    pub section: Section,
    pub label: &'static str,
    /// Where to find it in the provider's console.
    pub help: &'static str,
    pub secret: bool,
    /// Used when neither the environment nor the settings give a value (`None`: required).
    pub default: Option<&'static str>,
    /// Only the environment sets it (the API bases exist for tests and proxies, and an
    /// admin form must not send the tokens somewhere else).
    pub env_only: bool,
}

const fn field(name: &'static str, provider: Provider, label: &'static str, help: &'static str, secret: bool) -> Field {
    Field { name, section: Section::Provider(provider), label, help, secret, default: None, env_only: false }
}

const fn vision_field(name: &'static str, label: &'static str, help: &'static str, secret: bool) -> Field {
    Field { name, section: Section::Vision, label, help, secret, default: None, env_only: false }
}

const fn myop_field(name: &'static str, label: &'static str, help: &'static str, secret: bool) -> Field {
    Field { name, section: Section::MyOperator, label, help, secret, default: None, env_only: false }
}

/// Every provider setting, then the vision model's, in the order the page shows them.
pub const FIELDS: &[Field] = &[
    field("TWILIO_ACCOUNT_SID", Provider::Twilio, "Account SID", "Twilio Console → Account info (AC…)", false),
    field("TWILIO_AUTH_TOKEN", Provider::Twilio, "Auth token", "Twilio Console → Account info; also verifies X-Twilio-Signature", true),
    field("TWILIO_WHATSAPP_NUMBER", Provider::Twilio, "WhatsApp sender number", "the approved WhatsApp sender, e.g. +14155238886", false),
    Field {
        default: Some("https://api.twilio.com"),
        env_only: true,
        ..field("TWILIO_API_BASE", Provider::Twilio, "API base URL", "set only in the environment", false)
    },
    field("META_ACCESS_TOKEN", Provider::Meta, "Access token", "a system user's permanent token (WhatsApp Manager)", true),
    field("META_PHONE_NUMBER_ID", Provider::Meta, "Phone number ID", "WhatsApp → API setup → Phone number ID", false),
    field("META_APP_SECRET", Provider::Meta, "App secret", "App settings → Basic; verifies X-Hub-Signature-256", true),
    field("META_VERIFY_TOKEN", Provider::Meta, "Verify token", "any string; enter the same in the webhook's configuration", true),
    Field { default: Some("v21.0"), ..field("META_API_VERSION", Provider::Meta, "Graph API version", "e.g. v21.0", false) },
    Field {
        default: Some("https://graph.facebook.com"),
        env_only: true,
        ..field("META_API_BASE", Provider::Meta, "API base URL", "set only in the environment", false)
    },
    vision_field(
        VISION_URL,
        "Endpoint",
        "an OpenAI-compatible API's base, e.g. https://api.openai.com or http://localhost:11434 (Ollama)",
        false,
    ),
    vision_field(VISION_MODEL, "Model", "a model that reads images, e.g. gpt-4o-mini or llava", false),
    vision_field(VISION_API_KEY, "API key", "sent as a bearer token; leave unset for a local server that needs none", true),
    myop_field(MYOPERATOR_API_KEY, "API key", "MyOperator panel → Manage → WhatsApp APIs", true),
    myop_field(MYOPERATOR_COMPANY_ID, "Company ID", "sent as X-MYOP-COMPANY-ID", false),
    myop_field(MYOPERATOR_PHONE_NUMBER_ID, "Phone number ID", "the WhatsApp number's id in MyOperator", false),
    myop_field(MYOPERATOR_WABA_ID, "WABA ID", "the WhatsApp Business Account's id", false),
    Field {
        default: Some("https://publicapi.myoperator.co"),
        env_only: true,
        ..myop_field(MYOPERATOR_API_BASE, "API base URL", "set only in the environment", false)
    },
];

/// The vision model's settings (see [`crate::vision::VisionConfig`]).
pub const VISION_URL: &str = "DROPCHECK_VISION_URL";
pub const VISION_MODEL: &str = "DROPCHECK_VISION_MODEL";
pub const VISION_API_KEY: &str = "DROPCHECK_VISION_API_KEY";

pub fn field_named(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    Settings,
    Default,
    Unset,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Environment => "environment",
            Source::Settings => "settings",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }
}

/// The provider settings present in the environment, read once at start-up. Its Debug
/// output shows only which secrets are set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderEnv(BTreeMap<&'static str, String>);

impl ProviderEnv {
    /// Reads `DROPCHECK_PROVIDER` and every variable of [`FIELDS`] (blank counts as unset).
    pub fn from_env() -> Self {
        Self::from_pairs(
            std::iter::once(PROVIDER).chain(FIELDS.iter().map(|f| f.name)).filter_map(|n| std::env::var(n).ok().map(|v| (n, v))),
        )
    }

    /// Known names only; blank values count as unset.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            let known = if name == PROVIDER { Some(PROVIDER) } else { field_named(name).map(|f| f.name) };
            let value = value.trim().to_string();
            if let Some(n) = known.filter(|_| !value.is_empty()) {
                map.insert(n, value);
            }
        }
        Self(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for ProviderEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            if field_named(k).is_some_and(|f| f.secret) {
                m.entry(k, &"[set]");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// The settings stored in the database, secrets decrypted. Its Debug output hides them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredSettings {
    pub values: BTreeMap<String, String>,
    /// When and by whom they last changed.
    pub updated_at: Option<i64>,
    pub updated_by: Option<String>,
}

impl std::fmt::Debug for StoredSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSettings").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

/// One setting as it is in effect.
#[derive(Clone, PartialEq, Eq)]
pub struct EffectiveField {
    pub field: &'static Field,
    pub value: Option<String>,
    pub source: Source,
}

impl EffectiveField {
    /// What may be shown of the value: all of it, or for a secret only "set · …abcd".
    pub fn display(&self) -> String {
        match (&self.value, self.field.secret) {
            (None, _) => String::new(),
            (Some(v), false) => v.clone(),
            (Some(v), true) => {
                let chars: Vec<char> = v.chars().collect();
                // Short secrets show less, so that most of one is never on the page.
                let shown = if chars.len() >= 12 { 4 } else { chars.len() / 4 };
                let tail: String = chars[chars.len() - shown..].iter().collect();
                if tail.is_empty() {
                    "set".into()
                } else {
                    format!("set · …{tail}")
                }
            }
        }
    }
}

impl std::fmt::Debug for EffectiveField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectiveField")
            .field("name", &self.field.name)
            .field("value", &self.display())
            .field("source", &self.source)
            .finish()
    }
}

/// The provider and its settings in effect: the environment's, else the stored ones, else
/// the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub provider: Provider,
    pub provider_source: Source,
    pub fields: Vec<EffectiveField>,
}

impl Effective {
    pub fn resolve(env: &ProviderEnv, stored: &StoredSettings) -> Result<Self, InputError> {
        let (provider, provider_source) = match (env.get(PROVIDER), stored.values.get(PROVIDER)) {
            (Some(p), _) => {
                (Provider::parse(p).map_err(|e| InputError::new(e.code, format!("{PROVIDER}: {}", e.message)))?, Source::Environment)
            }
            (None, Some(p)) => (Provider::parse(p)?, Source::Settings),
            (None, None) => (Provider::Sandbox, Source::Default),
        };
        let fields = FIELDS
            .iter()
            .map(|f| {
                let (value, source) = if let Some(v) = env.get(f.name) {
                    (Some(v.to_string()), Source::Environment)
                } else if let Some(v) = stored.values.get(f.name).filter(|_| !f.env_only) {
                    (Some(v.clone()), Source::Settings)
                } else if let Some(d) = f.default {
                    (Some(d.to_string()), Source::Default)
                } else {
                    (None, Source::Unset)
                };
                EffectiveField { field: f, value, source }
            })
            .collect();
        Ok(Self { provider, provider_source, fields })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.field.name == name).and_then(|f| f.value.as_deref())
    }

    /// The vision model these settings configure, if any.
    pub fn vision(&self) -> Result<Option<crate::vision::VisionConfig>, InputError> {
        crate::vision::VisionConfig::from_settings(self.get(VISION_URL), self.get(VISION_MODEL), self.get(VISION_API_KEY))
    }

    /// A setting the active provider needs, or an error naming it.
    pub fn required(&self, name: &str) -> Result<&str, InputError> {
        self.get(name).ok_or_else(|| {
            InputError::new(
                "missing_setting",
                format!(
                    "{name} is required when the provider is {} (set it in the environment or under Settings → Integrations)",
                    self.provider.as_str()
                ),
            )
        })
    }
}

// ------------------------------------------------------------------ encryption

fn cipher(secret_key: &[u8; 32]) -> XChaCha20Poly1305 {
    // A key of its own for this purpose, derived from the server's secret key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_key).expect("HMAC takes any key length");
    mac.update(b"dropcheck integration settings v1");
    let key = mac.finalize().into_bytes();
    XChaCha20Poly1305::new(&key)
}

/// The provider as Settings → Integrations shows it to admins. The server fills it in (it owns
/// the provider clients and the webhooks' last-seen times); the page formats it.
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    /// The provider in effect now.
    pub active: Provider,
    /// The settings in effect: the provider they choose, each field's value and its source.
    pub effective: Effective,
    /// The addresses to enter at the provider: what each is for, and the URL.
    pub webhooks: Vec<(String, String)>,
    /// The last webhook from the active provider: when, and why it was refused if it was.
    pub last_webhook: Option<(i64, Option<String>)>,
    /// When the stored settings were last saved, and by whom.
    pub updated: Option<(i64, String)>,
    /// Why the stored settings cannot be read (e.g. the secret key changed), if they cannot.
    pub error: Option<String>,
}

/// What a test send from Settings → Integrations came to: the provider it went through and
/// the message as it stands.
#[derive(Debug, Clone)]
pub struct TestSendOutcome {
    pub provider: Provider,
    pub message: crate::store::MessageRow,
}

/// `v1:` + base64(nonce ‖ ciphertext), the setting's name as associated data.
pub fn encrypt(secret_key: &[u8; 32], name: &str, plaintext: &str) -> String {
    let nonce_bytes: [u8; 24] = rand::random();
    let nonce = XNonce::from_slice(&nonce_bytes);
    let sealed = cipher(secret_key)
        .encrypt(nonce, Payload { msg: plaintext.as_bytes(), aad: name.as_bytes() })
        .expect("XChaCha20-Poly1305 encrypts any message of this size");
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&sealed);
    format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(out))
}

pub fn decrypt(secret_key: &[u8; 32], name: &str, stored: &str) -> CoreResult<String> {
    let unreadable = || {
        CoreError::Internal(format!(
            "the stored {name} cannot be decrypted: the server's secret key (DROPCHECK_SECRET_KEY or secret.key) is not the one it was saved with; \
             set {name} in the environment or enter it again under Settings → Integrations"
        ))
    };
    let raw = stored.strip_prefix("v1:").ok_or_else(unreadable)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).map_err(|_| unreadable())?;
    if bytes.len() < 24 {
        return Err(unreadable());
    }
    let (nonce, sealed) = bytes.split_at(24);
    let plain =
        cipher(secret_key).decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: name.as_bytes() }).map_err(|_| unreadable())?;
    String::from_utf8(plain).map_err(|_| unreadable())
}

// ------------------------------------------------------------------ storage

/// A change to one stored setting: a new value, or `None` to remove it.
pub type Change = (&'static str, Option<String>);

impl Store {
    /// The stored rows as they are in the database (secrets still encrypted): cheap to
    /// compare, so replicas poll it to notice another replica's change.
    pub async fn integration_rows(&self) -> CoreResult<Vec<(String, String)>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, (String, String)>(
            "select name, value from integration_setting order by name").fetch_all(pool).await?))
    }

    /// The stored settings, secrets decrypted.
    pub async fn integration_settings(&self) -> CoreResult<StoredSettings> {
        let rows: Vec<(String, String, i64, String)> = on_db!(self, pool => sqlx::query_as(
            "select name, value, updated_at, updated_by from integration_setting order by name").fetch_all(pool).await?);
        let key = self.secret_key();
        let mut out = StoredSettings::default();
        for (name, value, at, by) in rows {
            let value = match field_named(&name) {
                Some(f) if f.secret => decrypt(&key, &name, &value)?,
                _ => value,
            };
            if out.updated_at.is_none_or(|t| at > t) {
                out.updated_at = Some(at);
                out.updated_by = Some(by);
            }
            out.values.insert(name, value);
        }
        Ok(out)
    }

    /// Applies the changes in one transaction; secrets are encrypted before they are written.
    pub async fn save_integration_settings(&self, changes: &[Change], by: &str, now: i64) -> CoreResult<()> {
        let key = self.secret_key();
        let mut rows = Vec::with_capacity(changes.len());
        for (name, value) in changes {
            let secret = match (*name, field_named(name)) {
                (PROVIDER, _) => false,
                (_, Some(f)) if !f.env_only => f.secret,
                _ => return Err(InputError::new("unknown_setting", format!("{name} is not a setting that can be stored")).into()),
            };
            let stored = value.as_deref().map(|v| if secret { encrypt(&key, name, v) } else { v.to_string() });
            rows.push((*name, stored));
        }
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                for (name, value) in &rows {
                    match value {
                        Some(v) => sqlx::query(
                            "insert into integration_setting (name, value, updated_at, updated_by) values ($1, $2, $3, $4)
                             on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by")
                            .bind(*name).bind(v).bind(now).bind(by).execute(&mut *c).await?,
                        None => sqlx::query("delete from integration_setting where name = $1").bind(*name).execute(&mut *c).await?,
                    };
                }
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// When the last webhook of `provider` was stored (its signature had verified).
    pub async fn last_webhook_at(&self, provider: Provider) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Option<i64>>(
            "select max(received_at) from webhook_receipt where provider = $1").bind(provider.as_str()).fetch_one(pool).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_are_bound_to_their_name_and_key() {
        let key = [7u8; 32];
        let sealed = encrypt(&key, "TWILIO_AUTH_TOKEN", "tok-0123456789abcdef");
        assert!(!sealed.contains("tok-0123456789abcdef"));
        assert_ne!(sealed, encrypt(&key, "TWILIO_AUTH_TOKEN", "tok-0123456789abcdef"), "a fresh nonce each time");
        assert_eq!(decrypt(&key, "TWILIO_AUTH_TOKEN", &sealed).unwrap(), "tok-0123456789abcdef");
        assert!(decrypt(&key, "META_APP_SECRET", &sealed).is_err(), "moved to another setting");
        assert!(decrypt(&[8u8; 32], "TWILIO_AUTH_TOKEN", &sealed).is_err(), "another key");
        assert!(decrypt(&key, "TWILIO_AUTH_TOKEN", "v1:AAAA").is_err());
        assert!(decrypt(&key, "TWILIO_AUTH_TOKEN", "plain").is_err());
    }

    #[test]
    fn the_environment_wins_then_the_settings_then_the_defaults() {
        let env = ProviderEnv::from_pairs([("TWILIO_AUTH_TOKEN", "env-token-0123456789".to_string()), ("UNRELATED", "x".into())]);
        let mut stored = StoredSettings::default();
        for (k, v) in [
            (PROVIDER, "twilio"),
            ("TWILIO_AUTH_TOKEN", "stored-token"),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_API_BASE", "http://evil.example"),
        ] {
            stored.values.insert(k.into(), v.into());
        }
        let e = Effective::resolve(&env, &stored).unwrap();
        assert_eq!((e.provider, e.provider_source), (Provider::Twilio, Source::Settings));
        let f = |n: &str| e.fields.iter().find(|f| f.field.name == n).unwrap().clone();
        assert_eq!(
            (f("TWILIO_AUTH_TOKEN").value.unwrap(), f("TWILIO_AUTH_TOKEN").source),
            ("env-token-0123456789".into(), Source::Environment)
        );
        assert_eq!(f("TWILIO_ACCOUNT_SID").source, Source::Settings);
        assert_eq!((f("TWILIO_API_BASE").value.unwrap(), f("TWILIO_API_BASE").source), ("https://api.twilio.com".into(), Source::Default));
        assert_eq!(f("TWILIO_WHATSAPP_NUMBER").source, Source::Unset);
        assert_eq!(e.required("TWILIO_WHATSAPP_NUMBER").unwrap_err().code, "missing_setting");
        assert_eq!(f("TWILIO_AUTH_TOKEN").display(), "set · …6789");
        assert_eq!(f("TWILIO_ACCOUNT_SID").display(), "AC1");
        assert!(!format!("{env:?} {e:?} {stored:?}").contains("token-0123456789"), "Debug hides secrets");
        assert!(!format!("{stored:?}").contains("stored-token"));

        let env = ProviderEnv::from_pairs([(PROVIDER, "meta".to_string())]);
        let e = Effective::resolve(&env, &stored).unwrap();
        assert_eq!((e.provider, e.provider_source), (Provider::Meta, Source::Environment));
        let e = Effective::resolve(&ProviderEnv::default(), &StoredSettings::default()).unwrap();
        assert_eq!((e.provider, e.provider_source), (Provider::Sandbox, Source::Default));
        assert!(Effective::resolve(&ProviderEnv::from_pairs([(PROVIDER, "sms".to_string())]), &stored).is_err());
    }

    #[test]
    fn short_secrets_show_less_of_themselves() {
        let f = field_named("META_VERIFY_TOKEN").unwrap();
        let shown = |v: &str| EffectiveField { field: f, value: Some(v.into()), source: Source::Settings }.display();
        assert_eq!(shown("abc"), "set");
        assert_eq!(shown("abcdefgh"), "set · …gh");
        assert_eq!(shown("abcdefghijklmnop"), "set · …mnop");
    }
}
