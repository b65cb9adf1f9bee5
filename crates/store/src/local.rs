//! [`LocalDir`]: a repository in a directory of the local file system.
//!
//! Layout is the one documented on [`FileType`]. How the contract is kept:
//!
//! * **Atomic, create-only `create`.** The data goes to `.tmp-<random hex>` in
//!   the target's directory, is written and `fsync`ed, then hard-linked to the
//!   final name. `link(2)` fails if the name exists, so racing writers cannot
//!   replace each other, and a reader sees either no file or the whole file.
//!   The temporary name is removed and the directory `fsync`ed, so the new
//!   entry survives a crash. Temporary names never validate as handles, so a
//!   crash that leaves one behind does not show up in [`Backend::list`].
//! * **File systems without hard links** (FAT, exFAT, some network mounts)
//!   fall back to "rename if absent", which is still atomic for readers but
//!   only create-only in the absence of concurrent writers to the same name
//!   (the engine's locks provide that).
//! * **Lazy directories.** Missing kind directories (and `data/xx`) are created
//!   on demand, but never the repository root itself: a missing root means a
//!   wrong path or an unmounted disk, and must not be papered over.
//! * **Read-only use.** Reading and listing never write, so they work on a
//!   read-only directory or file system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::backend::Backend;
use crate::error::{Result, StoreError, StoreErrorKind};
use crate::handle::{FileType, Handle};

/// Prefix of temporary files; `.` never appears in a valid name.
const TMP_PREFIX: &str = ".tmp-";

