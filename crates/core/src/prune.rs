//! Prune: give back the space that no snapshot uses, without ever risking a
//! snapshot that is kept or being written.
//!
//! Order of work (each step durable before the next):
//!
//! 1. Take the exclusive prune lock; remove stale leases and locks.
//! 2. List packs, *then* list live leases (a pack present in the listing was
//!    written under a lease that is either still visible or gone for good).
//! 3. Mark every blob reachable from every snapshot (in the SQLite cache, so
//!    memory stays bounded), and the base of every marked delta blob. A used blob the index lacks but a pack awaiting
//!    deletion holds is *rescued*: copied into a new pack (a backup that ran
//!    during an earlier prune may have deduplicated against it).
//! 4. Classify packs: wholly unused → delete; partly unused beyond
//!    `max_unused` → repack (the used blobs are copied, still sealed, into new
//!    packs); packs no index mentions → delete, but only when no backup is
//!    running (they may be a running backup's, not yet indexed).
//! 5. Write the new packs and their index objects; then new index objects for
//!    every kept pack, the last of which supersedes all the old ones; then
//!    delete the old index objects.
//! 6. List live leases again. Delete the packs at once when none exists, in
//!    this listing or the first; otherwise record them in `locks/pending-*`
//!    with the leases seen, and delete them in a later prune once every one
//!    of those leases is gone.
//!
//! A prune killed at any point leaves a repository where every kept snapshot
//! restores: until the superseding index object exists the old index is the
//! truth; after it, everything kept is in the new index; packs are deleted
//! last. Running prune again finishes the job.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vault_store::{FileType, Handle};

use crate::archiver::saver::with_saver;
use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::IndexFile;
use crate::pack::{header_length, parse_header, PackEntry};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::tree::{decode_list, NodeKind};

const PENDING_AD: &[u8] = b"vault pending deletion v1";
/// Blob entries per index object written by prune.
const ENTRIES_PER_INDEX: usize = 50_000;

/// How prune behaves.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when more than this fraction of it is unused (0.0..=1.0).
    pub max_unused: f64,
    /// Repack at most this many bytes of used data in one run.
    pub max_repack_bytes: Option<u64>,
    /// Plan only.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.05,
            max_repack_bytes: None,
            dry_run: false,
        }
    }
}

/// What prune will do, or did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Packs in the index.
    pub packs: u64,
    /// Bytes of those packs' blobs.
    pub bytes_total: u64,
    /// Bytes of blobs some snapshot uses.
    pub bytes_used: u64,
    /// Wholly unused packs to delete.
    pub delete: Vec<PackId>,
    /// Partly unused packs to repack.
    pub repack: Vec<PackId>,
    /// Packs no index mentions (interrupted backups).
    pub unreferenced: Vec<PackId>,
    /// Used blobs copied out of packs awaiting deletion.
    pub rescued: u64,
    /// Bytes freed (or to be freed) by this run's deletions.
    pub bytes_freed: u64,
    /// Packs deleted now.
    pub deleted_now: u64,
    /// Packs whose deletion waits for running backups.
    pub deferred: u64,
    /// Packs deleted from earlier deferred prunes.
    pub deleted_pending: u64,
    /// Stale leases and locks removed.
    pub stale_removed: Vec<String>,
    /// True when nothing was changed.
    pub dry_run: bool,
}

/// A deferred deletion, waiting for the leases it saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    packs: Vec<PackId>,
    leases: Vec<String>,
    created: String,
}

impl Repository {
    /// Runs prune (see the module docs).
    pub fn prune(&self, opts: &PruneOptions, progress: &dyn Progress) -> Result<PruneReport> {
        let (mut report, replaced) =
            self.with_prune_lock(|lock| self.prune_locked(opts, lock, progress))?;
        report.stale_removed.extend(replaced);
        Ok(report)
    }

