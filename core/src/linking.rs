//! Phone linking: a signed-in user proves they own a WhatsApp number by sending
//! `VERIFY 123456` from it. The code is random, shown once, stored only as an HMAC under the
//! server's secret key, expires after 10 minutes, works once, and is locked after 5 wrong
//! attempts. A number links to one account at a time; a user links one number.

use crate::ids::UserId;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;
use sqlx::FromRow;

use crate::domain::Phone;
use crate::error::{CoreError, CoreResult};
use crate::store::{on_db, on_tx, Db, Store, Tx};

/// A code works for this long.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// After this many wrong codes the pending link is locked (start again for a new code).
pub const MAX_WRONG_CODES: i64 = 5;

/// A user's phone link: pending (a code is out) or verified.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct PhoneLink {
    pub user_id: UserId,
    pub phone: Phone,
    pub verified_at: Option<i64>,
    pub code_expires_at: Option<i64>,
    /// Wrong codes so far.
    pub attempts: i64,
    pub created_at: i64,
}

impl PhoneLink {
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
    pub fn is_locked(&self) -> bool {
        self.verified_at.is_none() && self.attempts >= MAX_WRONG_CODES
    }
}

/// A fresh code, to show to the user once.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub phone: Phone,
    pub code: String,
    pub expires_at: i64,
}

/// What a `VERIFY` (or the API's verify) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The number is now linked to this user.
    Linked {
        user_id: UserId,
    },
    /// It already was.
    AlreadyLinked {
        user_id: UserId,
    },
    /// Wrong code; this many attempts are left.
    Wrong {
        left: i64,
    },
    Expired,
    /// Too many wrong codes: refused even with the right one.
    Locked,
    /// No link was started for this number.
    NoPendingLink,
}

