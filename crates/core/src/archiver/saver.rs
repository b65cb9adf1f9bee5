//! The blob saver: dedup, compress, seal, pack and upload, shared by all
//! workers of one backup.
//!
//! Workers call [`Saver::save`] in parallel: the dedup check and the sealing
//! run on the calling thread; the sealed blob goes into one of two open packs
//! per blob class, chosen at random (so pack contents do not mirror file
//! order); full packs go through a bounded queue to uploader threads, which
//! store them create-only and, every few packs, write an index object for what
//! is durably stored. Nothing is committed here: the snapshot, written by the
//! archiver after [`Saver::finish`], is the commit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use rand::Rng;
use vault_store::{FileType, Handle, StoreErrorKind};

use crate::blob::{delta_body, encode_body, seal_body, BlobType};
use crate::delta::{self, Sketch};
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::index::IndexFile;
use crate::pack::{PackEntry, PackWriter};
use crate::progress::Progress;
use crate::repository::Repository;

/// Packs written between two index objects (bounds what an interrupted backup
/// leaves unindexed).
const PACKS_PER_INDEX: usize = 4;
/// Open packs per blob class.
const OPEN_PACKS: usize = 2;

type Finished = (PackId, Bytes, Vec<PackEntry>);

/// Counters of new data.
#[derive(Default, Debug)]
pub(crate) struct SaverStats {
    pub bytes_added: AtomicU64,
    pub bytes_stored: AtomicU64,
    pub blobs_added: AtomicU64,
    /// New blobs stored as deltas.
    pub blobs_delta: AtomicU64,
}

pub(crate) struct Saver<'r> {
    repo: &'r Repository,
    progress: &'r dyn Progress,
    in_flight: Mutex<HashSet<BlobId>>,
    packers: [Mutex<Vec<PackWriter>>; 2],
    tx: Mutex<Option<Sender<Finished>>>,
    uploaded: Mutex<Vec<(PackId, Vec<PackEntry>)>>,
    /// Sketches of whole data blobs not yet in an index object.
    sketches: Mutex<HashMap<BlobId, Sketch>>,
    /// Lease identity recorded in the index objects written (see `IndexFile::writer`).
    writer: Option<String>,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    pub stats: SaverStats,
}

impl<'r> Saver<'r> {
    /// A saver and the receiving end its uploader threads drain.
    pub fn new(
        repo: &'r Repository,
        progress: &'r dyn Progress,
        queue: usize,
        writer: Option<&str>,
    ) -> (Self, Receiver<Finished>) {
        let (tx, rx) = bounded(queue);
        let packers = [Mutex::new(Vec::new()), Mutex::new(Vec::new())];
        let saver = Saver {
            repo,
            progress,
            in_flight: Mutex::new(HashSet::new()),
            packers,
            tx: Mutex::new(Some(tx)),
            uploaded: Mutex::new(Vec::new()),
            sketches: Mutex::new(HashMap::new()),
            writer: writer.map(str::to_owned),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            stats: SaverStats::default(),
        };
        (saver, rx)
    }

    /// The repository's working keys.
    pub fn repo_keys(&self) -> &crate::crypto::Keys {
        self.repo.keys()
    }

