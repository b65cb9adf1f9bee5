//! The index: which pack holds each blob, at which offset.
//!
//! Index objects in the repository are the truth ([`IndexFile`]); each lists
//! packs and their blobs, and may name older index objects it supersedes
//! (written by prune). The local SQLite database ([`SqliteIndex`]) is a cache
//! rebuilt from them, so memory does not grow with the repository.

mod file;
mod sqlite;

pub use file::IndexFile;
pub use sqlite::SqliteIndex;

use crate::blob::BlobType;
use crate::id::PackId;

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Blob type.
    pub kind: BlobType,
    /// Pack holding it.
    pub pack: PackId,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
    /// For a delta blob, the whole blob it is encoded against.
    pub base: Option<crate::id::BlobId>,
}
