//! Saving files and directory trees.
//!
//! The paths given are recorded under their absolute names (like restic), so
//! `/etc` and `/srv/app` live side by side in one root tree and a restore
//! recreates `TARGET/etc` and `TARGET/srv/app`. Entries of a directory are
//! processed in parallel; a file unchanged since the parent snapshot (same
//! size, mtime, ctime and inode) reuses its recorded content without being
//! read. Entries that cannot be read become warnings and are left out; store
//! failures abort the backup.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use super::saver::lock;
use super::stream::{StreamSaver, BATCH_BYTES};
use super::Warning;
use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::tree::{encode_os, Node, NodeKind, Tree};

#[derive(Default)]
pub(crate) struct Counters {
    pub files: AtomicU64,
    pub dirs: AtomicU64,
    pub unchanged: AtomicU64,
    pub bytes_total: AtomicU64,
    pub bytes_read: AtomicU64,
}

pub(crate) struct Walker<'a, 'r> {
    pub repo: &'r Repository,
    pub stream: StreamSaver<'a, 'r>,
    pub progress: &'a dyn Progress,
    /// Entries not to save (`BackupOptions::excludes`).
    pub excludes: Option<globset::GlobSet>,
    pub force: bool,
    pub counters: &'a Counters,
    pub warnings: Mutex<Vec<Warning>>,
}

/// The given paths arranged as a tree of their absolute components.
enum VNode {
    /// A path given by the user: saved whole.
    Leaf(PathBuf),
    /// A directory on the way to given paths: only its metadata is saved.
    Inner(PathBuf, BTreeMap<OsString, VNode>),
}

/// Makes `p` absolute and lexically clean (no `.`/`..`), without following symlinks.
pub(crate) fn absolute_clean(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io("resolving", p, e))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

fn insert(root: &mut BTreeMap<OsString, VNode>, path: &Path) {
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut level = root;
    let mut prefix = PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        prefix.push(name);
        if i + 1 == names.len() {
            level.insert(name.to_os_string(), VNode::Leaf(prefix));
            return;
        }
        let entry = level
            .entry(name.to_os_string())
            .or_insert_with(|| VNode::Inner(prefix.clone(), BTreeMap::new()));
        match entry {
            VNode::Leaf(_) => return, // an ancestor is saved whole already
            VNode::Inner(_, children) => level = children,
        }
    }
}

fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn node_from_meta(name: &OsStr, kind: NodeKind, m: &std::fs::Metadata) -> Node {
    let mut n = Node::new(name, kind);
    n.mode = m.mode() & 0o7777;
    n.mtime_ns = ns(m.mtime(), m.mtime_nsec());
    n.ctime_ns = ns(m.ctime(), m.ctime_nsec());
    n.uid = m.uid();
    n.gid = m.gid();
    n.inode = m.ino();
    n
}

impl Walker<'_, '_> {
    fn warn(&self, path: &Path, message: String) {
        self.progress.warning(path, &message);
        lock(&self.warnings).push(Warning {
            path: path.to_owned(),
            message,
        });
    }

    /// Saves the given paths; returns the root tree.
    pub fn save_paths(&self, paths: &[PathBuf], parent_root: Option<&Tree>) -> Result<BlobId> {
        let mut root = BTreeMap::new();
        for p in paths {
            let abs = absolute_clean(p)?;
            if abs == Path::new("/") {
                return Err(Error::Invalid(
                    "backing up `/` as a whole is not supported yet; name its directories".into(),
                ));
            }
            insert(&mut root, &abs);
        }
        self.save_vdir(&root, parent_root)
    }

    fn save_vdir(
        &self,
        children: &BTreeMap<OsString, VNode>,
        parent: Option<&Tree>,
    ) -> Result<BlobId> {
        let nodes: Vec<Option<Node>> = children
            .par_iter()
            .map(|(name, v)| {
                let pnode = parent.and_then(|t| t.find(name));
                match v {
                    VNode::Leaf(path) => self.save_entry(path, name, pnode),
                    VNode::Inner(path, sub) => {
                        let meta = match std::fs::symlink_metadata(path) {
                            Ok(m) => m,
                            Err(e) => {
                                self.warn(path, format!("cannot read: {e}"));
                                return Ok(None);
                            }
                        };
                        let ptree = self.parent_subtree(pnode)?;
                        let mut node = node_from_meta(name, NodeKind::Dir, &meta);
                        node.subtree = Some(self.save_vdir(sub, ptree.as_ref())?);
                        Ok(Some(node))
                    }
                }
            })
            .collect::<Result<_>>()?;
        self.save_tree(nodes.into_iter().flatten().collect())
    }

