//! Repair: rebuild what can be rebuilt, and make damaged snapshots
//! restorable by leaving out what is lost. Nothing is deleted that the user
//! did not ask for: repaired snapshots are new objects, and the originals stay
//! unless `forget` is set.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use vault_store::{FileType, Handle};

use crate::archiver::saver::with_saver;
use crate::blob::BlobType;
use crate::error::Result;
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::IndexFile;
use crate::pack::PackEntry;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::tree::{Node, NodeKind, Tree};

/// Outcome of `repair index`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairIndexReport {
    /// Packs whose headers were read.
    pub packs: u64,
    /// Blobs indexed.
    pub blobs: u64,
    /// Packs whose header could not be read (their blobs are lost).
    pub damaged: Vec<(PackId, String)>,
    /// Index objects replaced.
    pub replaced: u64,
    /// Stale prune locks removed on the way (described).
    pub stale_removed: Vec<String>,
}

/// Outcome of `repair snapshots`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairSnapshotsReport {
    /// (damaged snapshot, repaired snapshot, paths left out).
    pub repaired: Vec<(SnapshotId, SnapshotId, Vec<String>)>,
    /// Snapshots that needed nothing.
    pub intact: u64,
    /// Stale prune locks removed on the way (described).
    pub stale_removed: Vec<String>,
}

impl Repository {
    /// Rebuilds the index from the headers of every pack, replacing all index
    /// objects. Holds the prune lock while it works.
    pub fn repair_index(&self, progress: &dyn Progress) -> Result<RepairIndexReport> {
        let (r, replaced) =
            self.with_prune_lock(|lock| self.repair_index_locked(lock, progress))?;
        Ok(RepairIndexReport {
            stale_removed: replaced,
            ..r
        })
    }

    fn repair_index_locked(
        &self,
        lock: &crate::lock::Held<'_>,
        _progress: &dyn Progress,
    ) -> Result<RepairIndexReport> {
        let old: Vec<IndexId> = self.index_ids()?;
        let packs: Vec<(PackId, u64)> = self
            .backend()
            .list(FileType::Pack)?
            .into_iter()
            .filter_map(|(n, s)| PackId::from_hex(&n).map(|p| (p, s)))
            .collect();
        let headers: Vec<(PackId, Result<Vec<PackEntry>>)> = packs
            .par_iter()
            .map(|(p, size)| (*p, self.pack_header(p, *size)))
            .collect();
        let mut report = RepairIndexReport::default();
        let mut files = vec![IndexFile::default()];
        for (p, r) in headers {
            match r {
                Ok(entries) => {
                    report.packs += 1;
                    report.blobs += entries.len() as u64;
                    if files.last().is_some_and(|f| f.blob_count() > 50_000) {
                        files.push(IndexFile::default());
                    }
                    let f = files.last_mut().expect("non-empty");
                    // Sketches are hints for future deltas: keep those the
                    // local cache still has (a pack header does not carry them).
                    f.sketches
                        .extend(self.index().pack_sketches(&p).unwrap_or_default());
                    f.packs.push((p, entries));
                }
                Err(e) => report.damaged.push((p, e.to_string())),
            }
        }
        let last = files.len() - 1;
        for (i, mut f) in files.into_iter().enumerate() {
            if i == last {
                f.supersedes = old.clone();
                lock.ensure_valid()?;
            }
            self.write_object(FileType::Index, bytes::Bytes::from(f.seal(self.keys())))?;
        }
        lock.ensure_valid()?;
        for id in &old {
            self.backend()
                .delete(&Handle::new(FileType::Index, id.to_hex())?)?;
        }
        report.replaced = old.len() as u64;
        self.refresh_index()?;
        Ok(report)
    }