    fn check_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            let msg = lock(&self.failure)
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "upload failed".into());
            return Err(Error::Invalid(format!("backup aborted: {msg}")));
        }
        Ok(())
    }

    fn fail(&self, e: Error) {
        let mut f = lock(&self.failure);
        if f.is_none() {
            *f = Some(e);
        }
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Claims `id` for this backup: false when it is already stored or being stored.
    fn claim(&self, id: &BlobId) -> Result<bool> {
        if lock(&self.in_flight).contains(id) {
            return Ok(false);
        }
        if self.repo.index().contains(id)? {
            return Ok(false);
        }
        Ok(lock(&self.in_flight).insert(*id))
    }

    /// Stores `data` as a blob of `kind` unless it is already stored; returns its id.
    pub fn save(&self, kind: BlobType, data: &[u8]) -> Result<BlobId> {
        if data.len() > crate::blob::MAX_BLOB_SIZE {
            return Err(Error::Invalid(format!(
                "a {} blob of {} bytes exceeds the limit of {} (a directory with too many entries?)",
                kind.name(),
                data.len(),
                crate::blob::MAX_BLOB_SIZE
            )));
        }
        let id = self.repo.keys().blob_id(kind, data);
        self.save_with_id(kind, id, data)?;
        Ok(id)
    }

    /// As [`Saver::save`] with the id already computed.
    pub fn save_with_id(&self, kind: BlobType, id: BlobId, data: &[u8]) -> Result<bool> {
        self.check_failed()?;
        if !self.claim(&id)? {
            return Ok(false);
        }
        let (body, base, sketch) = if kind == BlobType::Data {
            self.encode_data(&id, data)
        } else {
            (
                encode_body(data, self.repo.config().compression),
                None,
                None,
            )
        };
        let sealed = seal_body(self.repo.keys(), kind, &id, &body);
        drop(body);
        self.stats
            .bytes_added
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.stats
            .bytes_stored
            .fetch_add(sealed.len() as u64, Ordering::Relaxed);
        self.stats.blobs_added.fetch_add(1, Ordering::Relaxed);
        if base.is_some() {
            self.stats.blobs_delta.fetch_add(1, Ordering::Relaxed);
        }
        self.progress.added(data.len() as u64, sealed.len() as u64);
        if let Some(sk) = sketch {
            lock(&self.sketches).insert(id, sk);
        }
        self.pack(kind, id, &sealed, data.len() as u32, base)?;
        Ok(true)
    }

    /// The body of a new data chunk: a delta against a similar stored chunk
    /// when that is meaningfully smaller, else the chunk compressed alone.
    /// Also returns the delta's base, or the sketch of a whole chunk (which
    /// later chunks may use as their base).
    fn encode_data(&self, id: &BlobId, data: &[u8]) -> (Vec<u8>, Option<BlobId>, Option<Sketch>) {
        let config = self.repo.config();
        let compression = config.compression;
        let sketch = if config.delta {
            self.repo.keys().sketch(data)
        } else {
            None
        };
        if let (Some(sk), Some(_)) = (sketch, compression.zstd_level) {
            // Deltas are an optimisation: when the base cannot be found or
            // read, the chunk is simply stored whole.
            let base = self
                .repo
                .index()
                .similar(&sk)
                .ok()
                .flatten()
                .filter(|b| b != id);
            let frame = base.and_then(|b| {
                let plain = self.repo.read_blob(BlobType::Data, &b).ok()?;
                delta::encode(&plain, data, delta::DELTA_LEVEL).ok()
            });
            if let (Some(base), Some(frame)) = (base, frame) {
                if delta::clearly_worth_it(frame.len(), data.len()) {
                    return (delta_body(&base, &frame), Some(base), None);
                }
                let whole = encode_body(data, compression);
                if delta::worth_it(frame.len() + 32, whole.len()) {
                    return (delta_body(&base, &frame), Some(base), None);
                }
                return (whole, None, sketch);
            }
        }
        (encode_body(data, compression), None, sketch)
    }

    /// Adds an already sealed blob (repacking: no re-encryption). Skips ids
    /// this saver already holds.
    pub fn add_sealed(
        &self,
        entry: &PackEntry,
        sealed: &[u8],
        sketch: Option<Sketch>,
    ) -> Result<()> {
        let PackEntry {
            kind,
            id,
            raw_length,
            base,
            ..
        } = *entry;
        self.check_failed()?;
        if !lock(&self.in_flight).insert(id) {
            return Ok(());
        }
        self.stats
            .bytes_stored
            .fetch_add(sealed.len() as u64, Ordering::Relaxed);
        self.stats.blobs_added.fetch_add(1, Ordering::Relaxed);
        if let Some(sk) = sketch {
            lock(&self.sketches).insert(id, sk);
        }
        self.pack(kind, id, sealed, raw_length, base)
    }

    /// Puts a sealed blob into one of the open packs of its class, chosen at
    /// random, and hands the pack to the uploaders once it is full.
    fn pack(
        &self,
        kind: BlobType,
        id: BlobId,
        sealed: &[u8],
        raw_length: u32,
        base: Option<BlobId>,
    ) -> Result<()> {
        let target = self.repo.config().pack_size as usize;
        let full = {
            let mut slot = lock(&self.packers[usize::from(kind != BlobType::Data)]);
            if slot.len() < OPEN_PACKS {
                slot.push(PackWriter::with_capacity(target + target / 8));
            }
            let i = rand::thread_rng().gen_range(0..slot.len());
            slot[i].add(kind, id, sealed, raw_length, base);
            (slot[i].size() >= target).then(|| slot.swap_remove(i))
        };
        match full {
            Some(w) => self.send(w),
            None => Ok(()),
        }
    }

    fn send(&self, w: PackWriter) -> Result<()> {
        let finished = w.finish(self.repo.keys())?;
        let tx = lock(&self.tx).clone();
        match tx {
            Some(tx) if tx.send(finished).is_ok() => Ok(()),
            _ => {
                self.check_failed()?;
                Err(Error::Invalid(
                    "backup aborted: the upload queue is closed".into(),
                ))
            }
        }
    }

    /// Uploader thread body: stores packs until the queue closes.
    pub fn upload_loop(&self, rx: Receiver<Finished>) {
        for (id, bytes, entries) in rx {
            if self.failed.load(Ordering::Relaxed) {
                continue; // drain so producers never block
            }
            let res = Handle::new(FileType::Pack, id.to_hex())
                .map_err(Error::from)
                .and_then(|h| match self.repo.backend().create(&h, bytes) {
                    Err(e) if e.kind() != StoreErrorKind::AlreadyExists => Err(e.into()),
                    _ => Ok(()),
                });
            match res {
                Ok(()) => {
                    let batch = {
                        let mut up = lock(&self.uploaded);
                        up.push((id, entries));
                        (up.len() >= PACKS_PER_INDEX).then(|| std::mem::take(&mut *up))
                    };
                    if let Some(batch) = batch {
                        if let Err(e) = self.write_index(batch) {
                            self.fail(e);
                        }
                    }
                }
                Err(e) => self.fail(e),
            }
        }
    }

    fn write_index(&self, packs: Vec<(PackId, Vec<PackEntry>)>) -> Result<()> {
        if packs.is_empty() {
            return Ok(());
        }
        let sketches = {
            let mut all = lock(&self.sketches);
            packs
                .iter()
                .flat_map(|(_, entries)| entries)
                .filter_map(|e| all.remove(&e.id).map(|sk| (e.id, sk)))
                .collect()
        };
        self.repo.save_index(&IndexFile {
            packs,
            supersedes: Vec::new(),
            sketches,
            writer: self.writer.clone(),
        })?;
        Ok(())
    }

    /// Flushes open packs and closes the queue (uploaders then finish).
    pub fn flush(&self) -> Result<()> {
        for slot in &self.packers {
            let writers = std::mem::take(&mut *lock(slot));
            for w in writers.into_iter().filter(|w| !w.is_empty()) {
                self.send(w)?;
            }
        }
        lock(&self.tx).take();
        Ok(())
    }

    /// After the uploaders have stopped: indexes the last packs, reports the
    /// first failure.
    pub fn finish(&self) -> Result<()> {
        if let Some(e) = lock(&self.failure).take() {
            return Err(e);
        }
        let rest = std::mem::take(&mut *lock(&self.uploaded));
        self.write_index(rest)
    }

    /// Closes the queue without flushing (on error paths).
    pub fn abort(&self) {
        lock(&self.tx).take();
    }
}

