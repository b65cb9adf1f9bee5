//! Copying snapshots between repositories.
//!
//! Each repository has its own keys, so chunk ids differ between them: a
//! chunk is read from the source, re-identified and re-sealed under the
//! target's keys, and stored only if the target lacks it. Trees are rewritten
//! with the target's ids. File digests are plain BLAKE3 of the content, so
//! they carry over unchanged. A snapshot already copied (the target has one
//! whose `original` is its id) is skipped, so copying twice copies nothing.
//! Within one run, a map of source id → target id lets shared trees and
//! lists be copied once.

use std::collections::HashMap;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::archiver::saver::{with_saver, Saver};
use crate::blob::BlobType;
use crate::error::Result;
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{ContentBuilder, Node, NodeKind, Tree};

/// Chunks read and re-sealed in parallel per window.
const WINDOW: usize = 16;

/// Outcome of a copy.
#[derive(Clone, Debug, Default)]
pub struct CopySummary {
    /// Snapshots written to the target, as (source id, target id).
    pub copied: Vec<(SnapshotId, SnapshotId)>,
    /// Snapshots the target already had.
    pub skipped: Vec<SnapshotId>,
    /// Blobs read from the source.
    pub blobs_read: u64,
    /// Blobs new to the target.
    pub blobs_added: u64,
    /// Bytes stored in the target (after compression and sealing).
    pub bytes_stored: u64,
    /// Stale leases and locks removed on the way (described).
    pub stale_removed: Vec<String>,
}

struct Copier<'a, 'r> {
    src: &'a Repository,
    saver: &'a Saver<'r>,
    /// Source id → target id, for this run (trees and lists are often shared).
    seen: Mutex<HashMap<BlobId, BlobId>>,
    read: std::sync::atomic::AtomicU64,
    progress: &'a dyn Progress,
}

impl Repository {
    /// Copies `snapshots` of `src` into this repository (see the module docs),
    /// under a lease like a backup (prune leaves its new data alone while it
    /// runs). Stale leases and locks removed on the way are in the summary.
    pub fn copy_from(
        &self,
        src: &Repository,
        snapshots: &[(SnapshotId, Snapshot)],
        progress: &dyn Progress,
    ) -> Result<CopySummary> {
        let (result, stale) =
            self.with_lease(|lease| self.copy_leased(src, snapshots, lease, progress))?;
        result.map(|s| CopySummary {
            stale_removed: stale,
            ..s
        })
    }

    fn copy_leased(
        &self,
        src: &Repository,
        snapshots: &[(SnapshotId, Snapshot)],
        lease: &crate::lock::Held<'_>,
        progress: &dyn Progress,
    ) -> Result<CopySummary> {
        let existing: Vec<SnapshotId> = self
            .list_snapshots()?
            .into_iter()
            .filter_map(|(_, s)| s.original)
            .collect();
        let mut summary = CopySummary::default();
        progress.total(
            snapshots
                .iter()
                .filter(|(id, _)| !existing.contains(id))
                .map(|(_, s)| s.summary.bytes_total)
                .sum(),
        );
        for (id, snap) in snapshots {
            if existing.contains(id) {
                summary.skipped.push(*id);
                continue;
            }
            let ((tree, read), added) =
                with_saver(self, progress, 2, Some(lease.key()), |saver| {
                    let copier = Copier {
                        src,
                        saver,
                        seen: Mutex::new(HashMap::new()),
                        read: Default::default(),
                        progress,
                    };
                    let tree = copier.tree(&snap.tree)?;
                    Ok((tree, copier.read.into_inner()))
                })?;
            let mut copy = snap.clone();
            copy.tree = tree;
            copy.parent = None;
            copy.original = Some(*id);
            lease.ensure_valid()?;
            let new_id = self.save_snapshot(&copy)?;
            summary.copied.push((*id, new_id));
            summary.blobs_read += read;
            summary.blobs_added += added.blobs_added;
            summary.bytes_stored += added.bytes_stored;
        }
        Ok(summary)
    }
}

impl Copier<'_, '_> {
    fn known(&self, id: &BlobId) -> Option<BlobId> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn remember(&self, from: BlobId, to: BlobId) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(from, to);
    }

    /// Copies data chunks, reading those not copied yet in one batch (runs
    /// of neighbours in one request, delta bases with them); returns their
    /// ids in the target, in order.
    fn chunks(&self, window: &[BlobId]) -> Result<Vec<BlobId>> {
        let todo: Vec<BlobId> = window
            .iter()
            .filter(|c| self.known(c).is_none())
            .copied()
            .collect();
        let plain = self.src.read_blobs(BlobType::Data, &todo)?;
        self.read
            .fetch_add(todo.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let saved: Vec<BlobId> = plain
            .par_iter()
            .map(|data| {
                self.progress.bytes(data.len() as u64);
                self.saver.save(BlobType::Data, data)
            })
            .collect::<Result<_>>()?;
        for (from, to) in todo.iter().zip(saved) {
            self.remember(*from, to);
        }
        window
            .iter()
            .map(|c| {
                self.known(c).ok_or_else(|| {
                    crate::Error::Invalid(format!("chunk {} was not copied", c.to_hex()))
                })
            })
            .collect()
    }

    fn tree(&self, id: &BlobId) -> Result<BlobId> {
        if let Some(t) = self.known(id) {
            return Ok(t);
        }
        let tree = self.src.load_tree(id)?;
        let nodes = tree
            .nodes
            .into_par_iter()
            .map(|n| self.node(n))
            .collect::<Result<Vec<Node>>>()?;
        let new = self.saver.save(BlobType::Tree, &Tree { nodes }.encode())?;
        self.remember(*id, new);
        Ok(new)
    }

    fn node(&self, mut node: Node) -> Result<Node> {
        match node.kind {
            NodeKind::Dir => {
                if let Some(sub) = node.subtree {
                    node.subtree = Some(self.tree(&sub)?);
                }
            }
            NodeKind::File => {
                self.progress.file(std::path::Path::new(&node.name));
                let mut builder = ContentBuilder::default();
                let mut save_list = |b: Vec<u8>| self.saver.save(BlobType::List, &b);
                let mut ids = Vec::new();
                self.src.for_each_chunk_list(
                    &node.content,
                    node.content_depth,
                    &mut |chunk_ids| {
                        for window in chunk_ids.chunks(WINDOW) {
                            ids.extend(self.chunks(window)?);
                        }
                        Ok(())
                    },
                )?;
                for id in ids {
                    builder.push(id, &mut save_list)?;
                }
                let (content, depth) = builder.finish(&mut save_list)?;
                node.content = content;
                node.content_depth = depth;
            }
            NodeKind::Symlink => {}
        }
        Ok(node)
    }
}
