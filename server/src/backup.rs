//! `dropcheck backup DIR` (issue 15, item 5): a copy of a running installation that a server
//! can start from (`DROPCHECK_DATA_DIR=DIR dropcheck serve`).
//!
//! With SQLite the database is snapshotted first with `VACUUM INTO` (online and consistent:
//! the server keeps writing meanwhile), then the data directory's files are copied — the
//! photos and attachments (named by their SHA-256, written before the transaction that refers
//! to them and never changed, so every file the snapshot refers to is there by then) and
//! `secret.key` (without it the stored provider secrets cannot be read). Thumbnails are left
//! out (made again on first view). The copy is then opened and checked: every file its
//! database refers to must be in it. With PostgreSQL the files are copied and the database is
//! left to `pg_dump`, which the command names.

use crate::config::Config;
use dropcheck_core::media::MediaStore;
use std::path::{Path, PathBuf};

/// What a backup wrote.
#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    /// `None` with PostgreSQL (backed up with its own tools).
    pub contents: Option<dropcheck_core::backup::Contents>,
    pub files_copied: u64,
    pub bytes_copied: u64,
}

/// Entries of the data directory that are not copied: the live database (snapshotted
/// instead) and the thumbnail cache.
const SKIP: &[&str] = &["dropcheck.db", "dropcheck.db-wal", "dropcheck.db-shm", "dropcheck.db-journal", "thumbs"];

fn copy_tree(from: &Path, to: &Path, top: bool, skip_dir: &Path, n: &mut (u64, u64)) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let path = entry.path();
        if (top && SKIP.iter().any(|s| name == *s)) || path == skip_dir {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&path, &to.join(&name), false, skip_dir, n)?;
        } else if kind.is_file() {
            n.1 += std::fs::copy(&path, to.join(&name))?;
            n.0 += 1;
        }
    }
    Ok(())
}

pub async fn run(config: &Config, dir: &Path) -> Result<Report, String> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_some() {
        return Err(format!("{} is not empty: a backup goes into a new or empty directory", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = crate::open_store(config).await?;
    let sqlite = store.backend() == "sqlite";
    if sqlite {
        store.backup_sqlite_into(&dir.join("dropcheck.db")).await.map_err(|e| format!("database snapshot: {e}"))?;
    }
    store.close().await;
    let data = config.data_dir.canonicalize().map_err(|e| format!("DROPCHECK_DATA_DIR {}: {e}", config.data_dir.display()))?;
    let skip = dir.clone();
    let target = dir.clone();
    let mut n = (0u64, 0u64);
    let n = tokio::task::spawn_blocking(move || copy_tree(&data, &target, true, &skip, &mut n).map(|_| n))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("copying the data directory: {e}"))?;
    let contents = if sqlite {
        let copy = dropcheck_core::store::Store::connect(&dropcheck_core::store::database_url(None, &dir))
            .await
            .map_err(|e| format!("opening the copy: {e}"))?;
        let c = copy.contents().await.map_err(|e| format!("reading the copy: {e}"))?;
        copy.close().await;
        dropcheck_core::backup::check_files(&c, &MediaStore::new(&dir)).map_err(|e| format!("checking the copy: {e}"))?;
        Some(c)
    } else {
        None
    };
    Ok(Report { dir, contents, files_copied: n.0, bytes_copied: n.1 })
}
