//! Sessions live in the database (SQLite or PostgreSQL), so any replica can serve any request.

use async_trait::async_trait;
use dropcheck_core::store::Store;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::SessionStore;

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    pub store: Store,
}

fn backend(e: dropcheck_core::CoreError) -> Error {
    Error::Backend(e.to_string())
}

fn expiry_ms(r: &Record) -> i64 {
    (r.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let data = serde_json::to_vec(&*record).map_err(|e| Error::Encode(e.to_string()))?;
            if self.store.session_create(&record.id.to_string(), &data, expiry_ms(record)).await.map_err(backend)? {
                return Ok(());
            }
            // A collision on a 128-bit random id: pick another.
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        self.store.session_save(&record.id.to_string(), &data, expiry_ms(record)).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(data) = self.store.session_load(&id.to_string(), dropcheck_core::now_ms()).await.map_err(backend)? else {
            return Ok(None);
        };
        serde_json::from_slice(&data).map(Some).map_err(|e| Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.store.session_delete(&id.to_string()).await.map_err(backend)
    }
}