    fn prune_locked(
        &self,
        opts: &PruneOptions,
        lock: &crate::lock::Held<'_>,
        progress: &dyn Progress,
    ) -> Result<PruneReport> {
        let mut report = PruneReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let stored: HashMap<PackId, u64> = self
            .backend()
            .list(FileType::Pack)?
            .into_iter()
            .filter_map(|(n, s)| PackId::from_hex(&n).map(|p| (p, s)))
            .collect();
        // The view prune works on, listed in this order: leases, snapshots,
        // index objects (into a private cache: the shared one may change under
        // it), leases again. A snapshot is committed after its index objects,
        // so every snapshot listed has its blobs in the index objects listed
        // next. A snapshot committed before the second lease listing but not
        // in the first snapshot listing could use packs this view would call
        // unused: then the view is taken again.
        let mut attempt = 0;
        let (live, snaps, old_index, private, _guard, writers, mut running) = loop {
            attempt += 1;
            let live = self.live_leases()?;
            let (snaps, damaged) = self.list_snapshots_checked()?;
            if let Some((id, e)) = damaged.first() {
                return Err(Error::Invalid(format!(
                    "snapshot {id} cannot be read ({e}); prune cannot know what it references and removed nothing: run `vault check`"
                )));
            }
            let old_index: Vec<IndexId> = self.index_ids()?;
            let (private, guard, writers) = self.with_private_index(&old_index)?;
            // Packs of backups still running are not used by any snapshot
            // yet: leave them alone. A backup that wrote an index object
            // listed above took its lease before that listing, so this
            // listing finds it if it still runs.
            let mut running = live.clone();
            for l in self.live_leases()? {
                if !running.contains(&l) {
                    running.push(l);
                }
            }
            let seen: HashSet<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
            let committed_meanwhile = self
                .snapshot_ids()?
                .into_iter()
                .any(|id| !seen.contains(&id));
            if !committed_meanwhile {
                break (live, snaps, old_index, private, guard, writers, running);
            }
            if attempt >= 10 {
                return Err(Error::Invalid(
                    "snapshots kept being committed while prune read the repository; it removed nothing: run prune again".into(),
                ));
            }
        };
        let repo = &private;
        let running_keys: HashSet<String> = running
            .iter()
            .map(|l| crate::lock::lock_key(l).to_owned())
            .collect();
        let in_progress: HashSet<PackId> = writers
            .into_iter()
            .filter(|(w, _)| running_keys.contains(w))
            .flat_map(|(_, packs)| packs)
            .collect();
        let pending = repo.pending()?;

        // Mark. Blobs the index lacks are found in packs outside it (awaiting
        // deletion, or left by an interrupted prune or backup): see
        // `Repository::lookup`.
        let known: HashSet<PackId> = repo.index().pack_ids()?;
        repo.index().clear_marks()?;
        for (_, s) in &snaps {
            repo.mark_tree(&s.tree)?;
        }
        repo.mark_bases()?;

        // Classify.
        let pending_packs: HashSet<PackId> = pending
            .iter()
            .flat_map(|(_, p)| p.packs.iter().copied())
            .collect();
        let usage = repo.index().pack_usage()?;
        let mut repack_budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
        for (pack, total, used, _) in &usage {
            report.packs += 1;
            if in_progress.contains(pack) {
                report.bytes_total += total;
                report.bytes_used += total;
                continue;
            }
            report.bytes_total += total;
            report.bytes_used += used;
            if *used == 0 {
                report.delete.push(*pack);
                report.bytes_freed += stored.get(pack).copied().unwrap_or(*total);
            } else if (*total - *used) as f64 > opts.max_unused * *total as f64
                && *used <= repack_budget
            {
                repack_budget -= used;
                report.repack.push(*pack);
                report.bytes_freed += total - used;
            }
        }
        if live.is_empty() {
            for (pack, size) in &stored {
                if !known.contains(pack) && !pending_packs.contains(pack) {
                    report.unreferenced.push(*pack);
                    report.bytes_freed += size;
                }
            }
        }
        // Used blobs that only packs outside the index hold (awaiting deletion,
        // or left by a prune that was interrupted): rescue them.
        let missing = repo.index().marked_but_missing()?;
        let mut rescue: Vec<(PackId, PackEntry)> = Vec::new();
        if !missing.is_empty() {
            for id in &missing {
                match repo.lookup(id)? {
                    Some(l) => rescue.push((
                        l.pack,
                        PackEntry {
                            kind: l.kind,
                            id: *id,
                            offset: l.offset,
                            length: l.length,
                            raw_length: l.raw_length,
                            base: l.base,
                        },
                    )),
                    None => {
                        return Err(Error::Invalid(format!(
                            "{} blob(s) used by snapshots are in no index and no pack (first: {}); prune removed nothing: run `vault check`",
                            missing.len(),
                            id.to_hex()
                        )))
                    }
                }
            }
        }
        report.rescued = rescue.len() as u64;
        if opts.dry_run {
            return Ok(report);
        }

        // Repack and rescue, then rewrite the index.
        let dropped: HashSet<PackId> = report
            .delete
            .iter()
            .chain(&report.repack)
            .copied()
            .collect();
        if !report.repack.is_empty() || !rescue.is_empty() {
            let repack: HashSet<&PackId> = report.repack.iter().collect();
            progress.total(
                usage
                    .iter()
                    .filter(|u| repack.contains(&u.0))
                    .map(|u| u.2)
                    .sum::<u64>()
                    + rescue.iter().map(|(_, e)| u64::from(e.length)).sum::<u64>(),
            );
            with_saver(repo, progress, 2, None, |saver| {
                for pack in &report.repack {
                    let entries = repo.index().pack_entries(pack, true)?;
                    repo.copy_sealed(saver, pack, &entries, progress)?;
                }
                let mut by_pack: HashMap<PackId, Vec<PackEntry>> = HashMap::new();
                for (p, e) in &rescue {
                    by_pack.entry(*p).or_default().push(*e);
                }
                for (p, entries) in by_pack {
                    repo.copy_sealed(saver, &p, &entries, progress)?;
                }
                Ok(())
            })?;
        }
        if !dropped.is_empty() {
            lock.ensure_valid()?;
            repo.rewrite_index(&usage, &dropped, &old_index)?;
        }

        // Delete: now, or after the running backups.
        let mut doomed: Vec<PackId> = report
            .delete
            .iter()
            .chain(&report.repack)
            .copied()
            .collect();
        // Look again: a backup that announced itself after the first listing
        // may have read the index before the new one existed, and so may
        // reuse blobs of the doomed packs. A lease now, or a snapshot
        // committed since the listing, defers the deletion; the prune that
        // finally deletes marks from every snapshot then present first.
        for l in repo.live_leases()? {
            if !running.contains(&l) {
                running.push(l);
            }
        }
        let seen: HashSet<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
        let committed_since = repo
            .snapshot_ids()?
            .into_iter()
            .any(|id| !seen.contains(&id));
        // Packs in no index were written by backups whose leases were gone
        // at the first listing: nobody can reuse them.
        let unreferenced: Vec<PackId> = report.unreferenced.clone();
        // Deleting is only safe while no other prune can have taken over.
        lock.ensure_valid()?;
        if running.is_empty() && !committed_since {
            doomed.extend(unreferenced);
            for p in &doomed {
                repo.backend()
                    .delete(&Handle::new(FileType::Pack, p.to_hex())?)?;
            }
            report.deleted_now = doomed.len() as u64;
        } else {
            for p in &unreferenced {
                repo.backend()
                    .delete(&Handle::new(FileType::Pack, p.to_hex())?)?;
            }
            report.deleted_now = unreferenced.len() as u64;
            if !doomed.is_empty() {
                repo.record_pending(&Pending {
                    packs: doomed.clone(),
                    leases: running.clone(),
                    created: jiff::Timestamp::now().to_string(),
                })?;
                report.deferred = doomed.len() as u64;
            }
        }
        // By lease identity: a lease renamed by its refresh is the same backup.
        let live_set: HashSet<&str> = running.iter().map(|l| crate::lock::lock_key(l)).collect();
        // A record comes due once every lease it names is gone from all of
        // this run's listings. Only those backups can use its packs (they
        // read the index before it was rewritten; later ones neither
        // deduplicate against nor adopt them), and a lease is released after
        // its snapshot's commit, and a backup whose lease lapsed does not
        // commit: so whatever they committed was listed before this run
        // marked, and anything it needs from these packs was rescued above.
        // Snapshots committed meanwhile by other backups cannot need them.
        for (name, p) in pending {
            if p.leases
                .iter()
                .all(|l| !live_set.contains(crate::lock::lock_key(l)))
            {
                // A pack indexed again since (by `repair index`) may be in
                // use now: this run's own classification decided about it.
                for pack in p.packs.iter().filter(|p| !known.contains(p)) {
                    repo.backend()
                        .delete(&Handle::new(FileType::Pack, pack.to_hex())?)?;
                    report.deleted_pending += 1;
                }
                repo.release(&name)?;
            }
        }
        Ok(report)
    }

