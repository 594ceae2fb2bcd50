//! Password hashing (argon2id, OWASP parameters) and API-key hashing.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

use crate::error::{CoreError, CoreResult, InputError};

fn argon2() -> Argon2<'static> {
    // OWASP / ASVS 5.0: argon2id, m = 19 MiB, t = 2, p = 1 (~24 ms per hash on one core here).
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// At most one hash per core at a time, so a login flood cannot starve everything else.
static HASH_PERMITS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))));

/// Checked on the way in: 8–128 characters (ASVS: no composition rules).
pub fn check_password_policy(password: &str) -> Result<(), InputError> {
    let n = password.chars().count();
    if n < 8 {
        return Err(InputError::new("weak_password", "a password needs at least 8 characters"));
    }
    if n > 128 {
        return Err(InputError::new("invalid_password", "a password can have at most 128 characters"));
    }
    Ok(())
}

pub async fn hash_password(password: String) -> CoreResult<String> {
    let _permit = HASH_PERMITS.clone().acquire_owned().await.map_err(|e| CoreError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| CoreError::Internal(e.to_string()))?
    .map_err(|e| CoreError::Internal(format!("hashing failed: {e}")))
}

/// The hash of a random password, verified against when the user is unknown so the
/// response time does not reveal which accounts exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    let random: [u8; 16] = rand::thread_rng().gen();
    argon2().hash_password(&random, &salt).map(|h| h.to_string()).unwrap_or_default()
});

/// Verifies `password` against `hash` (or the dummy hash when `hash` is `None`, always false).
pub async fn verify_password(password: String, hash: Option<String>) -> CoreResult<bool> {
    let _permit = HASH_PERMITS.clone().acquire_owned().await.map_err(|e| CoreError::Internal(e.to_string()))?;
    let known = hash.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&hash).map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
    })
    .await
    .map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(ok && known)
}

/// API keys are 32 random bytes; being high-entropy, a SHA-256 of them is safe to store.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new API key: `dc_` + 40 hex characters. Returns (key, prefix shown in lists).
pub fn new_api_key() -> (String, String) {
    let bytes: [u8; 20] = rand::thread_rng().gen();
    let key = format!("dc_{}", hex::encode(bytes));
    let prefix = key[..9].to_string();
    (key, prefix)
}

/// `n` random bytes as hex (tokens that are never shown, e.g. the sandbox's signing key).
pub fn random_token(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::thread_rng().gen()).collect();
    hex::encode(bytes)
}

/// HMAC-SHA256 of `msg` under `key`, as hex: a token that proves this server minted `msg`.
pub fn sign(key: &[u8], msg: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is [`sign`]`(key, msg)`, compared in constant time.
pub fn verify_signed(key: &[u8], msg: &str, signature: &str) -> bool {
    secret_eq(&sign(key, msg), signature)
}

/// Constant-time equality for secrets.
pub fn secret_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (ha, hb) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    ha.ct_eq(&hb).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_owasp_argon2id_and_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!verify_password("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[test]
    fn password_policy_and_key_helpers() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough").is_ok());
        let (k, p) = new_api_key();
        assert!(k.starts_with(&p) && k.len() == 43);
        assert_ne!(hash_api_key(&k), k);
        assert!(secret_eq("abc", "abc") && !secret_eq("abc", "abd"));
        let t = sign(b"key", "sandbox-media abc image/png");
        assert!(verify_signed(b"key", "sandbox-media abc image/png", &t));
        assert!(!verify_signed(b"key", "sandbox-media abc text/html", &t));
        assert!(!verify_signed(b"other", "sandbox-media abc image/png", &t));
    }
}
