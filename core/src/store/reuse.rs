//! What the store keeps in memory: the settings the inbox last read, and the reuse index —
//! every stored photo's PDQ hash, loaded from the database at start-up (in the background) and
//! brought up to date before each lookup (this server's photos and other replicas' alike: it reads the rows past
//! the highest photo id it holds, with a margin for transactions that commit out of order).
//! The database keeps the truth; the index is 40 bytes a photo (its hash and its id), 48 with
//! the crop-tolerant "possibly reused" hints on (`DROPCHECK_REUSE_HINTS`: its pHash too).

use super::*;
use crate::pdq::{Hash256, Pdq, MATCH_DISTANCE, QUALITY_GATE};
use crate::phash::{PHash, HINT_DISTANCE};
use std::sync::{Arc, Mutex};

#[derive(Default, Debug)]
pub(crate) struct Memory {
    pub(crate) settings: Mutex<Option<Arc<Settings>>>,
    pub(crate) reuse: Mutex<ReuseIndex>,
    /// Whether a vision model is configured (see [`Store::set_vision_checks`]).
    pub(crate) vision: std::sync::atomic::AtomicBool,
    /// One refresh of the reuse index at a time: the others wait for it, then find little
    /// or nothing left to read.
    pub(crate) reuse_refresh: tokio::sync::Mutex<()>,
}

/// From this many photos a lookup scans on every core (1 M on two cores: p50 about 3 → 1.7 ms).
const PARALLEL_FROM: usize = 500_000;

/// Hints kept per lookup: enough to pass over a photo's own drop's re-sends to the nearest
/// photo of another drop, without reading every look-alike of a common scene.
const HINTS_KEPT: usize = 50;

/// Photo ids read again below the highest one held on PostgreSQL: a photo committed this much
/// later than photos with higher ids is still picked up.
const REREAD: i64 = 1_000;

/// Hashes by photo in photo-id order, searched by a scan (`count_ones`; the hardware popcount
/// where the build enables it, see `docs/PERFORMANCE.md`). 40 bytes a photo; with hints on,
/// each photo's pHash too (8 bytes more; 0 where none was taken: a pHash has 32 bits set).
#[derive(Default, Debug)]
pub struct ReuseIndex {
    hashes: Vec<[u64; 4]>,
    photo_ids: Vec<i64>,
    phashes: Vec<u64>,
    hints: bool,
    high_water: i64,
}

