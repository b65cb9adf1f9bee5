//! Backup: turning files, directory trees and streams into a snapshot.
//!
//! [`Repository::snapshot`] drives the pipeline
//! (source → chunker → keyed id → dedup → zstd → seal → pack → store) and
//! commits by writing the snapshot object last, after every pack and index
//! object it needs is durably stored. If anything fails before that, nothing
//! is committed: the packs already stored are unreferenced until a later
//! backup reuses them or prune removes them.

mod resume;
pub(crate) mod saver;
mod stream;
mod walk;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::blob::BlobType;
use crate::chunker::Cutter;
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::{Snapshot, SourceKind, Summary, SNAPSHOT_VERSION};
use crate::tree::{Node, NodeKind, Tree};

use saver::with_saver;
use stream::StreamSaver;
use walk::{absolute_clean, Counters, Walker};

/// What to back up.
pub enum Source<'a> {
    /// Files and directory trees, recorded under their absolute paths.
    Paths(Vec<PathBuf>),
    /// A stream (e.g. standard input) saved as one file named `name`.
    Stream {
        /// Name of the file in the snapshot.
        name: String,
        /// The data.
        reader: Box<dyn Read + Send + 'a>,
    },
    /// A command run without a shell (`argv[0]` is the program); its standard
    /// output is saved as `name`, committed only if it exits with status 0.
    Command {
        /// Name of the file in the snapshot.
        name: String,
        /// Program and arguments.
        argv: Vec<String>,
    },
}

/// Options of one backup.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host recorded in the snapshot.
    pub hostname: String,
    /// User recorded in the snapshot.
    pub username: String,
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Snapshot time, RFC 3339 with offset (the caller supplies "now").
    pub time: String,
    /// Re-read every file even when the parent snapshot says it is unchanged.
    pub force: bool,
    /// Set to true to stop the backup; it returns [`Error::Interrupted`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// Parallel uploads of finished packs.
    pub upload_threads: usize,
    /// Paths not to back up: globs matched against absolute paths; a pattern
    /// without a leading `/` matches at any depth (`*.tmp`, `cache/**`).
    pub excludes: Vec<String>,
}

/// A source entry that could not be read; the backup went on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The entry.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Outcome of a backup.
#[derive(Clone, Debug)]
pub struct BackupResult {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// The new snapshot.
    pub snapshot: Snapshot,
    /// Entries left out.
    pub warnings: Vec<Warning>,
    /// Stale leases and locks of dead or stalled processes this backup
    /// removed (described, for the caller to report).
    pub stale_removed: Vec<String>,
    /// Packs left unindexed by interrupted backups that this one indexed
    /// and reused (see `archiver::resume`).
    pub resumed_packs: u64,
}

fn validate_name(name: &str) -> Result<String> {
    let n = name.trim_start_matches('/');
    if n.is_empty() || n.contains('/') || n == "." || n == ".." {
        return Err(Error::Invalid(format!(
            "stream name `{name}` must be a plain file name such as db.sql"
        )));
    }
    Ok(n.to_owned())
}

