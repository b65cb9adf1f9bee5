//! The local index cache: a SQLite database rebuilt from index objects.
//!
//! It records which index objects it has ingested; when the repository holds
//! new ones it ingests them, and when one it ingested is gone (prune replaced
//! it) it starts over. A schema-version row guards the layout: on a mismatch,
//! or if the file cannot be opened, the cache is deleted and rebuilt. Nothing
//! in it is authoritative, so deleting it is always safe.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{IndexFile, Location};
use crate::blob::BlobType;
use crate::delta::{Sketch, SUPER_FEATURES};
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId};

const SCHEMA_VERSION: &str = "2";

/// The SQLite-backed blob index. Safe to share between threads.
pub struct SqliteIndex {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteIndex({})", self.path.display())
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::cache(path, e)
}

fn load_group(
    group: &[IndexId],
    load: &(impl Fn(&IndexId) -> Result<IndexFile> + Sync),
) -> Result<Vec<(IndexId, IndexFile)>> {
    // A damaged index object is left out (and not recorded as ingested, so
    // it is tried again next time): one bad object must not make the
    // repository unopenable, or check and repair could not run. Any other
    // failure (the store is unreachable) is an error.
    use rayon::prelude::*;
    let loaded: Vec<(IndexId, Result<IndexFile>)> =
        group.par_iter().map(|id| (*id, load(id))).collect();
    let mut out = Vec::with_capacity(loaded.len());
    for (id, r) in loaded {
        match r {
            Ok(f) => out.push((id, f)),
            Err(Error::Corrupt { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

impl SqliteIndex {
    /// Opens (or creates) the cache at `path`; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> Result<SqliteIndex> {
        let Some(path) = path else {
            let conn = Connection::open_in_memory().map_err(db_err(Path::new(":memory:")))?;
            return Self::prepare(conn, PathBuf::from(":memory:"));
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::cache(path, format!("cannot create the cache directory {}: {e} (set --cache-dir or VAULT_CACHE_DIR to a writable directory)", dir.display()))
            })?;
        }
        match Self::open_file(path) {
            Ok(index) => Ok(index),
            Err(_) => {
                // A damaged or foreign cache is rebuilt from the repository.
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(p));
                }
                Self::open_file(path)
            }
        }
    }

    fn open_file(path: &Path) -> Result<SqliteIndex> {
        let conn = Connection::open(path).map_err(db_err(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_err(path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err(path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err(path))?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .unwrap_or(None);
        if version.as_deref().is_some_and(|v| v != SCHEMA_VERSION) {
            return Err(Error::cache(path, "schema version mismatch"));
        }
        Self::prepare(conn, path.to_owned())
    }

    fn prepare(conn: Connection, path: PathBuf) -> Result<SqliteIndex> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS packs(pid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS blobs(id BLOB PRIMARY KEY, kind INTEGER NOT NULL, pid INTEGER NOT NULL,
                 offset INTEGER NOT NULL, length INTEGER NOT NULL, raw_length INTEGER NOT NULL, base BLOB) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS sketches(sf INTEGER NOT NULL, id BLOB NOT NULL, UNIQUE(sf, id));
             -- `similar` wants the newest rows of one super-feature: this
             -- index (sf, rowid) serves them without sorting all of them.
             CREATE INDEX IF NOT EXISTS sketches_by_sf ON sketches(sf);
             -- Second copies of blobs another pack holds (racing writers):
             -- never read, counted as unused space of their pack.
             CREATE TABLE IF NOT EXISTS dups(pid INTEGER NOT NULL, id BLOB NOT NULL, kind INTEGER NOT NULL,
                 offset INTEGER NOT NULL, length INTEGER NOT NULL, raw_length INTEGER NOT NULL, base BLOB,
                 PRIMARY KEY(pid, id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS ingested(id BLOB PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS used(id BLOB PRIMARY KEY) WITHOUT ROWID;
             INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '2');",
        )
        .map_err(db_err(&path))?;
        Ok(SqliteIndex {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the cache in line with the repository's index objects: `present`
    /// is the list of index ids in the repository, `load` fetches and opens one.
    /// Index objects superseded by another present one (prune rewrote them)
    /// are not used. Returns how many index objects were read.
    pub fn sync(
        &self,
        present: &[IndexId],
        load: impl Fn(&IndexId) -> Result<IndexFile> + Sync,
    ) -> Result<usize> {
        let known = self.ingested()?;
        let present_set: HashSet<IndexId> = present.iter().copied().collect();
        if known.iter().any(|id| !present_set.contains(id)) {
            return self.rebuild(present, &load);
        }
        let missing: Vec<IndexId> = present
            .iter()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        let mut read = 0;
        for group in missing.chunks(32) {
            let files = load_group(group, &load)?;
            read += files.len();
            if files
                .iter()
                .any(|(_, f)| f.supersedes.iter().any(|s| present_set.contains(s)))
            {
                return Ok(read + self.rebuild(present, &load)?);
            }
            for (id, file) in &files {
                self.ingest(id, file)?;
            }
        }
        Ok(read)
    }

    /// Rebuilds from scratch. One pass when nothing is superseded; when
    /// something is, a second pass leaves the superseded objects out.
    fn rebuild(
        &self,
        present: &[IndexId],
        load: &(impl Fn(&IndexId) -> Result<IndexFile> + Sync),
    ) -> Result<usize> {
        self.clear()?;
        let present_set: HashSet<IndexId> = present.iter().copied().collect();
        let mut superseded = HashSet::new();
        let mut read = 0;
        for group in present.chunks(32) {
            let files = load_group(group, load)?;
            read += files.len();
            for (id, file) in &files {
                superseded.extend(
                    file.supersedes
                        .iter()
                        .filter(|s| present_set.contains(s))
                        .copied(),
                );
                if !superseded.contains(id) {
                    self.ingest(id, file)?;
                }
            }
        }
        let ingested = self.ingested()?;
        if superseded.iter().any(|s| ingested.contains(s)) {
            self.clear()?;
            let keep: Vec<IndexId> = present
                .iter()
                .filter(|id| !superseded.contains(id))
                .copied()
                .collect();
            for group in keep.chunks(32) {
                let files = load_group(group, load)?;
                read += files.len();
                for (id, file) in &files {
                    self.ingest(id, file)?;
                }
            }
        }
        for id in &superseded {
            self.ingest(id, &IndexFile::default())?; // remembered, never used
        }
        Ok(read)
    }

    /// Index objects already ingested.
    pub fn ingested(&self) -> Result<HashSet<IndexId>> {
        Ok(self
            .column("SELECT id FROM ingested")?
            .iter()
            .filter_map(|b| IndexId::from_slice(b))
            .collect())
    }

    /// The one blob column of every row `sql` selects.
    fn column(&self, sql: &str) -> Result<Vec<Vec<u8>>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(db_err(&self.path))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(db_err(&self.path))?;
        rows.map(|r| r.map_err(db_err(&self.path))).collect()
    }

    /// Forgets everything.
    pub fn clear(&self) -> Result<()> {
        self.lock()
            .execute_batch(
                "DELETE FROM blobs; DELETE FROM dups; DELETE FROM packs; DELETE FROM ingested; DELETE FROM sketches;",
            )
            .map_err(db_err(&self.path))
    }

    /// Adds the entries of one index object and records it as ingested.
    pub fn ingest(&self, id: &IndexId, file: &IndexFile) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err(&self.path))?;
        {
            let mut pack_stmt = tx
                .prepare_cached("INSERT INTO packs(id) VALUES (?1) ON CONFLICT(id) DO UPDATE SET id = id RETURNING pid")
                .map_err(db_err(&self.path))?;
            // One entry per blob id (the first copy seen); other copies go
            // to `dups`, except that a whole copy takes the place of a delta
            // copy, so a blob chosen as a base is always read whole (depth 1).
            let mut blob_stmt = tx
                .prepare_cached(
                    "INSERT INTO blobs(id, kind, pid, offset, length, raw_length, base) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(id) DO NOTHING",
                )
                .map_err(db_err(&self.path))?;
            let mut replace_stmt = tx
                .prepare_cached(
                    "UPDATE blobs SET kind = ?2, pid = ?3, offset = ?4, length = ?5, raw_length = ?6, base = NULL WHERE id = ?1",
                )
                .map_err(db_err(&self.path))?;
            let mut sketch_stmt = tx
                .prepare_cached("INSERT OR IGNORE INTO sketches(sf, id) VALUES (?1, ?2)")
                .map_err(db_err(&self.path))?;
            let mut owner_stmt = tx
                .prepare_cached(
                    "SELECT pid, kind, offset, length, raw_length, base FROM blobs WHERE id = ?1",
                )
                .map_err(db_err(&self.path))?;
            let mut dup_stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO dups(pid, id, kind, offset, length, raw_length, base) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db_err(&self.path))?;
            for (pack, entries) in &file.packs {
                let pid: i64 = pack_stmt
                    .query_row(params![&pack.0[..]], |r| r.get(0))
                    .map_err(db_err(&self.path))?;
                // Inserting in key order keeps B-tree writes local.
                let mut sorted: Vec<&crate::pack::PackEntry> = entries.iter().collect();
                sorted.sort_unstable_by_key(|e| e.id);
                for e in sorted {
                    let row = params![
                        &e.id.0[..],
                        e.kind.to_u8(),
                        pid,
                        e.offset,
                        e.length,
                        e.raw_length,
                        e.base.as_ref().map(|b| &b.0[..])
                    ];
                    if blob_stmt.execute(row).map_err(db_err(&self.path))? > 0 {
                        continue;
                    }
                    // Another copy is indexed already (unless it is this
                    // same pack, listed again).
                    type Row = (i64, u8, u32, u32, u32, Option<Vec<u8>>);
                    let owner: Row = owner_stmt
                        .query_row(params![&e.id.0[..]], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        })
                        .map_err(db_err(&self.path))?;
                    if owner.0 == pid {
                        continue;
                    }
                    let (dup_pid, dup) = if owner.5.is_some() && e.base.is_none() {
                        // This whole copy becomes the location; the delta
                        // copy is the second one.
                        replace_stmt
                            .execute(params![
                                &e.id.0[..],
                                e.kind.to_u8(),
                                pid,
                                e.offset,
                                e.length,
                                e.raw_length
                            ])
                            .map_err(db_err(&self.path))?;
                        (owner.0, (owner.1, owner.2, owner.3, owner.4, owner.5))
                    } else {
                        let base = e.base.map(|b| b.0.to_vec());
                        (
                            pid,
                            (e.kind.to_u8(), e.offset, e.length, e.raw_length, base),
                        )
                    };
                    dup_stmt
                        .execute(params![
                            dup_pid,
                            &e.id.0[..],
                            dup.0,
                            dup.1,
                            dup.2,
                            dup.3,
                            dup.4
                        ])
                        .map_err(db_err(&self.path))?;
                }
            }
            for (id, sketch) in &file.sketches {
                for sf in sketch.0 {
                    sketch_stmt
                        .execute(params![sf as i64, &id.0[..]])
                        .map_err(db_err(&self.path))?;
                }
            }
            tx.execute(
                "INSERT OR IGNORE INTO ingested(id) VALUES (?1)",
                params![&id.0[..]],
            )
            .map_err(db_err(&self.path))?;
        }
        tx.commit().map_err(db_err(&self.path))
    }

    /// Where `id` is stored, if indexed.
    pub fn get(&self, id: &BlobId) -> Result<Option<Location>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT b.kind, p.id, b.offset, b.length, b.raw_length, b.base FROM blobs b JOIN packs p ON p.pid = b.pid WHERE b.id = ?1",
            )
            .map_err(db_err(&self.path))?;
        stmt.query_row(params![&id.0[..]], |r| {
            Ok((
                r.get::<_, u8>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })
        .optional()
        .map_err(db_err(&self.path))?
        .map(|(kind, pack, offset, length, raw_length, base)| {
            Ok(Location {
                kind: BlobType::from_u8(kind)
                    .ok_or_else(|| Error::cache(&self.path, "bad blob type"))?,
                pack: PackId::from_slice(&pack)
                    .ok_or_else(|| Error::cache(&self.path, "bad pack id"))?,
                offset,
                length,
                raw_length,
                base: base
                    .map(|b| {
                        BlobId::from_slice(&b)
                            .ok_or_else(|| Error::cache(&self.path, "bad base id"))
                    })
                    .transpose()?,
            })
        })
        .transpose()
    }

    /// The stored whole data blob most similar to a chunk with `sketch`: the
    /// one sharing the most super-features, the most recently indexed on a
    /// tie. Blobs that are themselves deltas never qualify (depth 1).
    pub fn similar(&self, sketch: &Sketch) -> Result<Option<BlobId>> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT s.id FROM sketches s JOIN blobs b ON b.id = s.id
                 WHERE s.sf = ?1 AND b.base IS NULL AND b.kind = 0 ORDER BY s.rowid DESC LIMIT 4",
            )
            .map_err(db_err(&self.path))?;
        // (id, shared super-features, first seen at rank)
        let mut found: Vec<(Vec<u8>, usize, usize)> = Vec::new();
        let mut rank = 0;
        for sf in sketch.0 {
            let rows = st
                .query_map(params![sf as i64], |r| r.get::<_, Vec<u8>>(0))
                .map_err(db_err(&self.path))?;
            for r in rows {
                let id = r.map_err(db_err(&self.path))?;
                match found.iter_mut().find(|f| f.0 == id) {
                    Some(f) => f.1 += 1,
                    None => found.push((id, 1, rank)),
                }
                rank += 1;
            }
        }
        Ok(found
            .into_iter()
            .max_by_key(|(_, n, rank)| (*n, std::cmp::Reverse(*rank)))
            .and_then(|(id, _, _)| BlobId::from_slice(&id)))
    }

    /// The recorded sketches of the indexed blobs of `pack`.
    pub fn pack_sketches(&self, pack: &PackId) -> Result<Vec<(BlobId, Sketch)>> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT s.id, s.sf FROM sketches s JOIN blobs b ON b.id = s.id JOIN packs p ON p.pid = b.pid
                 WHERE p.id = ?1 ORDER BY s.id, s.rowid",
            )
            .map_err(db_err(&self.path))?;
        let rows = st
            .query_map(params![&pack.0[..]], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db_err(&self.path))?;
        let mut out: Vec<(BlobId, Vec<u64>)> = Vec::new();
        for r in rows {
            let (id, sf) = r.map_err(db_err(&self.path))?;
            let id =
                BlobId::from_slice(&id).ok_or_else(|| Error::cache(&self.path, "bad blob id"))?;
            match out.last_mut() {
                Some((last, sfs)) if *last == id => sfs.push(sf as u64),
                _ => out.push((id, vec![sf as u64])),
            }
        }
        Ok(out
            .into_iter()
            .filter_map(|(id, sfs)| {
                let arr: [u64; SUPER_FEATURES] = sfs.get(..SUPER_FEATURES)?.try_into().ok()?;
                Some((id, Sketch(arr)))
            })
            .collect())
    }

    /// True when `id` is indexed.
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(db_err(&self.path))?;
        stmt.exists(params![&id.0[..]]).map_err(db_err(&self.path))
    }

    /// Forgets all marks of [`SqliteIndex::mark_used`].
    pub fn clear_marks(&self) -> Result<()> {
        self.lock()
            .execute_batch("DELETE FROM used;")
            .map_err(db_err(&self.path))
    }

    /// Marks blobs as used by some snapshot (prune's mark phase); returns how
    /// many were not marked before.
    pub fn mark_used(&self, ids: &[BlobId]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err(&self.path))?;
        let mut n = 0;
        {
            let mut st = tx
                .prepare_cached("INSERT OR IGNORE INTO used(id) VALUES (?1)")
                .map_err(db_err(&self.path))?;
            for id in ids {
                n += st.execute(params![&id.0[..]]).map_err(db_err(&self.path))?;
            }
        }
        tx.commit().map_err(db_err(&self.path))?;
        Ok(n)
    }

    /// Marks the base of every marked delta blob; returns how many were new.
    pub fn mark_bases(&self) -> Result<usize> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO used(id) SELECT b.base FROM used u JOIN blobs b ON b.id = u.id WHERE b.base IS NOT NULL",
                [],
            )
            .map_err(db_err(&self.path))
    }

    /// True when `id` was marked used.
    pub fn is_marked(&self, id: &BlobId) -> Result<bool> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT 1 FROM used WHERE id = ?1")
            .map_err(db_err(&self.path))?;
        st.exists(params![&id.0[..]]).map_err(db_err(&self.path))
    }

    /// Marked blobs that the index holds: (count, plaintext bytes, stored bytes).
    pub fn marked_totals(&self) -> Result<(u64, u64, u64)> {
        self.sums("FROM used u JOIN blobs b ON b.id = u.id")
    }

    /// All indexed blobs: (count, plaintext bytes, stored bytes).
    pub fn totals(&self) -> Result<(u64, u64, u64)> {
        self.sums("FROM blobs b")
    }

    /// Indexed blobs stored as deltas.
    pub fn delta_count(&self) -> Result<u64> {
        self.lock()
            .query_row(
                "SELECT COUNT(*) FROM blobs WHERE base IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db_err(&self.path))
    }

    fn sums(&self, from: &str) -> Result<(u64, u64, u64)> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(b.raw_length), 0), COALESCE(SUM(b.length), 0) {from}"
        );
        self.lock()
            .query_row(&sql, [], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .map_err(db_err(&self.path))
    }

    /// Marked blobs that the index does not hold.
    pub fn marked_but_missing(&self) -> Result<Vec<BlobId>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT u.id FROM used u LEFT JOIN blobs b ON b.id = u.id WHERE b.id IS NULL")
            .map_err(db_err(&self.path))?;
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(db_err(&self.path))?;
        rows.map(|r| {
            r.map_err(db_err(&self.path))
                .map(|b| BlobId::from_slice(&b).unwrap_or(BlobId([0; 32])))
        })
        .collect()
    }

    /// Every pack the cache knows (without aggregating their blobs, unlike
    /// [`SqliteIndex::pack_usage`]).
    pub fn pack_ids(&self) -> Result<HashSet<PackId>> {
        self.column("SELECT id FROM packs")?
            .iter()
            .map(|b| PackId::from_slice(b).ok_or_else(|| Error::cache(&self.path, "bad pack id")))
            .collect()
    }

    /// Per pack: (pack, sealed bytes of all its blobs, of the used ones,
    /// blob count). Second copies of blobs another pack holds count in the
    /// total and never as used, so prune reclaims them.
    pub fn pack_usage(&self) -> Result<Vec<(PackId, u64, u64, u64)>> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT p.id,
                    COALESCE(SUM(b.length), 0) + (SELECT COALESCE(SUM(d.length), 0) FROM dups d WHERE d.pid = p.pid),
                    COALESCE(SUM(CASE WHEN u.id IS NULL THEN 0 ELSE b.length END), 0),
                    COUNT(b.id) + (SELECT COUNT(*) FROM dups d WHERE d.pid = p.pid)
                 FROM packs p LEFT JOIN blobs b ON b.pid = p.pid LEFT JOIN used u ON u.id = b.id GROUP BY p.pid",
            )
            .map_err(db_err(&self.path))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db_err(&self.path))?;
        rows.map(|r| {
            let (p, t, u, n) = r.map_err(db_err(&self.path))?;
            Ok((
                PackId::from_slice(&p).unwrap_or(PackId([0; 32])),
                t as u64,
                u as u64,
                n as u64,
            ))
        })
        .collect()
    }

    /// The blobs of one pack: the used ones this pack is the index's
    /// location for (what a repack copies), or every one it holds, second
    /// copies included (what an index object lists).
    pub fn pack_entries(
        &self,
        pack: &PackId,
        used_only: bool,
    ) -> Result<Vec<crate::pack::PackEntry>> {
        let conn = self.lock();
        let sql = if used_only {
            "SELECT b.id, b.kind, b.offset, b.length, b.raw_length, b.base FROM blobs b JOIN packs p ON p.pid = b.pid JOIN used u ON u.id = b.id WHERE p.id = ?1 ORDER BY b.offset"
        } else {
            "SELECT id, kind, offset, length, raw_length, base FROM (
                 SELECT b.id, b.kind, b.offset, b.length, b.raw_length, b.base FROM blobs b JOIN packs p ON p.pid = b.pid WHERE p.id = ?1
                 UNION ALL
                 SELECT d.id, d.kind, d.offset, d.length, d.raw_length, d.base FROM dups d JOIN packs p ON p.pid = d.pid WHERE p.id = ?1)
             ORDER BY offset"
        };
        let mut st = conn.prepare_cached(sql).map_err(db_err(&self.path))?;
        let rows = st
            .query_map(params![&pack.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                ))
            })
            .map_err(db_err(&self.path))?;
        rows.map(|r| {
            let (id, kind, offset, length, raw_length, base) = r.map_err(db_err(&self.path))?;
            Ok(crate::pack::PackEntry {
                kind: BlobType::from_u8(kind)
                    .ok_or_else(|| Error::cache(&self.path, "bad blob type"))?,
                id: BlobId::from_slice(&id)
                    .ok_or_else(|| Error::cache(&self.path, "bad blob id"))?,
                offset,
                length,
                raw_length,
                base: base.and_then(|b| BlobId::from_slice(&b)),
            })
        })
        .collect()
    }

    /// Number of indexed blobs.
    pub fn len(&self) -> Result<u64> {
        self.lock()
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::PackEntry;
    use std::collections::HashMap;

    fn file(n: u8) -> IndexFile {
        IndexFile {
            packs: vec![(
                PackId([n; 32]),
                (0..10u8)
                    .map(|i| PackEntry {
                        kind: BlobType::Data,
                        id: BlobId([n.wrapping_mul(16).wrapping_add(i); 32]),
                        offset: u32::from(i) * 10,
                        length: 10,
                        raw_length: 20,
                        base: None,
                    })
                    .collect(),
            )],
            supersedes: vec![],
            sketches: vec![],
            writer: None,
        }
    }

    #[test]
    fn second_copies_count_as_unused_space_and_whole_copies_win() {
        let idx = SqliteIndex::open(None).unwrap();
        let entry = |id: u8, offset: u32, base: Option<u8>| PackEntry {
            kind: BlobType::Data,
            id: BlobId([id; 32]),
            offset,
            length: 100,
            raw_length: 200,
            base: base.map(|b| BlobId([b; 32])),
        };
        let (a, b) = (PackId([0xa; 32]), PackId([0xb; 32]));
        // Pack A: x as a delta of y, and y. Pack B (a racing writer): x whole, y, z.
        let one = IndexFile {
            packs: vec![(a, vec![entry(1, 0, Some(2)), entry(2, 100, None)])],
            ..Default::default()
        };
        let two = IndexFile {
            packs: vec![(
                b,
                vec![entry(1, 0, None), entry(2, 100, None), entry(3, 200, None)],
            )],
            ..Default::default()
        };
        idx.ingest(&IndexId([1; 32]), &one).unwrap();
        idx.ingest(&IndexId([2; 32]), &two).unwrap();
        // The same pack listed again (an adopted pack) adds nothing.
        idx.ingest(&IndexId([3; 32]), &two).unwrap();
        let x = idx.get(&BlobId([1; 32])).unwrap().unwrap();
        assert_eq!((x.pack, x.base), (b, None), "the whole copy is read");
        let y = idx.get(&BlobId([2; 32])).unwrap().unwrap();
        assert_eq!(y.pack, a, "otherwise the first copy stays");
        assert_eq!(idx.len().unwrap(), 3);
        idx.mark_used(&[BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32])])
            .unwrap();
        let usage: HashMap<PackId, (u64, u64, u64)> = idx
            .pack_usage()
            .unwrap()
            .into_iter()
            .map(|(p, t, u, n)| (p, (t, u, n)))
            .collect();
        // A: its delta copy of x is a second copy, unused; y is used here.
        assert_eq!(usage[&a], (200, 100, 2));
        // B: x and z used here; its y is a second copy.
        assert_eq!(usage[&b], (300, 200, 3));
        // Index objects written from the cache list every copy a pack holds.
        let listed: Vec<u8> = idx
            .pack_entries(&a, false)
            .unwrap()
            .iter()
            .map(|e| e.id.0[0])
            .collect();
        assert_eq!(listed, vec![1, 2]);
        assert_eq!(idx.pack_entries(&b, false).unwrap().len(), 3);
        // A repack copies only what this pack is the location of.
        let copied: Vec<u8> = idx
            .pack_entries(&a, true)
            .unwrap()
            .iter()
            .map(|e| e.id.0[0])
            .collect();
        assert_eq!(copied, vec![2]);
    }

    #[test]
    fn sync_ingests_new_and_rebuilds_after_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/index.sqlite");
        let idx = SqliteIndex::open(Some(&path)).unwrap();
        let (a, b) = (IndexId([1; 32]), IndexId([2; 32]));
        let load = |id: &IndexId| Ok(file(id.0[0]));
        assert_eq!(idx.sync(&[a, b], load).unwrap(), 2);
        assert_eq!(idx.len().unwrap(), 20);
        assert_eq!(idx.sync(&[a, b], load).unwrap(), 0);
        let loc = idx.get(&BlobId([16 + 3; 32])).unwrap().unwrap();
        assert_eq!((loc.pack, loc.offset), (PackId([1; 32]), 30));
        assert!(!idx.contains(&BlobId([200; 32])).unwrap());
        drop(idx);
        let idx = SqliteIndex::open(Some(&path)).unwrap();
        assert_eq!(idx.len().unwrap(), 20, "persisted");
        assert_eq!(
            idx.sync(&[b], load).unwrap(),
            1,
            "a vanished: rebuilt from b"
        );
        assert_eq!(idx.len().unwrap(), 10);
        assert!(!idx.contains(&BlobId([16; 32])).unwrap());
    }

    #[test]
    fn superseded_index_objects_are_ignored() {
        let idx = SqliteIndex::open(None).unwrap();
        let (a, b, c) = (IndexId([1; 32]), IndexId([2; 32]), IndexId([3; 32]));
        let load = |id: &IndexId| {
            let mut f = file(id.0[0]);
            if *id == c {
                f.supersedes = vec![a];
            }
            Ok(f)
        };
        idx.sync(&[a, b], load).unwrap();
        assert!(idx.contains(&BlobId([16; 32])).unwrap());
        // c replaces a while a still exists (a prune that has not deleted it yet).
        idx.sync(&[a, b, c], load).unwrap();
        assert!(
            !idx.contains(&BlobId([16; 32])).unwrap(),
            "entries of the superseded index are gone"
        );
        assert!(idx.contains(&BlobId([32; 32])).unwrap());
        assert!(idx.contains(&BlobId([48; 32])).unwrap());
        assert_eq!(
            idx.sync(&[a, b, c], load).unwrap(),
            0,
            "nothing to read once in line"
        );
        // From scratch, in any order.
        let fresh = SqliteIndex::open(None).unwrap();
        fresh.sync(&[c, b, a], load).unwrap();
        assert_eq!(fresh.len().unwrap(), 20);
        assert!(!fresh.contains(&BlobId([16; 32])).unwrap());
    }

    #[test]
    fn garbage_cache_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        std::fs::write(
            &path,
            b"this is not a database at all, not even close ............",
        )
        .unwrap();
        let idx = SqliteIndex::open(Some(&path)).unwrap();
        assert!(idx.is_empty().unwrap());
    }
}