    pub(crate) fn mark_tree(&self, id: &BlobId) -> Result<()> {
        if self.index().is_marked(id)? {
            return Ok(());
        }
        self.index().mark_used(&[*id])?;
        let tree = crate::tree::Tree::decode(id, &self.read_blob(BlobType::Tree, id)?)?;
        for n in &tree.nodes {
            match n.kind {
                NodeKind::Dir => {
                    if let Some(sub) = n.subtree {
                        self.mark_tree(&sub)?;
                    }
                }
                NodeKind::File => self.mark_content(&n.content, n.content_depth)?,
                NodeKind::Symlink => {}
            }
        }
        Ok(())
    }

    fn mark_content(&self, ids: &[BlobId], depth: u8) -> Result<()> {
        self.index().mark_used(ids)?;
        if depth > 0 {
            for list in ids {
                let children = decode_list(list, &self.read_blob(BlobType::List, list)?)?;
                self.mark_content(&children, depth - 1)?;
            }
        }
        Ok(())
    }

    /// Marks the base of every used delta blob, whether the index or only a
    /// pack outside it holds the delta: a kept delta keeps its base.
    pub(crate) fn mark_bases(&self) -> Result<()> {
        self.index().mark_bases()?;
        let mut bases = Vec::new();
        for id in self.index().marked_but_missing()? {
            if let Some(b) = self.lookup(&id)?.and_then(|l| l.base) {
                bases.push(b);
            }
        }
        if self.index().mark_used(&bases)? > 0 {
            // A base is whole, so this adds nothing more; run once for
            // bases the index lists.
            self.index().mark_bases()?;
        }
        Ok(())
    }

