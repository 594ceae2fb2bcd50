//! Users, sign-in throttling, sessions and API keys.

use super::*;

#[derive(Clone, FromRow)]
pub struct User {
    pub user_id: UserId,
    pub email: String,
    /// The argon2id PHC string. Never serialised: this type is not `Serialize`.
    pub password_hash: String,
    role: Role,
    pub phone: Option<Phone>,
    pub created_at: i64,
}

/// Debug output leaves the password hash out, so a logged user never leaks it.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("user_id", &self.user_id).field("email", &self.email).field("role", &self.role).finish_non_exhaustive()
    }
}

impl User {
    pub fn role(&self) -> Role {
        self.role
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub api_key_id: ApiKeyId,
    pub name: String,
    pub scopes: String,
    pub revoked_at: Option<i64>,
}

/// An API key as the settings page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyInfo {
    pub api_key_id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    // ---------------------------------------------------------------- users

    pub async fn user_count(&self) -> CoreResult<i64> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, i64>("select count(*) from app_user").fetch_one(pool).await?))
    }

    pub async fn create_user(&self, email: &Email, password_hash: &str, role: Role) -> CoreResult<User> {
        let now = now_ms();
        let id: Option<UserId> = on_db!(self, pool => sqlx::query_scalar(
            "insert into app_user (email, password_hash, role, created_at) values ($1, $2, $3, $4) on conflict (email) do nothing returning user_id")
            .bind(email.as_str()).bind(password_hash).bind(role.as_str()).bind(now).fetch_optional(pool).await?);
        let id = id.ok_or_else(|| CoreError::conflict("email_taken", format!("a user with e-mail {} already exists", email.as_str())))?;
        self.user(id).await
    }

    /// Creates the first admin only while there are no users (the `/setup` page); atomic, so two
    /// racing set-ups cannot both succeed.
    pub async fn create_first_admin(&self, email: &Email, password_hash: &str) -> CoreResult<User> {
        let now = now_ms();
        let id: Option<UserId> = on_db!(self, pool => sqlx::query_scalar(
            "insert into app_user (email, password_hash, role, created_at)
             select $1, $2, 'admin', $3 where not exists (select 1 from app_user) returning user_id")
            .bind(email.as_str()).bind(password_hash).bind(now).fetch_optional(pool).await?);
        let id = id.ok_or_else(|| CoreError::conflict("setup_done", "Dropcheck is already set up; sign in instead."))?;
        self.user(id).await
    }

    pub async fn user(&self, user_id: UserId) -> CoreResult<User> {
        on_db!(self, pool => sqlx::query_as::<_, Keyed<User>>(
            "select user_id, email, password_hash, role, phone, created_at from app_user where user_id = $1")
            .bind(user_id).fetch_optional(pool).await?)
        .map(|k| k.0)
        .ok_or_else(|| CoreError::not_found("user_not_found", format!("user {user_id}")))
    }

    pub async fn user_by_email(&self, email: &Email) -> CoreResult<Option<User>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Keyed<User>>(
            "select user_id, email, password_hash, role, phone, created_at from app_user where email = $1")
            .bind(email.as_str()).fetch_optional(pool).await?)
        .map(|k| k.0))
    }

    pub async fn users(&self) -> CoreResult<Vec<User>> {
        Ok(Keyed::all(on_db!(self, pool => sqlx::query_as::<_, Keyed<User>>(
            "select user_id, email, password_hash, role, phone, created_at from app_user order by email").fetch_all(pool).await?)))
    }

    /// Changes a role; refuses to leave the instance without an admin.
    pub async fn set_role(&self, user_id: UserId, role: Role) -> CoreResult<()> {
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("update app_user set role = $1 where user_id = $2").bind(role.as_str()).bind(user_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("user_not_found", format!("user {user_id}")));
                }
                let admins: i64 = sqlx::query_scalar("select count(*) from app_user where role = 'admin'").fetch_one(&mut *c).await?;
                if admins == 0 {
                    return Err(CoreError::conflict("last_admin", "At least one admin must remain."));
                }
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    pub async fn delete_user(&self, user_id: UserId) -> CoreResult<()> {
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("delete from app_user where user_id = $1").bind(user_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("user_not_found", format!("user {user_id}")));
                }
                let admins: i64 = sqlx::query_scalar("select count(*) from app_user where role = 'admin'").fetch_one(&mut *c).await?;
                if admins == 0 {
                    return Err(CoreError::conflict("last_admin", "At least one admin must remain."));
                }
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    // ---------------------------------------------------------------- login throttling

    /// Claims one sign-in attempt against `key`'s limit (`limit` attempts per `window_ms`)
    /// before the password is checked, atomically: parallel attempts can never pass the
    /// limit. `Ok(None)` when claimed; `Ok(Some(until_ms))` when refused, with the time the
    /// key may try again.
    pub async fn claim_login_attempt(&self, key: &str, limit: i64, window_ms: i64, now: i64) -> CoreResult<Option<i64>> {
        let claimed: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
            "insert into login_throttle (key, failures, window_start, locked_until, lockouts) values ($1, 1, $2, 0, 0)
             on conflict (key) do update set
                 failures = case when login_throttle.window_start <= $3 then 1 else login_throttle.failures + 1 end,
                 window_start = case when login_throttle.window_start <= $3 then $2 else login_throttle.window_start end
             where login_throttle.locked_until <= $2 and (login_throttle.window_start <= $3 or login_throttle.failures < $4)
             returning cast(failures as bigint)")
            .bind(key).bind(now).bind(now - window_ms).bind(limit).fetch_optional(pool).await?);
        if claimed.is_some() {
            return Ok(None);
        }
        let row: Option<(i64, i64)> = on_db!(self, pool => sqlx::query_as("select locked_until, window_start from login_throttle where key = $1")
            .bind(key).fetch_optional(pool).await?);
        Ok(Some(row.map(|(locked, start)| if locked > now { locked } else { start + window_ms }).unwrap_or(now)))
    }

    /// A claimed attempt failed: when it was the last one the limit allows, the key is locked
    /// for `base_ms` doubled for each lockout before it (at most `cap_ms`), and starts afresh.
    pub async fn fail_login_attempt(&self, key: &str, limit: i64, base_ms: i64, cap_ms: i64, now: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query(
                "update login_throttle set
                     locked_until = $3 + (case when $4 * (1 << (case when lockouts > 16 then 16 else lockouts end)) > $5 then $5
                                          else $4 * (1 << (case when lockouts > 16 then 16 else lockouts end)) end),
                     lockouts = lockouts + 1, failures = 0, window_start = $3
                 where key = $1 and failures >= $2")
                .bind(key).bind(limit).bind(now).bind(base_ms).bind(cap_ms).execute(pool).await?;
        });
        Ok(())
    }

    /// Gives a claimed attempt back (it was not a wrong password).
    pub async fn release_login_attempt(&self, key: &str) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("update login_throttle set failures = failures - 1 where key = $1 and failures > 0").bind(key).execute(pool).await?;
        });
        Ok(())
    }

    /// A successful sign-in clears the key (its failures and its lockout history).
    pub async fn clear_login_throttle(&self, key: &str) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("delete from login_throttle where key = $1").bind(key).execute(pool).await?; });
        Ok(())
    }

    // ---------------------------------------------------------------- sessions

    pub async fn session_load(&self, id: &str, now: i64) -> CoreResult<Option<Vec<u8>>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Vec<u8>>("select data from session where session_id = $1 and expires_at > $2")
            .bind(id).bind(now).fetch_optional(pool).await?))
    }

    /// Inserts a session; false if the id is taken (the caller picks a new id).
    pub async fn session_create(&self, id: &str, data: &[u8], expires_at: i64) -> CoreResult<bool> {
        let n = on_db!(self, pool => sqlx::query("insert into session (session_id, data, expires_at) values ($1, $2, $3) on conflict (session_id) do nothing")
            .bind(id).bind(data).bind(expires_at).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn session_save(&self, id: &str, data: &[u8], expires_at: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("insert into session (session_id, data, expires_at) values ($1, $2, $3)
                         on conflict (session_id) do update set data = excluded.data, expires_at = excluded.expires_at")
                .bind(id).bind(data).bind(expires_at).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn session_delete(&self, id: &str) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("delete from session where session_id = $1").bind(id).execute(pool).await?; });
        Ok(())
    }

    /// Housekeeping: expired sessions and sign-in throttles idle for a day.
    pub async fn purge_expired(&self, now: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("delete from session where expires_at <= $1").bind(now).execute(pool).await?;
            sqlx::query("delete from login_throttle where window_start < $1 and locked_until < $2")
                .bind(now - 24 * 3600 * 1000).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    // ---------------------------------------------------------------- API keys

    pub async fn create_api_key(&self, name: &str, prefix: &str, key_hash: &str, scopes: &str) -> CoreResult<ApiKeyId> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, ApiKeyId>(
            "insert into api_key (name, prefix, key_hash, scopes, created_at) values ($1, $2, $3, $4, $5) returning api_key_id")
            .bind(name).bind(prefix).bind(key_hash).bind(scopes).bind(now_ms()).fetch_one(pool).await?))
    }

    pub async fn api_key_by_hash(&self, key_hash: &str) -> CoreResult<Option<ApiKeyRow>> {
        let row = on_db!(self, pool => sqlx::query_as::<_, ApiKeyRow>(
            "select api_key_id, name, scopes, revoked_at from api_key where key_hash = $1").bind(key_hash).fetch_optional(pool).await?);
        if let Some(r) = &row {
            on_db!(self, pool => { sqlx::query("update api_key set last_used_at = $1 where api_key_id = $2 and (last_used_at is null or last_used_at < $1 - 60000)").bind(now_ms()).bind(r.api_key_id).execute(pool).await?; });
        }
        Ok(row)
    }

    /// Every key, newest first (hashes stay in the database).
    pub async fn api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ApiKeyInfo>(
            "select api_key_id, name, prefix, scopes, created_at, last_used_at, revoked_at from api_key order by api_key_id desc")
            .fetch_all(pool).await?))
    }

    pub async fn revoke_api_key(&self, api_key_id: ApiKeyId) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("update api_key set revoked_at = $1 where api_key_id = $2 and revoked_at is null").bind(now_ms()).bind(api_key_id).execute(pool).await?; });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_corrupt_stored_role_is_an_error_naming_the_column_never_a_default() {
        crate::testing::on_each_backend(|store| async move {
            // A row as the users table would give it, with a role no migration allows.
            let row = |role: &str| {
                format!(
                    "select cast(1 as bigint) as user_id, 'ann@example.com' as email, '' as password_hash, '{role}' as role,
                        cast(null as text) as phone, cast(0 as bigint) as created_at"
                )
            };
            let good: User = on_db!(&store, pool => sqlx::query_as(&row("admin")).fetch_one(pool).await).unwrap();
            assert_eq!(good.role(), Role::Admin);
            let bad: Result<User, sqlx::Error> = on_db!(&store, pool => sqlx::query_as(&row("root")).fetch_one(pool).await);
            let err = bad.expect_err("a corrupt role is refused, not read as a reviewer").to_string();
            assert!(err.contains("role") && err.contains("'root' is not a stored Role (one of admin, reviewer)"), "{err}");
            // The same for a drop's status and a step's verdict, decoded the same way.
            let status: Result<(DropStatus,), sqlx::Error> =
                on_db!(&store, pool => sqlx::query_as("select 'done' as status").fetch_one(pool).await);
            assert!(status.unwrap_err().to_string().contains("'done' is not a stored DropStatus"));
            let verdict: (Verdict,) = on_db!(&store, pool => sqlx::query_as("select 'retake' as verdict").fetch_one(pool).await).unwrap();
            assert_eq!(verdict.0, Verdict::Retake);
        })
        .await;
    }
}