    fn parent_subtree(&self, pnode: Option<&Node>) -> Result<Option<Tree>> {
        match pnode.and_then(|n| n.subtree) {
            // A parent we cannot read only costs speed: re-read everything.
            Some(id) if !self.force => Ok(self.repo.load_tree(&id).ok()),
            _ => Ok(None),
        }
    }

    fn save_tree(&self, nodes: Vec<Node>) -> Result<BlobId> {
        self.stream
            .saver
            .save(BlobType::Tree, &Tree { nodes }.encode())
    }

    /// Saves one entry; `Ok(None)` when it could not be read (a warning is recorded).
    fn save_entry(&self, path: &Path, name: &OsStr, parent: Option<&Node>) -> Result<Option<Node>> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.warn(path, format!("cannot read: {e}"));
                return Ok(None);
            }
        };
        let ft = meta.file_type();
        if ft.is_file() {
            self.save_file(path, name, &meta, parent)
        } else if ft.is_dir() {
            self.save_dir(path, name, &meta, parent)
        } else if ft.is_symlink() {
            match std::fs::read_link(path) {
                Ok(target) => {
                    let mut node = node_from_meta(name, NodeKind::Symlink, &meta);
                    let (t, tb) = encode_os(target.as_os_str());
                    node.target = Some(t);
                    node.target_bytes = tb;
                    Ok(Some(node))
                }
                Err(e) => {
                    self.warn(path, format!("cannot read link: {e}"));
                    Ok(None)
                }
            }
        } else {
            self.warn(
                path,
                "skipped: not a regular file, directory or symbolic link".into(),
            );
            Ok(None)
        }
    }

    fn save_dir(
        &self,
        path: &Path,
        name: &OsStr,
        meta: &std::fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        let mut names: Vec<OsString> = match std::fs::read_dir(path)
            .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
        {
            Ok(n) => n,
            Err(e) => {
                self.warn(path, format!("cannot list directory: {e}"));
                return Ok(None);
            }
        };
        names.sort();
        if let Some(ex) = &self.excludes {
            names.retain(|n| !ex.is_match(path.join(n)));
        }
        let ptree = self.parent_subtree(parent)?;
        // By name, so large directories do not cost a scan per entry.
        let previous: std::collections::HashMap<OsString, &Node> = ptree
            .as_ref()
            .map(|t| t.nodes.iter().map(|n| (n.name_os(), n)).collect())
            .unwrap_or_default();
        let nodes: Vec<Option<Node>> = names
            .par_iter()
            .map(|n| self.save_entry(&path.join(n), n, previous.get(n).copied()))
            .collect::<Result<_>>()?;
        let mut node = node_from_meta(name, NodeKind::Dir, meta);
        node.subtree = Some(self.save_tree(nodes.into_iter().flatten().collect())?);
        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
        Ok(Some(node))
    }

    fn save_file(
        &self,
        path: &Path,
        name: &OsStr,
        meta: &std::fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        let mut node = node_from_meta(name, NodeKind::File, meta);
        self.progress.file(path);
        if let Some(p) = parent.filter(|p| !self.force && unchanged(p, &node, meta.len())) {
            node.size = p.size;
            node.content = p.content.clone();
            node.content_depth = p.content_depth;
            node.digest = p.digest.clone();
            self.counters.files.fetch_add(1, Ordering::Relaxed);
            self.counters.unchanged.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_total
                .fetch_add(p.size, Ordering::Relaxed);
            self.progress.bytes(p.size);
            return Ok(Some(node));
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn(path, format!("cannot open: {e}"));
                return Ok(None);
            }
        };
        let on_bytes = |n: u64| {
            self.counters.bytes_read.fetch_add(n, Ordering::Relaxed);
            self.progress.bytes(n);
        };
        let read_err = |e: std::io::Error| Error::io("reading", path, e);
        let content = if meta.len() <= BATCH_BYTES as u64 {
            self.stream
                .save_inline(file, meta.len(), &on_bytes, &read_err)
        } else {
            self.stream.save_threaded(file, &on_bytes, &read_err)
        };
        let content = match content {
            Ok(c) => c,
            Err(Error::Io { source, .. }) => {
                self.warn(path, format!("cannot read: {source}"));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        node.size = content.size;
        node.content = content.ids;
        node.content_depth = content.depth;
        node.digest = Some(content.digest);
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_total
            .fetch_add(content.size, Ordering::Relaxed);
        Ok(Some(node))
    }
}

fn unchanged(parent: &Node, now: &Node, size: u64) -> bool {
    parent.kind == NodeKind::File
        && parent.size == size
        && parent.mtime_ns == now.mtime_ns
        && parent.ctime_ns == now.ctime_ns
        && parent.inode == now.inode
        && parent.digest.is_some()
}
