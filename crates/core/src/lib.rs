//! # vault-core: the engine of vault
//!
//! vault stores files, directory trees and streams (database dumps) in an
//! encrypted, deduplicated repository. This crate is the engine: it never
//! prints, never reads the environment or a terminal, never exits; progress
//! goes through [`Progress`] and failures come back as [`Error`].
//!
//! The principal type is [`Repository`]: [`Repository::init`] creates one on
//! any [`vault_store::Backend`], [`Repository::open`] unlocks it with a
//! password, [`Repository::snapshot`] backs up a [`Source`], and
//! [`Repository::restore`] / [`Repository::dump`] bring data back, verified.
//!
//! The data flow of a backup: a [`chunker`] cuts each stream with FastCDC; each
//! chunk's id is a keyed BLAKE3 ([`id::BlobId`]); chunks the [`index`] already
//! knows are skipped; new ones are compressed and sealed ([`blob`]) into packs
//! ([`pack`]); packs and index objects are stored; directory listings become
//! tree blobs ([`tree`]); the [`snapshot`] object, written last, commits it all.
//!
//! ```
//! use std::sync::Arc;
//! use vault_core::{BackupOptions, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, Source};
//!
//! let backend = Arc::new(vault_store::MemoryBackend::new());
//! let init = InitOptions { kdf: KdfParams::insecure_for_tests(), ..Default::default() };
//! Repository::init(backend.clone(), b"correct horse", &init)?;
//! let repo = Repository::open(backend, b"correct horse", &OpenOptions::default())?;
//!
//! let dump = b"COPY accounts (id, balance) FROM stdin;\n1\t100\n".repeat(1000);
//! let opts = BackupOptions { time: "2026-11-23T03:00:00Z".into(), hostname: "db1".into(), ..Default::default() };
//! let first = repo.snapshot(Source::Stream { name: "db.sql".into(), reader: Box::new(&dump[..]) }, &opts, &NoProgress)?;
//!
//! let mut restored = Vec::new();
//! repo.dump(&first.snapshot, "db.sql", &mut restored, &NoProgress)?;
//! assert_eq!(restored, dump);
//! # Ok::<(), vault_core::Error>(())
//! ```

pub mod archiver;
pub mod blob;
pub mod check;
pub mod chunker;
pub mod config;
pub mod copy;
pub mod crypto;
pub mod delta;
pub mod error;
pub mod forget;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod pack;
pub mod progress;
pub mod prune;
pub mod repair;
pub mod repository;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod stats;
pub mod tree;

pub use archiver::{BackupOptions, BackupResult, Source, Warning};
pub use blob::Compression;
pub use chunker::ChunkerParams;
pub use config::Config;
pub use copy::CopySummary;
pub use crypto::KdfParams;
pub use error::{Error, Result};
pub use id::{BlobId, IndexId, KeyId, PackId, SnapshotId};
pub use progress::{NoProgress, Progress};
pub use repository::{InitOptions, OpenOptions, Repository};
pub use restore::{RestoreError, RestoreOptions, RestoreSummary};
pub use snapshot::{Snapshot, SnapshotFilter, SourceKind, Summary};
pub use vault_store;
