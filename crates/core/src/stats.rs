//! Statistics: how much the repository holds, how well it deduplicates and
//! compresses, and what each snapshot alone costs (what forgetting it would
//! free). Marking works in a private index cache, so it never disturbs a
//! running prune or backup.

use std::collections::BTreeMap;

use serde::Serialize;
use vault_store::FileType;

use crate::error::Result;
use crate::id::SnapshotId;
use crate::repository::Repository;
use crate::tree::NodeKind;

/// The repository as a whole.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepoStats {
    /// Snapshots.
    pub snapshots: u64,
    /// Pack objects.
    pub packs: u64,
    /// Bytes of all pack objects.
    pub stored_bytes: u64,
    /// Indexed blobs (each stored once).
    pub blobs: u64,
    /// Plaintext bytes of the indexed blobs.
    pub unique_bytes: u64,
    /// Sum of every snapshot's logical size (what restoring them all writes).
    pub logical_bytes: u64,
    /// `logical_bytes / unique_bytes`.
    pub dedup_ratio: f64,
    /// `unique_bytes / stored bytes of the blobs`.
    pub compression_ratio: f64,
    /// Data blobs stored as deltas of similar chunks.
    pub delta_blobs: u64,
}

/// One snapshot.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnapshotStats {
    /// The snapshot.
    pub id: Option<SnapshotId>,
    /// Logical size of its files.
    pub logical_bytes: u64,
    /// Files.
    pub files: u64,
    /// Blobs it references (trees, lists, chunks).
    pub blobs: u64,
    /// Plaintext bytes of those blobs.
    pub blob_bytes: u64,
    /// Of those, blobs no other snapshot references.
    pub unique_blobs: u64,
    /// Their plaintext bytes.
    pub unique_bytes: u64,
    /// Their stored bytes: about what forgetting this snapshot and pruning frees.
    pub unique_stored_bytes: u64,
}

/// Changed paths between two snapshots: (old size, new size), `None` where
/// the path is absent.
pub type Diff = BTreeMap<String, (Option<u64>, Option<u64>)>;

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Repository {
    /// Statistics of the whole repository.
    pub fn stats(&self) -> Result<RepoStats> {
        let packs = self.backend().list(FileType::Pack)?;
        let snaps = self.list_snapshots()?;
        let (blobs, unique_bytes, blob_stored) = self.index().totals()?;
        let logical_bytes = snaps.iter().map(|(_, s)| s.summary.bytes_total).sum();
        Ok(RepoStats {
            snapshots: snaps.len() as u64,
            packs: packs.len() as u64,
            stored_bytes: packs.iter().map(|(_, s)| s).sum(),
            blobs,
            unique_bytes,
            logical_bytes,
            dedup_ratio: ratio(logical_bytes, unique_bytes),
            compression_ratio: ratio(unique_bytes, blob_stored),
            delta_blobs: self.index().delta_count()?,
        })
    }

    /// Statistics of one snapshot, including the data only it references.
    pub fn snapshot_stats(&self, id: &SnapshotId) -> Result<SnapshotStats> {
        let snaps = self.list_snapshots()?;
        let (private, _guard, _) = self.with_private_index(&self.index_ids()?)?;
        let this = self.load_snapshot(id)?;
        let idx = private.index();
        // Referenced by this snapshot.
        idx.clear_marks()?;
        private.mark_tree(&this.tree)?;
        private.mark_bases()?;
        let (blobs, blob_bytes, _) = idx.marked_totals()?;
        // Referenced by the others, then by all: the difference is its own.
        idx.clear_marks()?;
        for (_, s) in snaps.iter().filter(|(other, _)| other != id) {
            private.mark_tree(&s.tree)?;
        }
        private.mark_bases()?;
        let others = idx.marked_totals()?;
        private.mark_tree(&this.tree)?;
        private.mark_bases()?;
        let all = idx.marked_totals()?;
        let mut files = 0;
        self.walk(&this, "/", &mut |_, n| {
            if n.kind == NodeKind::File {
                files += 1;
            }
            Ok(())
        })?;
        Ok(SnapshotStats {
            id: Some(*id),
            logical_bytes: this.summary.bytes_total,
            files,
            blobs,
            blob_bytes,
            unique_blobs: all.0 - others.0,
            unique_bytes: all.1 - others.1,
            unique_stored_bytes: all.2 - others.2,
        })
    }

    /// Differences between two snapshots: path → (old node size, new node
    /// size), `None` where the path is absent. Unchanged paths are left out.
    pub fn diff(
        &self,
        a: &crate::snapshot::Snapshot,
        b: &crate::snapshot::Snapshot,
    ) -> Result<Diff> {
        let mut left: BTreeMap<String, crate::tree::Node> = BTreeMap::new();
        self.walk(a, "/", &mut |p, n| {
            left.insert(p.to_owned(), n.clone());
            Ok(())
        })?;
        let mut out = BTreeMap::new();
        self.walk(b, "/", &mut |p, n| {
            match left.remove(p) {
                None => {
                    out.insert(p.to_owned(), (None, Some(n.size)));
                }
                Some(old) => {
                    let same = old.kind == n.kind
                        && old.size == n.size
                        && old.content == n.content
                        && old.target == n.target
                        && old.mode == n.mode;
                    if !same {
                        out.insert(p.to_owned(), (Some(old.size), Some(n.size)));
                    }
                }
            }
            Ok(())
        })?;
        for (p, n) in left {
            out.insert(p, (Some(n.size), None));
        }
        Ok(out)
    }
}