impl VerifyOutcome {
    /// The outcome as the API reports it: the linked user, or why not (a used code too).
    pub fn into_result(self) -> CoreResult<UserId> {
        match self {
            VerifyOutcome::Linked { user_id } => Ok(user_id),
            VerifyOutcome::AlreadyLinked { .. } => {
                Err(CoreError::conflict("code_used", "This code was already used: the number is linked. A new link needs a new code."))
            }
            VerifyOutcome::Wrong { left } => Err(crate::InputError::new(
                "wrong_code",
                format!("That code is not right; {left} attempt{} left.", if left == 1 { "" } else { "s" }),
            )
            .into()),
            VerifyOutcome::Expired => {
                Err(crate::InputError::new("code_expired", "The code has expired; start the link again for a new one.").into())
            }
            VerifyOutcome::Locked => {
                Err(CoreError::conflict("code_locked", "Too many wrong codes: this link is locked. Start the link again for a new code."))
            }
            VerifyOutcome::NoPendingLink => {
                Err(CoreError::not_found("no_pending_link", "No link was started for this number (or the code was already used)."))
            }
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn code_hash(key: &[u8; 32], phone: &str, code: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(phone.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Store {
    /// Starts (or restarts) linking `phone` to the user: a new code replaces any earlier one
    /// and any other number the user had. Refused when the number is linked to someone else.
    pub async fn start_phone_link(&self, user_id: UserId, phone: &Phone, now: i64) -> CoreResult<NewCode> {
        let owner: Option<UserId> = on_db!(self, pool => sqlx::query_scalar(
            "select user_id from phone_link where phone = $1 and verified_at is not null")
            .bind(phone.as_str()).fetch_optional(pool).await?);
        if owner.is_some_and(|o| o != user_id) {
            return Err(CoreError::conflict(
                "phone_linked_elsewhere",
                "This number is linked to another account; it must be unlinked there first.",
            ));
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let hash = code_hash(&self.secret_key(), phone.as_str(), &code);
        let expires_at = now + CODE_TTL_MS;
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                sqlx::query("delete from phone_link where user_id = $1").bind(user_id).execute(&mut *c).await?;
                sqlx::query(
                    "insert into phone_link (user_id, phone, code_hash, code_expires_at, attempts, created_at) values ($1, $2, $3, $4, 0, $5)")
                    .bind(user_id).bind(phone.as_str()).bind(&hash).bind(expires_at).bind(now).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        Ok(NewCode { phone: phone.clone(), code, expires_at })
    }

    /// Checks a code sent for `phone` (from that WhatsApp number, or through the API for
    /// `user_id`). A right code links the number and is used up; a wrong one counts toward
    /// the lock.
    pub async fn verify_phone_link(&self, phone: &Phone, code: &str, user_id: Option<UserId>, now: i64) -> CoreResult<VerifyOutcome> {
        let mut tx = self.begin().await?;
        let out = tx.verify_phone_link(&self.secret_key(), phone, code, user_id, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The user's link (pending or verified), if any.
    pub async fn phone_link(&self, user_id: UserId) -> CoreResult<Option<PhoneLink>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, PhoneLink>(
            "select user_id, phone, verified_at, code_expires_at, attempts, created_at from phone_link where user_id = $1")
            .bind(user_id).fetch_optional(pool).await?))
    }

    /// Removes the user's link (to `phone`, when given). Returns whether there was one.
    pub async fn unlink_phone(&self, user_id: UserId, phone: Option<&Phone>) -> CoreResult<bool> {
        let n = on_db!(self, pool => match phone {
            Some(p) => sqlx::query("delete from phone_link where user_id = $1 and phone = $2").bind(user_id).bind(p.as_str()).execute(pool).await?,
            None => sqlx::query("delete from phone_link where user_id = $1").bind(user_id).execute(pool).await?,
        }.rows_affected());
        Ok(n > 0)
    }
}

impl Tx<'_> {
    /// [`Store::verify_phone_link`] inside a larger change (an inbound message).
    pub async fn verify_phone_link(
        &mut self,
        key: &[u8; 32],
        phone: &Phone,
        code: &str,
        user_id: Option<UserId>,
        now: i64,
    ) -> CoreResult<VerifyOutcome> {
        let hash = code_hash(key, phone.as_str(), code.trim());
        let rows: Vec<(UserId, Option<String>, Option<i64>, i64, Option<i64>)> = on_tx!(self, c => sqlx::query_as(
            "select user_id, code_hash, code_expires_at, attempts, verified_at from phone_link where phone = $1 order by created_at")
            .bind(phone.as_str()).fetch_all(&mut *c).await?);
        let rows: Vec<_> = rows.into_iter().filter(|r| user_id.is_none_or(|u| u == r.0)).collect();
        if let Some(r) = rows.iter().find(|r| r.4.is_some()) {
            return Ok(VerifyOutcome::AlreadyLinked { user_id: r.0 });
        }
        let pending: Vec<_> = rows.iter().filter(|r| r.1.is_some()).collect();
        if pending.is_empty() {
            return Ok(VerifyOutcome::NoPendingLink);
        }
        // The right code, if any pending link has it.
        let matching = pending.iter().find(|r| r.1.as_deref().is_some_and(|h| crate::auth::secret_eq(h, &hash)));
        let Some(&&(uid, _, expires, attempts, _)) = matching else {
            // Wrong: counts against every pending link of this number.
            on_tx!(self, c => { sqlx::query(
                "update phone_link set attempts = attempts + 1 where phone = $1 and verified_at is null and code_hash is not null")
                .bind(phone.as_str()).execute(&mut *c).await?; });
            let worst = pending.iter().map(|r| r.3).max().unwrap_or(0) + 1;
            return Ok(if worst > MAX_WRONG_CODES {
                VerifyOutcome::Locked
            } else {
                VerifyOutcome::Wrong { left: (MAX_WRONG_CODES - worst).max(0) }
            });
        };
        if attempts >= MAX_WRONG_CODES {
            return Ok(VerifyOutcome::Locked);
        }
        if expires.is_none_or(|e| e < now) {
            return Ok(VerifyOutcome::Expired);
        }
        on_tx!(self, c => {
            // Used once: the hash is gone; other accounts' pending links to this number end.
            sqlx::query("update phone_link set verified_at = $1, code_hash = null, code_expires_at = null where user_id = $2 and phone = $3")
                .bind(now).bind(uid).bind(phone.as_str()).execute(&mut *c).await?;
            sqlx::query("delete from phone_link where phone = $1 and user_id <> $2").bind(phone.as_str()).bind(uid).execute(&mut *c).await?;
        });
        Ok(VerifyOutcome::Linked { user_id: uid })
    }
}
