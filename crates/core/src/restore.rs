//! Restore, dump and listing: reading snapshots back.
//!
//! Chunks are fetched and opened in parallel, a window at a time, while the
//! previous window is written in order, so a single large stream restores at
//! full speed. Every chunk is verified against its id when opened, and every
//! file against its recorded length and whole-content digest at the end: a
//! file that fails is removed and named in the result, never left behind as
//! if it were good. Metadata (mode, owner, times) is applied after content,
//! and to directories after their children.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};

/// Chunks fetched in parallel per window (about 16 MiB at the default chunk size).
const WINDOW: usize = 32;

/// Options of a restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore only entries matching one of these globs (and everything under
    /// a matching directory). A pattern not starting with `/` matches at any depth.
    pub include: Vec<String>,
}

/// An entry that could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError {
    /// Path inside the snapshot.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Outcome of a restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreSummary {
    /// Files restored and verified.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Entries that failed (their files are not left in the target).
    pub errors: Vec<RestoreError>,
}

struct Job<'a> {
    include: Option<GlobSet>,
    progress: &'a dyn Progress,
}

fn join_snap(parent: &str, name: &OsStr) -> String {
    let n = String::from_utf8_lossy(name.as_bytes());
    if parent == "/" {
        format!("/{n}")
    } else {
        format!("{parent}/{n}")
    }
}

/// Compiles path globs; a pattern without a leading `/` matches at any depth.
/// `option` names the option in errors (`--include`, `--exclude`).
pub(crate) fn build_globs(option: &str, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let full = if p.starts_with('/') {
            p.clone()
        } else {
            format!("**/{p}")
        };
        b.add(
            Glob::new(&full)
                .map_err(|e| Error::Invalid(format!("bad {option} pattern `{p}`: {e}")))?,
        );
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::Invalid(e.to_string()))
}

impl Repository {
    /// Restores a snapshot under `target`.
    ///
    /// Entries that fail are listed in the summary's `errors`; the caller
    /// decides how to report them. Errors of the repository as a whole (store
    /// unreachable, root tree unreadable) are returned as `Err`.
    pub fn restore(
        &self,
        snapshot: &Snapshot,
        target: &Path,
        opts: &RestoreOptions,
        progress: &dyn Progress,
    ) -> Result<RestoreSummary> {
        let job = Job {
            include: build_globs("--include", &opts.include)?,
            progress,
        };
        std::fs::create_dir_all(target).map_err(|e| Error::io("creating", target, e))?;
        let root = self.load_tree(&snapshot.tree)?;
        progress.total(snapshot.summary.bytes_total);
        let mut summary = RestoreSummary::default();
        let mut dirs = Vec::new();
        self.restore_nodes(
            &job,
            "/",
            target,
            &root.nodes,
            false,
            &mut summary,
            &mut dirs,
        );
        // Directory metadata last, deepest first, so children could be written.
        for (path, node) in dirs.iter().rev() {
            apply_metadata(path, node);
        }
        Ok(summary)
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_nodes(
        &self,
        job: &Job<'_>,
        parent: &str,
        dest_dir: &Path,
        nodes: &[Node],
        selected: bool,
        summary: &mut RestoreSummary,
        dirs: &mut Vec<(PathBuf, Node)>,
    ) {
        let is_selected = |p: &str| selected || job.include.as_ref().is_none_or(|g| g.is_match(p));
        let mut entries = Vec::with_capacity(nodes.len());
        for n in nodes {
            let name = n.name_os();
            let path = join_snap(parent, &name);
            match safe_name(&name) {
                Ok(()) => entries.push((path, dest_dir.join(&name), n)),
                Err(message) => summary.errors.push(RestoreError { path, message }),
            }
        }
        // Files and links of this directory in parallel.
        let results: Vec<(String, NodeKind, Result<u64>)> = entries
            .par_iter()
            .filter(|(p, _, n)| n.kind != NodeKind::Dir && is_selected(p))
            .map(|(p, dest, n)| (p.clone(), n.kind, self.restore_leaf(job, p, dest, n)))
            .collect();
        for (path, kind, r) in results {
            match r {
                Ok(bytes) => {
                    summary.bytes += bytes;
                    match kind {
                        NodeKind::Symlink => summary.symlinks += 1,
                        _ => summary.files += 1,
                    }
                }
                Err(e) => summary.errors.push(RestoreError {
                    path,
                    message: e.to_string(),
                }),
            }
        }
        for (path, dest, n) in entries
            .into_iter()
            .filter(|(_, _, n)| n.kind == NodeKind::Dir)
        {
            let sel = is_selected(&path);
            let tree = match n.subtree.map(|id| self.load_tree(&id)) {
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    summary.errors.push(RestoreError {
                        path,
                        message: e.to_string(),
                    });
                    continue;
                }
                None => Default::default(),
            };
            if sel {
                if let Err(e) = std::fs::create_dir_all(&dest) {
                    summary.errors.push(RestoreError {
                        path,
                        message: format!("cannot create directory: {e}"),
                    });
                    continue;
                }
                summary.dirs += 1;
            }
            self.restore_nodes(job, &path, &dest, &tree.nodes, sel, summary, dirs);
            if dest.is_dir() {
                dirs.push((dest, n.clone()));
            }
        }
    }