/// A repository stored in a local directory.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// A backend rooted at `root`. Nothing is touched until it is used.
    pub fn new(root: impl Into<PathBuf>) -> LocalDir {
        LocalDir { root: root.into() }
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory holding objects of `kind` (for packs, the `data` parent).
    fn kind_dir(&self, kind: FileType) -> PathBuf {
        self.root.join(kind.dir())
    }

    /// Full path of an object.
    fn path(&self, handle: &Handle) -> PathBuf {
        let dir = self.kind_dir(handle.kind());
        match handle.kind() {
            FileType::Pack => dir.join(&handle.name()[..2]).join(handle.name()),
            _ => dir.join(handle.name()),
        }
    }

    /// Map an I/O error, naming the operation, object and this location.
    fn err(
        &self,
        op: &str,
        object: &dyn std::fmt::Display,
        path: &Path,
        e: io::Error,
    ) -> StoreError {
        StoreError::io(op, object, &self.location(), path, e)
    }

    /// Create the directories `handle` lives in (`keys`, `data/xx`, ...) if
    /// missing, but never the repository root.
    fn make_parent_dirs(&self, handle: &Handle) -> Result<()> {
        if !self.root.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!(
                    "cannot create {handle} in {}: the repository directory does not exist \
                     (check the path, mount the disk, or initialise the repository first)",
                    self.location()
                ),
            ));
        }
        let mut dir = self.root.clone();
        let mut parts = vec![handle.kind().dir()];
        if handle.kind() == FileType::Pack {
            parts.push(&handle.name()[..2]);
        }
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let parent = dir.clone();
            dir.push(part);
            let created =
                create_dir_if_missing(&dir).map_err(|e| self.err("create", handle, &dir, e))?;
            if created {
                sync_dir(&parent).map_err(|e| self.err("create", handle, &parent, e))?;
            }
        }
        Ok(())
    }

    /// Write `data` to a new temporary file in `dir` and flush it to disk.
    /// Returns the temporary path; on error nothing is left behind.
    fn write_tmp(&self, handle: &Handle, dir: &Path, data: &[u8]) -> Result<PathBuf> {
        let tmp = dir.join(format!("{TMP_PREFIX}{:032x}", rand::random::<u128>()));
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.make_parent_dirs(handle)?;
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(|e| self.err("create", handle, dir, e))?
            }
            // Report the directory: the temporary name means nothing to users.
            Err(e) => return Err(self.err("create", handle, dir, e)),
        };
        let written = file.write_all(data).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.err("create", handle, &tmp, e));
        }
        Ok(tmp)
    }

    /// Give the fully written `tmp` its final name without replacing anything.
    fn publish(&self, handle: &Handle, tmp: &Path, target: &Path) -> Result<()> {
        let linked = match fs::hard_link(tmp, target) {
            Err(e) if links_unsupported(&e) => rename_if_absent(tmp, target),
            other => other,
        };
        linked.map_err(|e| self.err("create", handle, target, e))
    }

    /// Append every valid `kind` object in `dir` to `out`. For packs, `prefix`
    /// is the `data/xx` directory name the object must start with.
    fn list_dir(
        &self,
        kind: FileType,
        dir: &Path,
        prefix: Option<&str>,
        out: &mut Vec<(String, u64)>,
    ) -> Result<()> {
        let what = format!("{kind} objects");
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("list", &what, dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.err("list", &what, dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if Handle::new(kind, name.as_str()).is_err()
                || prefix.is_some_and(|p| !name.starts_with(p))
            {
                continue;
            }
            // Follow symlinks; an entry deleted since read_dir is skipped.
            match fs::metadata(entry.path()) {
                Ok(meta) if meta.is_file() => out.push((name, meta.len())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err("list", &what, &entry.path(), e)),
            }
        }
        Ok(())
    }

    /// Names of the two-character pack directories `data/xx` (missing `data` is empty).
    fn list_dirs(&self, data: &Path, out: &mut Vec<String>) -> Result<()> {
        let what = "pack objects";
        let entries = match fs::read_dir(data) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("list", &what, data, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.err("list", &what, data, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.len() == 2 && Handle::new(FileType::Pack, name.as_str()).is_ok() {
                out.push(name);
            }
        }
        Ok(())
    }
}

impl Backend for LocalDir {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn init_layout(&self) -> Result<()> {
        let what = "the repository layout";
        let fail = |path: &Path, e| self.err("initialise", &what, path, e);
        fs::create_dir_all(&self.root).map_err(|e| fail(&self.root, e))?;
        let data = self.kind_dir(FileType::Pack);
        let subdirs = (0..=255u8).map(|i| data.join(format!("{i:02x}")));
        let dirs = FileType::ALL
            .iter()
            .filter(|kind| **kind != FileType::Config)
            .map(|kind| self.kind_dir(*kind))
            .chain(subdirs);
        for dir in dirs {
            create_dir_if_missing(&dir).map_err(|e| fail(&dir, e))?;
        }
        sync_dir(&data).map_err(|e| fail(&data, e))?;
        sync_dir(&self.root).map_err(|e| fail(&self.root, e))
    }

    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        let target = self.path(handle);
        let dir = target.parent().unwrap_or(&self.root);
        let tmp = self.write_tmp(handle, dir, &data)?;
        let published = self.publish(handle, &tmp, &target);
        // After a successful link the temporary name is just a second link;
        // if removing it fails, the leftover is invisible to list().
        let _ = fs::remove_file(&tmp);
        published?;
        sync_dir(dir).map_err(|e| self.err("create", handle, dir, e))
    }

    fn read(&self, handle: &Handle) -> Result<Bytes> {
        let path = self.path(handle);
        fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| self.err("read", handle, &path, e))
    }

    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        let path = self.path(handle);
        let fail = |e| self.err("read", handle, &path, e);
        let mut file = File::open(&path).map_err(fail)?;
        let size = file.metadata().map_err(fail)?.len();
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(StoreError::truncated(
                handle,
                &self.location(),
                offset,
                length,
                size,
            ));
        }
        // length <= size, and a file this large cannot be read into memory
        // on a 32-bit target anyway.
        let length =
            usize::try_from(length).map_err(|_| fail(io::ErrorKind::OutOfMemory.into()))?;
        let mut buf = vec![0; length];
        file.seek(SeekFrom::Start(offset)).map_err(fail)?;
        // A concurrent truncation shows up as UnexpectedEof -> Truncated.
        file.read_exact(&mut buf).map_err(fail)?;
        Ok(Bytes::from(buf))
    }

    fn size(&self, handle: &Handle) -> Result<u64> {
        let path = self.path(handle);
        fs::metadata(&path)
            .map(|meta| meta.len())
            .map_err(|e| self.err("get the size of", handle, &path, e))
    }

    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        match kind {
            FileType::Config => {
                let path = self.path(&Handle::config());
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => out.push(("config".to_owned(), meta.len())),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.err("list", &"the config", &path, e)),
                }
            }
            FileType::Pack => {
                let data = self.kind_dir(kind);
                let mut prefixes = Vec::new();
                self.list_dirs(&data, &mut prefixes)?;
                for prefix in prefixes {
                    self.list_dir(kind, &data.join(&prefix), Some(&prefix), &mut out)?;
                }
            }
            _ => self.list_dir(kind, &self.kind_dir(kind), None, &mut out)?,
        }
        Ok(out)
    }

    fn delete(&self, handle: &Handle) -> Result<()> {
        let path = self.path(handle);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("delete", handle, &path, e)),
        }
        // Make the removal durable: a deleted index must not come back after a crash.
        let dir = path.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| self.err("delete", handle, dir, e))
    }
}

/// `mkdir`, treating an existing directory as success. Returns whether it
/// was created (so the caller can make the new entry durable).
fn create_dir_if_missing(dir: &Path) -> io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(e),
    }
}

/// `fsync` a directory so that entries created or removed in it are durable.
///
/// File systems that cannot sync directories report `EINVAL`; that is not an
/// error worth failing a backup over.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if !cfg!(unix) {
        // Directories cannot be opened as files elsewhere (e.g. Windows),
        // where metadata updates are journaled by the file system.
        return Ok(());
    }
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Whether a `hard_link` error means the file system has no hard links.
fn links_unsupported(e: &io::Error) -> bool {
    /// `EPERM`: what FAT/exFAT (and some FUSE mounts) return for `link(2)`.
    const EPERM: i32 = 1;
    /// Linux `EOPNOTSUPP`.
    const EOPNOTSUPP: i32 = 95;
    e.kind() == io::ErrorKind::Unsupported
        || e.raw_os_error() == Some(EPERM)
        || (cfg!(target_os = "linux") && e.raw_os_error() == Some(EOPNOTSUPP))
}

/// Fallback publish without hard links: atomic for readers, but create-only
/// only when no other writer races for the same name.
fn rename_if_absent(tmp: &Path, target: &Path) -> io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(tmp, target),
        Err(e) => Err(e),
    }
}
