//! `vault-store`: where a repository's bytes live.
//!
//! This crate knows nothing about content, encryption or deduplication. It
//! stores *named immutable objects* of a few kinds ([`FileType`]), addressed
//! by a validated [`Handle`], behind the [`Backend`] trait.
//!
//! # The contract every backend keeps
//!
//! * **Create-only.** [`Backend::create`] never replaces an object: if the
//!   name is taken it fails with [`StoreErrorKind::AlreadyExists`] and leaves
//!   the existing object untouched. Objects are never modified in place; they
//!   are only created whole and, later, deleted.
//! * **Atomic and durable.** A reader sees either nothing or the whole object,
//!   even after a crash, and an object is durable once `create` returns.
//! * **Ranged reads.** [`Backend::read_range`] fetches part of an object
//!   (pack files are read blob by blob); asking past the end is
//!   [`StoreErrorKind::Truncated`], never a short result.
//! * **Listing with sizes.** [`Backend::list`] returns every valid name of a
//!   kind with its size and silently skips anything else (temporary files).
//! * **Idempotent delete.** Deleting an absent object succeeds.
//! * **Thread-safe.** Every method may be called from many threads at once.
//!
//! These rules fit a local directory ([`LocalDir`]), memory
//! ([`MemoryBackend`]) and object stores such as S3 (conditional
//! "if-none-match" puts, ranged GETs, LIST with sizes). [`testing::run_suite`]
//! checks them for any backend; [`FaultyBackend`] injects failures so the
//! engine's error handling can be tested.
//!
//! Errors are [`StoreError`]s: a [`StoreErrorKind`] for programs to branch on
//! and a complete, human-readable message naming the operation, the object and
//! the repository location.

mod backend;
#[cfg(feature = "cloud")]
pub mod cloud;
pub mod error;
pub mod faulty;
mod handle;
pub mod local;
pub mod memory;
pub mod retry;
pub mod testing;
pub mod url;

pub use backend::Backend;
#[cfg(feature = "cloud")]
pub use cloud::CloudBackend;
pub use error::{Result, StoreError, StoreErrorKind};
pub use faulty::{FaultPlan, FaultyBackend};
pub use handle::{FileType, Handle};
pub use local::LocalDir;
pub use memory::MemoryBackend;
pub use retry::{CountingBackend, Requests, RetryBackend};
pub use url::open_url;
