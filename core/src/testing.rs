//! Test support shared by this crate's and the server's tests: run a scenario against a
//! fresh database on every backend. SQLite always (a temporary file); PostgreSQL when the
//! server at `DROPCHECK_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is
//! reachable, and always under `CI=true`, where an unreachable server fails the test.
//! Each PostgreSQL run gets its own schema, dropped afterwards, so tests run in parallel
//! and leave nothing behind.

use futures_util::FutureExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;

use crate::store::Store;

pub fn pg_admin_url() -> String {
    std::env::var("DROPCHECK_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn pg_required() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// A fresh, migrated database of one backend, removed on [`TestDb::cleanup`].
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb { store, url, name: "sqlite", _dir: Some(dir), pg_schema: None }
    }

    /// `None` when PostgreSQL is unreachable and not required.
    pub async fn postgres() -> Option<TestDb> {
        let admin = pg_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if !pg_required() => {
                eprintln!("PostgreSQL at {admin} unreachable ({e}); running on SQLite only");
                return None;
            }
            Err(e) => panic!("CI=true requires PostgreSQL at {admin}: {e}"),
        };
        let schema = format!("t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("create schema {schema}")).execute(&mut conn).await.expect("create schema");
        conn.close().await.ok();
        let opts = PgConnectOptions::from_str(&admin).expect("pg url").options([("search_path", schema.as_str())]);
        let store = Store::connect_postgres(opts).await.expect("connect pg");
        store.migrate().await.expect("migrate pg");
        let url = with_search_path(&admin, &schema);
        Some(TestDb { store, url, name: "postgresql", _dir: None, pg_schema: Some(schema) })
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(schema) = self.pg_schema {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                let _ = sqlx::query(&format!("drop schema {schema} cascade")).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// Runs a raw statement on a test database: to break it on purpose (a test of what a failing
/// statement does to the rest of a transaction).
pub async fn execute_raw(store: &Store, sql: &str) {
    use crate::store::Db;
    match &store.db {
        Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The admin URL with `options=-c search_path=…`, for handing to a server process.
pub fn with_search_path(admin: &str, schema: &str) -> String {
    let sep = if admin.contains('?') { '&' } else { '?' };
    format!("{admin}{sep}options=-c%20search_path%3D{schema}")
}

/// Runs `scenario` on SQLite, then on PostgreSQL when available; a panic fails the test
/// after the database is cleaned up.
pub async fn on_each_backend<F, Fut>(scenario: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    // One backend at a time, each created just before its run, so a failure leaks nothing.
    for backend in ["sqlite", "postgresql"] {
        let db = match backend {
            "sqlite" => TestDb::sqlite().await,
            _ => match TestDb::postgres().await {
                Some(db) => db,
                None => continue,
            },
        };
        let name = db.name;
        let outcome = AssertUnwindSafe(scenario(db.store.clone())).catch_unwind().await;
        db.cleanup().await;
        if let Err(panic) = outcome {
            eprintln!("scenario failed on {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A photo of a scene with shapes of a few sizes over a gradient (different for each seed), as
/// a JPEG: more like a photograph for the pHash than the demo's generated step photos, which
/// all share one layout.
pub fn scene_photo(seed: u32) -> Vec<u8> {
    let (w, h) = (1600u32, 1200u32);
    let mut s = seed.wrapping_mul(0x9e37_79b9) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let blobs: Vec<(u32, u32, u32, u8)> = (0..12).map(|_| (next() % w, next() % h, 60 + next() % 300, (next() % 200) as u8)).collect();
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let mut v = (x * 120 / w + y * 60 / h) as u8;
        for &(bx, by, r, c) in &blobs {
            if x.abs_diff(bx).pow(2) + y.abs_diff(by).pow(2) < r * r {
                v = c.saturating_add(((x / 4 + y / 4) % 2 * 12) as u8);
            }
        }
        image::Rgb([v, v, v.saturating_add(10)])
    });
    let mut out = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).expect("encodes in memory");
    out
}

/// A JPEG photo cropped by 5 % on every side and encoded again at `quality`, as a phone's
/// editor makes of a photo (PDQ no longer finds it; a pHash does).
pub fn cropped_photo(jpeg: &[u8], quality: u8) -> Vec<u8> {
    let img = image::load_from_memory(jpeg).expect("a photo the test made");
    let (w, h) = (img.width(), img.height());
    let crop = img.crop_imm(w / 20, h / 20, w - w / 10, h - h / 10);
    let mut out = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&crop.to_rgb8()).expect("encodes in memory");
    out
}
