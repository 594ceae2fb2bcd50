//! A consistent copy of the database for `dropcheck backup` (issue 15, item 5). SQLite's
//! `VACUUM INTO` writes a transactionally consistent snapshot of a live database into a new
//! file — an online backup, made while the server keeps writing, never a copy of a file half
//! way through a write. PostgreSQL is backed up with its own tools (`pg_dump`).

use std::path::Path;

use crate::error::{CoreError, CoreResult, InputError};
use crate::store::{on_db, Db, Store};

/// What a backup holds, read back from the copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    pub drops: i64,
    pub photos: i64,
    /// Every file the copy refers to (photos and attachments), by SHA-256.
    pub files: Vec<String>,
}

impl Store {
    /// Writes a consistent snapshot of the SQLite database to `path` (which must not exist).
    pub async fn backup_sqlite_into(&self, path: &Path) -> CoreResult<()> {
        if path.exists() {
            return Err(InputError::new("backup_exists", format!("{} exists already", path.display())).into());
        }
        let target = path.to_str().ok_or_else(|| InputError::new("invalid_path", "the backup path is not UTF-8"))?.to_string();
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("vacuum into $1").bind(target).execute(pool).await?;
                Ok(())
            }
            Db::Postgres(_) => Err(InputError::new("unsupported", "PostgreSQL is backed up with pg_dump").into()),
        }
    }

    /// The drops, photos and stored files this database refers to.
    pub async fn contents(&self) -> CoreResult<Contents> {
        let (drops, photos, files) = on_db!(self, pool => {
            let d: i64 = sqlx::query_scalar("select count(*) from drop_job").fetch_one(pool).await?;
            let p: i64 = sqlx::query_scalar("select count(*) from photo").fetch_one(pool).await?;
            let f: Vec<String> = sqlx::query_scalar("select sha256 from photo union select sha256 from attachment")
                .fetch_all(pool).await?;
            (d, p, f)
        });
        Ok(Contents { drops, photos, files })
    }
}

/// Fails unless every file the backup's database refers to is in its media folder.
pub fn check_files(contents: &Contents, media: &crate::media::MediaStore) -> CoreResult<()> {
    let missing: Vec<&String> = contents.files.iter().filter(|sha| !media.original_path(sha).is_ok_and(|p| p.exists())).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Internal(format!("{} stored files are missing from the copy, e.g. {}", missing.len(), missing[0])))
    }
}