    fn restore_leaf(
        &self,
        job: &Job<'_>,
        snap_path: &str,
        dest: &Path,
        node: &Node,
    ) -> Result<u64> {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        match std::fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Invalid(format!(
                    "{} exists and is a directory",
                    dest.display()
                )))
            }
            Ok(_) => std::fs::remove_file(dest).map_err(|e| Error::io("replacing", dest, e))?,
            Err(_) => {}
        }
        match node.kind {
            NodeKind::Symlink => {
                let target = node.target_os().unwrap_or_default();
                std::os::unix::fs::symlink(&target, dest)
                    .map_err(|e| Error::io("creating symlink", dest, e))?;
                apply_metadata(dest, node);
                Ok(0)
            }
            _ => {
                job.progress.file(Path::new(snap_path));
                let result = (|| {
                    let mut f =
                        std::fs::File::create(dest).map_err(|e| Error::io("creating", dest, e))?;
                    // No fsync per file: it would make restoring many small
                    // files many times slower, and a crashed restore is rerun.
                    self.write_content(node, snap_path, &mut f, job.progress)
                })();
                match result {
                    Ok(n) => {
                        apply_metadata(dest, node);
                        Ok(n)
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(dest);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Writes a file node's content to `out`, verifying every chunk and, at
    /// the end, the length and digest. Returns the bytes written.
    pub fn write_content(
        &self,
        node: &Node,
        path: &str,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<u64> {
        let mut hasher = self.keys().content_hasher();
        let mut size = 0u64;
        let mut pending: Option<Vec<Vec<u8>>> = None;
        let mut write = |blobs: Vec<Vec<u8>>| -> Result<()> {
            for b in blobs {
                hasher.update(&b);
                out.write_all(&b)
                    .map_err(|e| Error::io("writing", path, e))?;
                size += b.len() as u64;
                progress.bytes(b.len() as u64);
            }
            Ok(())
        };
        let fetch =
            |ids: &[BlobId]| -> Result<Vec<Vec<u8>>> { self.read_blobs(BlobType::Data, ids) };
        self.for_each_chunk_list(&node.content, node.content_depth, &mut |ids| {
            for window in ids.chunks(WINDOW) {
                let prev = pending.take();
                let (written, fetched) =
                    rayon::join(|| prev.map(&mut write).transpose(), || fetch(window));
                written?;
                pending = Some(fetched?);
            }
            Ok(())
        })?;
        if let Some(p) = pending.take() {
            write(p)?;
        }
        out.flush().map_err(|e| Error::io("writing", path, e))?;
        let digest = hasher.finalize().to_hex().to_string();
        if size != node.size {
            return Err(Error::corrupt(
                path,
                format!("restored {size} bytes, the snapshot recorded {}", node.size),
            ));
        }
        if node.digest.as_deref().is_some_and(|d| d != digest) {
            return Err(Error::corrupt(
                path,
                "content digest does not match the snapshot",
            ));
        }
        Ok(size)
    }

    /// The node at `path` in a snapshot (`/` or empty is the root directory).
    pub fn find_node(&self, snapshot: &Snapshot, path: &str) -> Result<Node> {
        let mut node = Node::new(OsStr::new("/"), NodeKind::Dir);
        node.subtree = Some(snapshot.tree);
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let tree = match (node.kind, node.subtree) {
                (NodeKind::Dir, Some(t)) => self.load_tree(&t)?,
                _ => {
                    return Err(Error::Invalid(format!(
                        "{path}: `{}` is not a directory",
                        node.name
                    )))
                }
            };
            node = tree.find(OsStr::new(part)).cloned().ok_or_else(|| {
                Error::Invalid(format!("{path}: no such file or directory in the snapshot"))
            })?;
        }
        Ok(node)
    }

    /// Writes one file (or stream) of a snapshot to `out`.
    ///
    /// For a stdin or command snapshot, `path` is the stream's name.
    pub fn dump(
        &self,
        snapshot: &Snapshot,
        path: &str,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<u64> {
        let node = self.find_node(snapshot, path)?;
        if node.kind != NodeKind::File {
            return Err(Error::Invalid(format!(
                "{path} is not a file: use `vault restore` for directories"
            )));
        }
        progress.total(node.size);
        self.write_content(&node, path, out, progress)
    }

    /// Every entry under `path` (recursively), with its snapshot path, in tree order.
    pub fn walk(
        &self,
        snapshot: &Snapshot,
        path: &str,
        f: &mut dyn FnMut(&str, &Node) -> Result<()>,
    ) -> Result<()> {
        let start = self.find_node(snapshot, path)?;
        let base = format!("/{}", path.trim_matches('/'));
        if base != "/" {
            f(&base, &start)?;
        }
        if let (NodeKind::Dir, Some(t)) = (start.kind, start.subtree) {
            self.walk_tree(&t, &base, f)?;
        }
        Ok(())
    }

    fn walk_tree(
        &self,
        id: &BlobId,
        parent: &str,
        f: &mut dyn FnMut(&str, &Node) -> Result<()>,
    ) -> Result<()> {
        for n in self.load_tree(id)?.nodes {
            let p = join_snap(parent, &n.name_os());
            f(&p, &n)?;
            if let (NodeKind::Dir, Some(t)) = (n.kind, n.subtree) {
                self.walk_tree(&t, &p, f)?;
            }
        }
        Ok(())
    }
}

/// A name from a tree must stay inside its directory.
fn safe_name(name: &OsStr) -> std::result::Result<(), String> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(format!(
            "refusing to restore an entry with the unsafe name {name:?}"
        ));
    }
    Ok(())
}

/// Mode, owner and times. Failures are ignored: an unprivileged restore cannot
/// give files away, and that is not an error.
fn apply_metadata(path: &Path, node: &Node) {
    let _ = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid));
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    if node.kind == NodeKind::Symlink {
        let _ = filetime::set_symlink_file_times(path, mtime, mtime);
    } else {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode));
        let _ = filetime::set_file_times(path, mtime, mtime);
    }
}
