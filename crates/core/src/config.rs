//! The repository config: format version and the parameters fixed at `init`.
//!
//! Stored at `config`, sealed with associated data `"vault config v1"`. Its
//! presence is what makes a location a repository; `init` writes it last.

use serde::{Deserialize, Serialize};

use crate::blob::Compression;
use crate::chunker::ChunkerParams;

/// Repository format version written and read by this build.
pub const REPO_VERSION: u32 = 1;
/// Default target size of a pack.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

/// Repository-wide settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Format version.
    pub version: u32,
    /// Random repository id (hex); names the local cache.
    pub id: String,
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// Compression of new blobs.
    pub compression: Compression,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Store new data chunks as deltas against similar stored chunks
    /// ([`crate::delta`]). Absent in repositories made before deltas existed.
    #[serde(default)]
    pub delta: bool,
    /// When the repository was created (RFC 3339).
    pub created: String,
}