impl Repository {
    /// Backs up `source` and commits a snapshot.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use vault_core::*;
    /// # let backend = Arc::new(vault_store::MemoryBackend::new());
    /// # let init = InitOptions { kdf: KdfParams::insecure_for_tests(), ..Default::default() };
    /// # Repository::init(backend.clone(), b"pw", &init)?;
    /// let repo = Repository::open(backend, b"pw", &OpenOptions::default())?;
    /// let opts = BackupOptions { time: "2026-11-23T10:00:00+01:00".into(), ..Default::default() };
    /// let data: &[u8] = b"hello";
    /// let src = Source::Stream { name: "hello.txt".into(), reader: Box::new(data) };
    /// let done = repo.snapshot(src, &opts, &NoProgress)?;
    /// let mut out = Vec::new();
    /// repo.dump(&done.snapshot, "hello.txt", &mut out, &NoProgress)?;
    /// assert_eq!(out, b"hello");
    /// # Ok::<(), vault_core::Error>(())
    /// ```
    pub fn snapshot(
        &self,
        source: Source<'_>,
        opts: &BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupResult> {
        let (result, stale_removed) =
            self.with_lease(|lease| self.snapshot_leased(source, opts, progress, lease))?;
        result.map(|r| BackupResult { stale_removed, ..r })
    }

    fn snapshot_leased(
        &self,
        source: Source<'_>,
        opts: &BackupOptions,
        progress: &dyn Progress,
        lease: &crate::lock::Held<'_>,
    ) -> Result<BackupResult> {
        let started = Instant::now();
        crate::snapshot::parse_time(&opts.time)?;
        let resumed_packs = self.adopt_orphans(lease)?;
        let cutter = Cutter::new(self.config().chunker, self.keys().chunker_seed);
        let counters = Counters::default();
        let ((kind, paths, command, parent, tree, warnings), added) = with_saver(
            self,
            progress,
            opts.upload_threads,
            Some(lease.key()),
            |saver| {
                let stream = StreamSaver {
                    saver,
                    cutter: &cutter,
                    cancel: opts.cancel.as_deref(),
                };
                self.save_source(source, opts, stream, &counters, progress)
            },
        )?;
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(Error::Interrupted);
        }

        let summary = Summary {
            files: counters.files.load(Ordering::Relaxed),
            dirs: counters.dirs.load(Ordering::Relaxed),
            files_unchanged: counters.unchanged.load(Ordering::Relaxed),
            bytes_total: counters.bytes_total.load(Ordering::Relaxed),
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            bytes_added: added.bytes_added,
            bytes_stored: added.bytes_stored,
            blobs_added: added.blobs_added,
            blobs_delta: added.blobs_delta,
            errors: warnings.len() as u64,
            duration_seconds: started.elapsed().as_secs_f64(),
        };
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            time: opts.time.clone(),
            hostname: opts.hostname.clone(),
            username: opts.username.clone(),
            tags: opts.tags.clone(),
            paths,
            source: kind,
            command,
            tree,
            parent,
            summary,
            program_version: env!("CARGO_PKG_VERSION").to_owned(),
            original: None,
        };
        // Everything the snapshot references was protected by the lease (a
        // concurrent prune defers deleting it); only commit while it still is.
        lease.ensure_valid()?;
        let id = self.save_snapshot(&snapshot)?;
        Ok(BackupResult {
            id,
            snapshot,
            warnings,
            stale_removed: Vec::new(),
            resumed_packs,
        })
    }

    #[allow(clippy::type_complexity)]
    fn save_source(
        &self,
        source: Source<'_>,
        opts: &BackupOptions,
        stream: StreamSaver<'_, '_>,
        counters: &Counters,
        progress: &dyn Progress,
    ) -> Result<(
        SourceKind,
        Vec<String>,
        Option<String>,
        Option<SnapshotId>,
        BlobId,
        Vec<Warning>,
    )> {
        match source {
            Source::Paths(paths) => {
                if paths.is_empty() {
                    return Err(Error::Invalid(
                        "nothing to back up: give at least one path".into(),
                    ));
                }
                let mut abs: Vec<String> = paths
                    .iter()
                    .map(|p| absolute_clean(p).map(|p| p.to_string_lossy().into_owned()))
                    .collect::<Result<_>>()?;
                abs.sort();
                abs.dedup();
                let parent = if opts.force {
                    None
                } else {
                    self.find_parent(&opts.hostname, &abs)?
                };
                let parent_tree = match &parent {
                    Some((_, s)) => self.load_tree(&s.tree).ok(),
                    None => None,
                };
                let walker = Walker {
                    repo: self,
                    stream,
                    progress,
                    excludes: crate::restore::build_globs("--exclude", &opts.excludes)?,
                    force: opts.force,
                    counters,
                    warnings: Default::default(),
                };
                let tree = walker.save_paths(&paths, parent_tree.as_ref())?;
                let warnings = walker
                    .warnings
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner());
                Ok((
                    SourceKind::Paths,
                    abs,
                    None,
                    parent.map(|p| p.0),
                    tree,
                    warnings,
                ))
            }
            Source::Stream { name, reader } => {
                let name = validate_name(&name)?;
                let tree =
                    self.save_stream_tree(&name, reader, opts, &stream, counters, progress)?;
                Ok((
                    SourceKind::Stdin,
                    vec![format!("/{name}")],
                    None,
                    None,
                    tree,
                    Vec::new(),
                ))
            }
            Source::Command { name, argv } => {
                let name = validate_name(&name)?;
                let display = argv.join(" ");
                let Some((program, args)) = argv.split_first() else {
                    return Err(Error::Invalid("empty --command".into()));
                };
                let mut child = Command::new(program)
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| Error::CommandFailed {
                        command: display.clone(),
                        status: format!("could not be started: {e}"),
                    })?;
                let stdout = child.stdout.take().expect("piped");
                let saved = self.save_stream_tree(
                    &name,
                    Box::new(stdout),
                    opts,
                    &stream,
                    counters,
                    progress,
                );
                if saved.is_err() {
                    let _ = child.kill();
                }
                let status = child
                    .wait()
                    .map_err(|e| Error::io("waiting for", program, e))?;
                let tree = saved?;
                if !status.success() {
                    use std::os::unix::process::ExitStatusExt;
                    let status = match (status.code(), status.signal()) {
                        (Some(c), _) => format!("exited with status {c}"),
                        (None, Some(s)) => format!("was killed by signal {s}"),
                        _ => status.to_string(),
                    };
                    return Err(Error::CommandFailed {
                        command: display,
                        status,
                    });
                }
                Ok((
                    SourceKind::Command,
                    vec![format!("/{name}")],
                    Some(display),
                    None,
                    tree,
                    Vec::new(),
                ))
            }
        }
    }

    fn save_stream_tree(
        &self,
        name: &str,
        reader: Box<dyn Read + Send + '_>,
        opts: &BackupOptions,
        stream: &StreamSaver<'_, '_>,
        counters: &Counters,
        progress: &dyn Progress,
    ) -> Result<BlobId> {
        progress.file(std::path::Path::new(name));
        let on_bytes = |n: u64| {
            counters.bytes_read.fetch_add(n, Ordering::Relaxed);
            progress.bytes(n);
        };
        let read_err = |e: std::io::Error| Error::io("reading", format!("stream {name}"), e);
        let content = stream.save_threaded(reader, &on_bytes, &read_err)?;
        let (ts, _) = crate::snapshot::parse_time(&opts.time)?;
        let mut node = Node::new(std::ffi::OsStr::new(name), NodeKind::File);
        node.mode = 0o600;
        node.mtime_ns = i64::try_from(ts.as_nanosecond()).map_err(|_| {
            Error::Invalid(format!(
                "snapshot time {} is out of range (years 1678..2261)",
                opts.time
            ))
        })?;
        node.size = content.size;
        node.content = content.ids;
        node.content_depth = content.depth;
        node.digest = Some(content.digest);
        counters.files.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes_total
            .fetch_add(content.size, Ordering::Relaxed);
        stream
            .saver
            .save(BlobType::Tree, &Tree { nodes: vec![node] }.encode())
    }

    /// The latest snapshot of the same host and paths: files unchanged since
    /// it are not read again.
    fn find_parent(&self, host: &str, paths: &[String]) -> Result<Option<(SnapshotId, Snapshot)>> {
        Ok(self
            .list_snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| s.source == SourceKind::Paths && s.hostname == host && s.paths == paths))
    }
}