/// What a [`with_saver`] run added to the repository.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Added {
    pub bytes_added: u64,
    pub bytes_stored: u64,
    pub blobs_added: u64,
    pub blobs_delta: u64,
}

/// Runs `work` with a saver whose full packs `uploaders` threads store while
/// it runs; then flushes, waits for the uploads and indexes them. When this
/// returns `Ok`, everything `work` saved is durably stored and indexed, so a
/// snapshot referencing it may be committed. `writer` is the lease identity
/// of the caller (recorded in its index objects, so prune leaves its packs
/// alone while it runs).
pub(crate) fn with_saver<'r, T: Send>(
    repo: &'r Repository,
    progress: &'r dyn Progress,
    uploaders: usize,
    writer: Option<&str>,
    work: impl FnOnce(&Saver<'r>) -> Result<T> + Send,
) -> Result<(T, Added)> {
    let (saver, rx) = Saver::new(repo, progress, 2, writer);
    let out = std::thread::scope(|s| {
        for _ in 0..uploaders.max(1) {
            let rx = rx.clone();
            let saver = &saver;
            s.spawn(move || saver.upload_loop(rx));
        }
        drop(rx);
        let result = work(&saver).and_then(|r| saver.flush().map(|()| r));
        if result.is_err() {
            saver.abort();
        }
        result
    })?;
    saver.finish()?;
    let added = Added {
        bytes_added: saver.stats.bytes_added.load(Ordering::Relaxed),
        bytes_stored: saver.stats.bytes_stored.load(Ordering::Relaxed),
        blobs_added: saver.stats.blobs_added.load(Ordering::Relaxed),
        blobs_delta: saver.stats.blobs_delta.load(Ordering::Relaxed),
    };
    Ok((out, added))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
