//! The [`Backend`] trait: the whole storage contract.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::handle::{FileType, Handle};

/// The storage contract. Every method is safe to call from many threads at once.
///
/// The trait is synchronous: the engine is CPU-bound and calls it from worker
/// threads. A network backend hides its own runtime behind these methods.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Human-readable location (a path or URL) for messages.
    fn location(&self) -> String;

    /// Prepare an empty repository location.
    ///
    /// A local directory gets its whole tree (`keys`, `index`, `snapshots`,
    /// `locks`, `data` and `data/00`..`data/ff`); backends without directories
    /// do nothing. Succeeds when the location is missing, empty or already
    /// laid out. It never deletes anything and does not check for an existing
    /// repository: callers look for the config object first.
    fn init_layout(&self) -> Result<()>;

    /// Store a new object.
    ///
    /// Atomic (readers never see a partial object, even after a crash) and
    /// create-only: if the object exists this fails with
    /// [`AlreadyExists`](crate::StoreErrorKind::AlreadyExists) and leaves it
    /// untouched. The object is durable when this returns `Ok`.
    fn create(&self, handle: &Handle, data: Bytes) -> Result<()>;

    /// The whole object; [`NotFound`](crate::StoreErrorKind::NotFound) if absent.
    fn read(&self, handle: &Handle) -> Result<Bytes>;

    /// Exactly `length` bytes at `offset`.
    ///
    /// [`NotFound`](crate::StoreErrorKind::NotFound) if absent,
    /// [`Truncated`](crate::StoreErrorKind::Truncated) if the object is shorter
    /// than `offset + length` (a short result is never returned).
    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes>;

    /// Size in bytes; [`NotFound`](crate::StoreErrorKind::NotFound) if absent.
    fn size(&self, handle: &Handle) -> Result<u64>;

    /// Every object of a kind as `(name, size)`, in any order.
    ///
    /// Names that are not valid handles (temporary files, strays) are skipped,
    /// and a missing directory lists as empty.
    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>>;

    /// Remove an object. Removing an absent object is `Ok` (idempotent).
    fn delete(&self, handle: &Handle) -> Result<()>;
}

/// Forwards every method to the inner backend, so wrappers compose.
macro_rules! delegate_backend {
    ($($wrapper:ident),*) => {$(
        impl<B: Backend + ?Sized> Backend for $wrapper<B> {
            fn location(&self) -> String {
                (**self).location()
            }
            fn init_layout(&self) -> Result<()> {
                (**self).init_layout()
            }
            fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
                (**self).create(handle, data)
            }
            fn read(&self, handle: &Handle) -> Result<Bytes> {
                (**self).read(handle)
            }
            fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
                (**self).read_range(handle, offset, length)
            }
            fn size(&self, handle: &Handle) -> Result<u64> {
                (**self).size(handle)
            }
            fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
                (**self).list(kind)
            }
            fn delete(&self, handle: &Handle) -> Result<()> {
                (**self).delete(handle)
            }
        }
    )*};
}

delegate_backend!(Arc, Box);
