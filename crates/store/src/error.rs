//! Errors: a [`StoreErrorKind`] for programs and a complete message for people.
//!
//! Every message names the operation, the object and the repository location,
//! and, where the user can do something about it (a full disk, wrong
//! permissions), says what. The underlying error, if any, is kept as the
//! [`source`](std::error::Error::source).

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong, for callers that need to react (retry, skip, report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The object (or the repository location) does not exist.
    NotFound,
    /// `create` found the object already there; it was left untouched.
    AlreadyExists,
    /// The object is shorter than the requested range.
    Truncated,
    /// An object name, kind or repository URL is not valid.
    InvalidName,
    /// Permissions (or a read-only file system) forbid the operation.
    PermissionDenied,
    /// The storage is full (or a quota is exhausted).
    NoSpace,
    /// A temporary failure: retrying the same operation may succeed.
    Transient,
    /// The operation or repository kind is not supported by this build.
    Unsupported,
    /// Anything else.
    Other,
}

/// A storage error: a kind plus a complete, human-readable message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Linux `ENOSPC`, for platforms/kinds not mapped to `StorageFull`.
const ENOSPC: i32 = 28;
/// Linux `EROFS`.
const EROFS: i32 = 30;
/// Linux `EDQUOT`.
const EDQUOT: i32 = 122;

impl StoreError {
    /// A new error; `message` must be complete (operation, object, location).
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// True for [`StoreErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }

    /// True for [`StoreErrorKind::Transient`]: retrying may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Transient
    }

    /// The object behind `handle` is shorter than the requested range.
    pub(crate) fn truncated(
        handle: &crate::Handle,
        location: &str,
        offset: u64,
        length: u64,
        size: u64,
    ) -> StoreError {
        StoreError::new(
            StoreErrorKind::Truncated,
            format!(
                "cannot read {length} bytes at offset {offset} of {handle} in {location}: \
                 the object is only {size} bytes long (truncated or damaged)"
            ),
        )
    }

    /// Map an I/O error from operation `op` ("read", "create", ...) on
    /// `object` (a handle or a description) in repository `location`; `path`
    /// is the file or directory the failing call touched.
    pub(crate) fn io(
        op: &str,
        object: &dyn fmt::Display,
        location: &str,
        path: &Path,
        err: io::Error,
    ) -> StoreError {
        let path = path.display();
        let raw = err.raw_os_error();
        let (kind, detail) = match err.kind() {
            _ if raw == Some(EROFS) || err.kind() == io::ErrorKind::ReadOnlyFilesystem => (
                StoreErrorKind::PermissionDenied,
                format!(
                    "{path} is on a read-only file system (remount it read-write \
                     or use another repository location)"
                ),
            ),
            _ if raw == Some(EDQUOT) || err.kind() == io::ErrorKind::QuotaExceeded => (
                StoreErrorKind::NoSpace,
                "disk quota exceeded (the disk is full for this user; free space or \
                 raise the quota and run the backup again)"
                    .to_owned(),
            ),
            _ if raw == Some(ENOSPC) || err.kind() == io::ErrorKind::StorageFull => (
                StoreErrorKind::NoSpace,
                "no space left on device (the disk is full; free space and run the backup again)"
                    .to_owned(),
            ),
            io::ErrorKind::NotFound => (StoreErrorKind::NotFound, format!("{path} does not exist")),
            io::ErrorKind::AlreadyExists => (
                StoreErrorKind::AlreadyExists,
                "it already exists".to_owned(),
            ),
            io::ErrorKind::PermissionDenied => (
                StoreErrorKind::PermissionDenied,
                format!(
                    "permission denied on {path} (its permissions are wrong for this \
                     operation; fix them or run as the user that owns the repository)"
                ),
            ),
            io::ErrorKind::UnexpectedEof => (
                StoreErrorKind::Truncated,
                format!("{path} is shorter than expected (the object is truncated or damaged)"),
            ),
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => (
                StoreErrorKind::Transient,
                format!("{path}: {err} (a temporary failure; retrying may succeed)"),
            ),
            _ => (StoreErrorKind::Other, format!("{path}: {err}")),
        };
        StoreError::new(
            kind,
            format!("cannot {op} {object} in {location}: {detail}"),
        )
        .with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(err: io::Error) -> StoreError {
        StoreError::io(
            "create",
            &"pack abcd",
            "/repo",
            Path::new("/repo/data/ab/abcd"),
            err,
        )
    }

    #[test]
    fn io_kinds_map() {
        let cases = [
            (io::ErrorKind::NotFound.into(), StoreErrorKind::NotFound),
            (
                io::ErrorKind::AlreadyExists.into(),
                StoreErrorKind::AlreadyExists,
            ),
            (
                io::ErrorKind::PermissionDenied.into(),
                StoreErrorKind::PermissionDenied,
            ),
            (
                io::Error::from_raw_os_error(ENOSPC),
                StoreErrorKind::NoSpace,
            ),
            (io::ErrorKind::StorageFull.into(), StoreErrorKind::NoSpace),
            (
                io::ErrorKind::UnexpectedEof.into(),
                StoreErrorKind::Truncated,
            ),
            (
                io::Error::from_raw_os_error(EROFS),
                StoreErrorKind::PermissionDenied,
            ),
            (io::ErrorKind::Interrupted.into(), StoreErrorKind::Transient),
            (io::ErrorKind::TimedOut.into(), StoreErrorKind::Transient),
            (io::Error::other("boom"), StoreErrorKind::Other),
        ];
        for (err, kind) in cases {
            let shown = format!("{err:?}");
            assert_eq!(map(err).kind(), kind, "{shown}");
        }
    }

    #[test]
    fn messages_are_complete() {
        let msg = map(io::Error::from_raw_os_error(ENOSPC)).to_string();
        assert!(
            msg.starts_with("cannot create pack abcd in /repo: "),
            "{msg}"
        );
        assert!(msg.contains("disk is full"), "{msg}");

        let msg = map(io::ErrorKind::PermissionDenied.into()).to_string();
        assert!(
            msg.contains("/repo/data/ab/abcd") && msg.contains("permissions"),
            "{msg}"
        );

        let msg = map(io::Error::from_raw_os_error(EROFS)).to_string();
        assert!(msg.contains("read-only"), "{msg}");
    }

    #[test]
    fn source_and_predicates() {
        use std::error::Error as _;
        let err = map(io::ErrorKind::TimedOut.into());
        assert!(err.is_transient() && !err.is_not_found());
        assert!(err.source().is_some());
        let err = StoreError::new(StoreErrorKind::NotFound, "gone");
        assert!(err.is_not_found() && err.source().is_none());
        assert_eq!(err.to_string(), "gone");
    }
}