impl ReuseIndex {
    /// An index that also keeps each photo's pHash, for "possibly reused" hints.
    pub fn with_hints() -> Self {
        Self { hints: true, ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The memory the index holds, in bytes.
    pub fn bytes(&self) -> usize {
        self.hashes.capacity() * 32 + self.photo_ids.capacity() * 8 + self.phashes.capacity() * 8
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether a photo's hash is held.
    pub fn holds(&self, photo_id: i64) -> bool {
        self.photo_ids.binary_search(&photo_id).is_ok()
    }

    /// Room for `more` hashes, with a 32nd of the index to spare: the index grows by a 32nd
    /// at a time (at most 41.25 bytes a photo held), not by doubling.
    pub fn reserve(&mut self, more: usize) {
        if self.hashes.capacity() < self.hashes.len() + more {
            let spare = more + self.hashes.len() / 32;
            self.hashes.reserve_exact(spare);
            self.photo_ids.reserve_exact(spare);
            if self.hints {
                self.phashes.reserve_exact(spare);
            }
        }
    }

    /// Adds a photo's hashes (once: a photo already held is left as it is). Photos mostly
    /// come in id order; one committed late goes to its place. The pHash is kept only in an
    /// index with hints.
    pub fn add(&mut self, photo_id: i64, hash: Hash256, phash: Option<u64>) {
        self.reserve(1);
        let at = if photo_id > self.high_water || self.photo_ids.is_empty() {
            self.high_water = photo_id;
            self.photo_ids.len()
        } else {
            match self.photo_ids.binary_search(&photo_id) {
                Ok(_) => return,
                Err(at) => at,
            }
        };
        self.hashes.insert(at, hash.0);
        self.photo_ids.insert(at, photo_id);
        if self.hints {
            self.phashes.insert(at, phash.unwrap_or(0));
        }
    }

    /// The photos within [`HINT_DISTANCE`] of any of `queries` (a photo's pHash and its
    /// turns), nearest first, at most [`HINTS_KEPT`]; none without hints.
    pub fn hinted(&self, queries: &PHash) -> Vec<(i64, u32)> {
        let qs = [queries.hash, queries.rotations[0], queries.rotations[1], queries.rotations[2]];
        let mut out: Vec<(i64, u32)> = self
            .phashes
            .iter()
            .zip(&self.photo_ids)
            .filter(|(h, _)| **h != 0)
            .filter_map(|(h, id)| {
                let d = qs.iter().map(|q| (h ^ q).count_ones()).min().unwrap_or(64);
                (d <= HINT_DISTANCE).then_some((*id, d))
            })
            .collect();
        out.sort_unstable_by_key(|&(id, d)| (d, id));
        out.truncate(HINTS_KEPT);
        out
    }

    /// [`ReuseIndex::near`] and, with hints on and a pHash given, [`ReuseIndex::hinted`]: the
    /// two scans side by side on two cores where there are two (the hint scan, a fifth of the
    /// work, then adds no wait).
    pub fn look_up(&self, queries: &[Hash256], phash: Option<&PHash>) -> (Vec<(i64, u32)>, Vec<(i64, u32)>) {
        let Some(p) = phash.filter(|_| self.hints) else { return (self.near(queries), vec![]) };
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return (self.near(queries), self.hinted(p));
        }
        std::thread::scope(|s| {
            let hints = s.spawn(|| self.hinted(p));
            let near = self.near(queries);
            let hints = hints.join().unwrap_or_else(|_| {
                tracing::error!("the hint scan panicked: no \"possibly reused\" hints for this photo");
                vec![]
            });
            (near, hints)
        })
    }

    /// Every photo within [`MATCH_DISTANCE`] of any of `queries` (a photo and its turns), with
    /// its smallest distance.
    pub fn near(&self, queries: &[Hash256]) -> Vec<(i64, u32)> {
        let qs: Vec<[u64; 4]> = queries.iter().map(|q| q.0).collect();
        // Past a few million photos the scan is bound by memory: every core takes a part.
        let cores = if self.hashes.len() < PARALLEL_FROM { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
        if cores == 1 {
            return scan(&self.hashes, &self.photo_ids, &qs);
        }
        let part = self.hashes.len().div_ceil(cores);
        std::thread::scope(|s| {
            let parts: Vec<_> = self
                .hashes
                .chunks(part)
                .zip(self.photo_ids.chunks(part))
                .map(|(h, ids)| {
                    let qs = &qs;
                    s.spawn(move || scan(h, ids, qs))
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| {
                    p.join().unwrap_or_else(|_| {
                        tracing::error!("a part of the reuse scan panicked: its photos were not compared");
                        vec![]
                    })
                })
                .collect()
        })
    }
}

fn scan(hashes: &[[u64; 4]], ids: &[i64], qs: &[[u64; 4]]) -> Vec<(i64, u32)> {
    let mut out = vec![];
    for (h, id) in hashes.iter().zip(ids) {
        let mut best = u32::MAX;
        for q in qs {
            // Half the bits first: unrelated photos are about 64 bits apart there already.
            let half = (h[0] ^ q[0]).count_ones() + (h[1] ^ q[1]).count_ones();
            if half > MATCH_DISTANCE {
                continue;
            }
            best = best.min(half + (h[2] ^ q[2]).count_ones() + (h[3] ^ q[3]).count_ones());
        }
        if best <= MATCH_DISTANCE {
            out.push((*id, best));
        }
    }
    out
}

/// Rows read per statement when the index is filled: the first load of a large archive goes
/// in parts, not as one result set held whole.
const LOAD_PAGE: i64 = 50_000;

impl Store {
    /// Brings the reuse index up to date with the database: every photo stored since the last
    /// refresh (this server's and other replicas'), read in pages. The server does it once at
    /// start-up, in the background, so the first photo after a restart does not wait for the
    /// whole archive; each lookup does it again first. Returns how many photos it added.
    pub async fn refresh_reuse_index(&self) -> CoreResult<usize> {
        let _one_at_a_time = self.memory.reuse_refresh.lock().await;
        let (mut after, before) = {
            let index = self.memory.reuse.lock().map_err(|_| poisoned())?;
            (index.high_water, index.len())
        };
        // SQLite has one writer: photos commit in id order, so nothing below the highest id
        // held can still appear. PostgreSQL's ids can commit out of order: the ids of the last
        // stretch are read again (ids only, cheap), and the hashes of any not held.
        if matches!(self.db, Db::Postgres(_)) && after > 0 {
            let ids: Vec<i64> = on_db!(self, pool => sqlx::query_scalar("select photo_id from photo where photo_id > $1 and photo_id <= $2")
                .bind(after - REREAD).bind(after).fetch_all(pool).await?);
            let missing: Vec<i64> = {
                let index = self.memory.reuse.lock().map_err(|_| poisoned())?;
                ids.into_iter().filter(|id| !index.holds(*id)).collect()
            };
            if !missing.is_empty() {
                let list = missing.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                let rows: Vec<Row> = on_db!(self, pool => sqlx::query_as(&format!(
                    "select p.photo_id, m.pdq_hash, m.phash from photo p join photo_measure m on m.sha256 = p.sha256
                     where p.photo_id in ({list}) and m.pdq_hash is not null and m.pdq_quality > $1"))
                    .bind(i64::from(QUALITY_GATE)).fetch_all(pool).await?);
                self.add_rows(rows)?;
            }
        }
        // Nothing past the highest id held (the usual case before a lookup): no join to run.
        let newest: Option<i64> = on_db!(self, pool => sqlx::query_scalar("select max(photo_id) from photo").fetch_one(pool).await?);
        if newest.is_none_or(|n| n <= after) {
            return Ok(self.memory.reuse.lock().map_err(|_| poisoned())?.len() - before);
        }
        loop {
            let rows: Vec<Row> = on_db!(self, pool => sqlx::query_as(
                "select p.photo_id, m.pdq_hash, m.phash from photo p join photo_measure m on m.sha256 = p.sha256
                 where p.photo_id > $1 and m.pdq_hash is not null and m.pdq_quality > $2 order by p.photo_id limit $3")
                .bind(after).bind(i64::from(QUALITY_GATE)).bind(LOAD_PAGE).fetch_all(pool).await?);
            let full = rows.len() as i64 == LOAD_PAGE;
            after = rows.last().map_or(after, |r| r.0);
            self.add_rows(rows)?;
            if !full {
                return Ok(self.memory.reuse.lock().map_err(|_| poisoned())?.len() - before);
            }
        }
    }

    fn add_rows(&self, rows: Vec<Row>) -> CoreResult<()> {
        let mut index = self.memory.reuse.lock().map_err(|_| poisoned())?;
        index.reserve(rows.len());
        for (id, hex, phash) in rows {
            match Hash256::from_hex(&hex) {
                // The pHash's 64 bits are stored as a signed integer.
                Some(h) => index.add(id, h, phash.map(|p| p as u64)),
                None => tracing::error!(photo = id, "a stored PDQ hash does not read: left out of the reuse index"),
            }
        }
        Ok(())
    }

    /// Stored photos within [`MATCH_DISTANCE`] of a photo in any of its turns, nearest first:
    /// (photo id, distance); none for a photo whose hash is under the quality gate. With hints
    /// on and the photo's pHash given, also the photos its pHash is near (see
    /// [`ReuseIndex::hinted`]). The index is brought up to date first. Outside any
    /// transaction: a photo sees the photos committed before it.
    pub async fn similar_photos(&self, pdq: &Pdq, phash: Option<&PHash>) -> CoreResult<Similar> {
        if pdq.quality <= QUALITY_GATE {
            return Ok(Similar::default());
        }
        self.refresh_reuse_index().await?;
        let index = self.memory.reuse.lock().map_err(|_| poisoned())?;
        let queries = [pdq.hash, pdq.rotations[0], pdq.rotations[1], pdq.rotations[2]];
        let (same, hinted) = index.look_up(&queries, phash);
        let mut same: Vec<(PhotoId, u32)> = same.into_iter().map(|(id, d)| (PhotoId(id), d)).collect();
        same.sort_by_key(|&(id, d)| (d, id.get()));
        Ok(Similar { same, hinted: hinted.into_iter().map(|(id, d)| (PhotoId(id), d)).collect() })
    }

    /// Turns the crop-tolerant "possibly reused" hints on or off (`DROPCHECK_REUSE_HINTS`; off
    /// by default). Called before the index is first filled: a change empties it, and the next
    /// refresh reads the archive again.
    pub fn set_reuse_hints(&self, on: bool) -> CoreResult<()> {
        let mut index = self.memory.reuse.lock().map_err(|_| poisoned())?;
        if index.hints != on {
            *index = if on { ReuseIndex::with_hints() } else { ReuseIndex::default() };
        }
        Ok(())
    }
}

/// A photo id, its PDQ hash (hex) and its pHash, as the index reads them.
type Row = (i64, String, Option<i64>);

/// What a photo looks like among the stored ones: PDQ matches (the same photo) and, with hints
/// on, pHash neighbours (possibly the same photo, cropped or turned a little); (photo id,
/// distance), nearest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Similar {
    pub same: Vec<(PhotoId, u32)>,
    pub hinted: Vec<(PhotoId, u32)>,
}

fn poisoned() -> CoreError {
    CoreError::Internal("the reuse index's lock is poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_holds_each_photo_once_in_order_and_finds_the_near_ones() {
        let mut index = ReuseIndex::default();
        let h = |w: u64| Hash256([w, !w, w.rotate_left(9), w ^ 0x5555]);
        for id in [1, 2, 5, 3, 5, 2] {
            index.add(id, h((id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)), None);
        }
        assert_eq!(index.photo_ids, vec![1, 2, 3, 5], "each once, in order");
        let mut q = h(3u64.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        q.0[2] ^= 0xff; // 8 bits off
        assert_eq!(index.near(&[h(77), q]), vec![(3, 8)]);
        assert!(index.near(&[h(77)]).is_empty());
        assert!(index.hinted(&PHash { hash: 0xffff_ffff, rotations: [0xffff_ffff; 3] }).is_empty(), "no hints kept");
    }

    #[test]
    fn an_index_with_hints_finds_the_nearest_phashes_in_any_turn() {
        let mut index = ReuseIndex::with_hints();
        let half = 0x0000_0000_ffff_ffff_u64;
        index.add(1, Hash256([1, 2, 3, 4]), Some(half));
        index.add(3, Hash256([5, 6, 7, 8]), Some(half ^ 0b111)); // 3 bits off
        index.add(2, Hash256([9, 9, 9, 9]), None); // measured before pHashes: never hinted
        index.add(4, Hash256([7, 7, 7, 7]), Some(!half)); // 64 bits off
        assert_eq!(index.bytes() % 48, 0, "48 bytes a photo");
        let q = PHash { hash: !half, rotations: [half ^ 0b1, !half, !half] };
        assert_eq!(index.hinted(&q), vec![(4, 0), (1, 1), (3, 2)], "nearest first, through the turns");
        let far = PHash { hash: half.rotate_left(16), rotations: [half.rotate_left(16); 3] };
        assert!(index.hinted(&far).is_empty());
    }
}