    /// A pack's own header (two ranged reads).
    pub(crate) fn pack_header(&self, pack: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        let h = Handle::new(FileType::Pack, pack.to_hex())?;
        let trailer = self
            .backend()
            .read_range(&h, size.saturating_sub(4), 4.min(size))?;
        let len = header_length(pack, &trailer, size)?;
        let sealed = self
            .backend()
            .read_range(&h, size - 4 - u64::from(len), u64::from(len))?;
        parse_header(self.keys(), pack, &sealed, size)
    }

    fn copy_sealed(
        &self,
        saver: &crate::archiver::saver::Saver<'_>,
        pack: &PackId,
        entries: &[PackEntry],
        progress: &dyn Progress,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let sketches: HashMap<BlobId, crate::delta::Sketch> =
            self.index().pack_sketches(pack)?.into_iter().collect();
        let bytes = self
            .backend()
            .read(&Handle::new(FileType::Pack, pack.to_hex())?)?;
        for e in entries {
            let sealed = bytes
                .get(e.offset as usize..(e.offset + e.length) as usize)
                .ok_or_else(|| {
                    Error::corrupt(
                        format!("pack {}", pack.to_hex()),
                        "shorter than its index says",
                    )
                })?;
            // Verify before carrying it over: repacking must not spread
            // damage (a delta's frame is authenticated; it stays a delta
            // against the same base, which marking kept).
            crate::blob::open_body(self.keys(), e.kind, &e.id, sealed, e.raw_length)?;
            saver.add_sealed(e, sealed, sketches.get(&e.id).copied())?;
            progress.bytes(sealed.len() as u64);
        }
        Ok(())
    }

    /// Index objects for every kept pack; the last one supersedes `old`.
    fn rewrite_index(
        &self,
        usage: &[(PackId, u64, u64, u64)],
        dropped: &HashSet<PackId>,
        old: &[IndexId],
    ) -> Result<()> {
        let mut current = IndexFile::default();
        let mut count = 0;
        let mut files = Vec::new();
        for (pack, ..) in usage {
            if dropped.contains(pack) {
                continue;
            }
            let entries = self.index().pack_entries(pack, false)?;
            if entries.is_empty() {
                continue;
            }
            count += entries.len();
            current.sketches.extend(self.index().pack_sketches(pack)?);
            current.packs.push((*pack, entries));
            if count >= ENTRIES_PER_INDEX {
                files.push(std::mem::take(&mut current));
                count = 0;
            }
        }
        files.push(current);
        let last = files.len() - 1;
        for (i, mut f) in files.into_iter().enumerate() {
            if i == last {
                f.supersedes = old.to_vec();
            }
            let sealed = f.seal(self.keys());
            self.write_object(FileType::Index, Bytes::from(sealed))?;
        }
        for id in old {
            self.backend()
                .delete(&Handle::new(FileType::Index, id.to_hex())?)?;
        }
        Ok(())
    }

    /// Packs that earlier prunes left for a later one to delete.
    pub(crate) fn pending_packs(&self) -> Result<Vec<PackId>> {
        Ok(self
            .pending()?
            .into_iter()
            .flat_map(|(_, p)| p.packs)
            .collect())
    }

    fn pending(&self) -> Result<Vec<(String, Pending)>> {
        let mut out = Vec::new();
        for (name, _) in self.backend().list(FileType::Lock)? {
            if !name.starts_with("pending-") {
                continue;
            }
            let bytes = match self
                .backend()
                .read(&Handle::new(FileType::Lock, name.clone())?)
            {
                Ok(b) => b,
                // Carried out and released by a prune since the listing.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let plain = self
                .keys()
                .open(PENDING_AD, &bytes)
                .map_err(|e| Error::corrupt(format!("lock {name}"), e.to_string()))?;
            let p: Pending = serde_json::from_slice(&plain)
                .map_err(|e| Error::corrupt(format!("lock {name}"), e.to_string()))?;
            out.push((name, p));
        }
        Ok(out)
    }

    fn record_pending(&self, p: &Pending) -> Result<()> {
        let name = format!(
            "pending-{}",
            hex::encode(crate::crypto::random_bytes::<16>())
        );
        let sealed = self
            .keys()
            .seal(PENDING_AD, &serde_json::to_vec(p).expect("serializes"));
        // A random name: one that exists is this write, retried.
        match self
            .backend()
            .create(&Handle::new(FileType::Lock, name)?, Bytes::from(sealed))
        {
            Err(e) if e.kind() != vault_store::StoreErrorKind::AlreadyExists => Err(e.into()),
            _ => Ok(()),
        }
    }
}
