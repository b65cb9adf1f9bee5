//! Progress reporting: the engine calls a [`Progress`] and never prints.
//!
//! Every method has a no-op default, so an implementation picks what it shows.
//! Methods are called from worker threads, often; keep them cheap.

use std::path::Path;

/// Receives progress of a backup, restore or dump.
pub trait Progress: Send + Sync {
    /// The total number of bytes expected, when known.
    fn total(&self, _bytes: u64) {}
    /// A file or stream is being processed.
    fn file(&self, _path: &Path) {}
    /// Bytes were read from the source (backup) or written to the target (restore).
    fn bytes(&self, _n: u64) {}
    /// New data was stored: plaintext and stored (compressed, sealed) bytes.
    fn added(&self, _plain: u64, _stored: u64) {}
    /// A source or target entry could not be processed; the operation goes on.
    fn warning(&self, _path: &Path, _message: &str) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