    /// Writes a repaired copy of every snapshot that references lost data,
    /// leaving out the files (and directories) that cannot be restored.
    /// With `forget`, the damaged originals are removed afterwards.
    /// It holds the prune lock while it works, as prune and repair index do.
    pub fn repair_snapshots(
        &self,
        forget: bool,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<RepairSnapshotsReport> {
        let (r, replaced) = self.with_prune_lock(|lock| {
            self.repair_snapshots_locked(forget, dry_run, lock, progress)
        })?;
        Ok(RepairSnapshotsReport {
            stale_removed: replaced,
            ..r
        })
    }

    fn repair_snapshots_locked(
        &self,
        forget: bool,
        dry_run: bool,
        lock: &crate::lock::Held<'_>,
        progress: &dyn Progress,
    ) -> Result<RepairSnapshotsReport> {
        let mut report = RepairSnapshotsReport::default();
        let (snaps, _) = self.list_snapshots_checked()?;
        // Packs the index names that the store no longer has.
        let stored: HashSet<String> = self
            .backend()
            .list(FileType::Pack)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let gone: HashSet<PackId> = self
            .index()
            .pack_ids()?
            .into_iter()
            .filter(|p| !stored.contains(&p.to_hex()))
            .collect();
        let gone = &gone;
        let mut memo: HashMap<BlobId, Option<(BlobId, Vec<String>)>> = HashMap::new();
        for (id, snap) in snaps {
            let mut lost = Vec::new();
            let new_tree = if dry_run {
                self.scan_tree(&snap.tree, "", gone, &mut lost);
                None
            } else {
                let (tree, l) = with_saver(self, progress, 2, None, |saver| {
                    let mut lost = Vec::new();
                    let t = self.repair_tree(saver, &snap.tree, "", gone, &mut lost, &mut memo)?;
                    Ok((t, lost))
                })?
                .0;
                lost = l;
                Some(tree)
            };
            if lost.is_empty() {
                report.intact += 1;
                continue;
            }
            let new_id = match new_tree {
                Some(tree) => {
                    let mut fixed = snap.clone();
                    fixed.tree = tree;
                    fixed.tags.push("repaired".into());
                    fixed.original = Some(id);
                    lock.ensure_valid()?;
                    let nid = self.save_snapshot(&fixed)?;
                    if forget {
                        self.remove_snapshots(&[id])?;
                    }
                    nid
                }
                None => id,
            };
            report.repaired.push((id, new_id, lost));
        }
        Ok(report)
    }

    /// Every chunk of the file is usable: indexed, in a pack that exists,
    /// and (for a delta) with a usable whole base.
    fn file_ok(&self, n: &Node, gone: &HashSet<PackId>) -> bool {
        let bad = crate::check::Bad {
            packs: gone,
            blobs: &HashSet::new(),
        };
        let mut ok = true;
        let r = self.for_each_chunk_list(&n.content, n.content_depth, &mut |ids| {
            ok &= ids.iter().all(|i| self.chunk_usable(i, &bad));
            Ok(())
        });
        ok && r.is_ok()
    }

    fn scan_tree(&self, id: &BlobId, path: &str, gone: &HashSet<PackId>, lost: &mut Vec<String>) {
        let Ok(tree) = self.load_tree(id) else {
            lost.push(if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            });
            return;
        };
        for n in &tree.nodes {
            let p = format!("{path}/{}", n.name);
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => self.scan_tree(&sub, &p, gone, lost),
                (NodeKind::File, _) if !self.file_ok(n, gone) => lost.push(p),
                _ => {}
            }
        }
    }

    /// Returns the repaired tree's id (the same id when nothing was lost).
    fn repair_tree(
        &self,
        saver: &crate::archiver::saver::Saver<'_>,
        id: &BlobId,
        path: &str,
        gone: &HashSet<PackId>,
        lost: &mut Vec<String>,
        memo: &mut HashMap<BlobId, Option<(BlobId, Vec<String>)>>,
    ) -> Result<BlobId> {
        if let Some(Some((new, l))) = memo.get(id) {
            lost.extend(l.iter().cloned());
            return Ok(*new);
        }
        let Ok(tree) = self.load_tree(id) else {
            lost.push(if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            });
            return saver.save(BlobType::Tree, &Tree::default().encode());
        };
        let mut here = Vec::new();
        let mut nodes = Vec::new();
        for mut n in tree.nodes {
            let p = format!("{path}/{}", n.name);
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => {
                    n.subtree = Some(self.repair_tree(saver, &sub, &p, gone, &mut here, memo)?);
                    nodes.push(n);
                }
                (NodeKind::File, _) if !self.file_ok(&n, gone) => here.push(p),
                _ => nodes.push(n),
            }
        }
        let new = if here.is_empty() {
            *id
        } else {
            saver.save(BlobType::Tree, &Tree { nodes }.encode())?
        };
        memo.insert(*id, Some((new, here.clone())));
        lost.extend(here);
        Ok(new)
    }
}
