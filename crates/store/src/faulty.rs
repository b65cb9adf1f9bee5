//! [`FaultyBackend`]: a wrapper that injects failures, for testing how the
//! engine copes with a storage that breaks half-way (interrupted backups,
//! flaky networks, slow disks).
//!
//! Every call except [`Backend::location`] is an *operation* and is numbered
//! from 1. [`Backend::create`] and [`Backend::delete`] are also *writes*. A
//! [`FaultPlan`] decides which operations fail. An injected failure happens
//! before the inner backend is called, so a failed `create` stores nothing and
//! a failed `delete` removes nothing, except for a *lost acknowledgement*
//! ([`FaultPlan::lose_write_ack`]): the write lands, and the caller hears a
//! failure (a network timeout after the server stored the object). Objects
//! are never torn: every backend's `create` is atomic (the conformance suite
//! checks it), so "torn" writes are these two cases, not partial objects.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::backend::Backend;
use crate::error::{Result, StoreError, StoreErrorKind};
use crate::handle::{FileType, Handle};

/// Which operations of a [`FaultyBackend`] fail. The default injects nothing.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Every operation after the first `n` fails permanently (kind
    /// [`StoreErrorKind::Other`], "injected failure"): a storage that dies.
    pub fail_after_ops: Option<u64>,
    /// Only writes count: the first `n` creates/deletes reach the inner
    /// backend, the `n+1`-th and later ones fail permanently (a full disk or a
    /// crash mid-backup). Operations that already failed for another reason
    /// are not counted.
    pub fail_writes_after: Option<u64>,
    /// Every `k`-th operation (by number: `k`, `2k`, ...) fails with
    /// [`StoreErrorKind::Transient`]; retrying it is a new operation and
    /// succeeds (unless `k` is 1). `Some(0)` injects nothing.
    pub transient_every: Option<u64>,
    /// Sleep this long at the start of every operation.
    pub latency: Option<std::time::Duration>,
    /// Only the `n`-th write (1-based) fails, stores nothing, and later ones
    /// succeed (a one-off rejection).
    pub fail_write: Option<u64>,
    /// The `n`-th write (1-based) reaches the inner backend, but the caller
    /// gets a [`StoreErrorKind::Transient`] error, as when the answer to a
    /// request that succeeded is lost; a retry then finds the object present.
    pub lose_write_ack: Option<u64>,
    /// Every create of this object type fails and stores nothing (e.g.
    /// packs are stored but their index objects never are).
    pub fail_creates_of: Option<FileType>,
    /// A disk of this many bytes (counting what was created through this
    /// wrapper): a create that would store more in total fails with [`StoreErrorKind::NoSpace`] and stores nothing, as `ENOSPC`
    /// does on a local disk; deletes give the space back.
    pub disk_bytes: Option<u64>,
}

/// Wraps a backend and injects the failures described by a [`FaultPlan`].
pub struct FaultyBackend<B> {
    inner: B,
    plan: FaultPlan,
    ops: AtomicU64,
    writes: AtomicU64,
    used: AtomicU64,
}

impl<B: fmt::Debug> fmt::Debug for FaultyBackend<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .field("ops", &self.ops.load(Ordering::SeqCst))
            .field("writes", &self.writes.load(Ordering::SeqCst))
            .finish()
    }
}

impl<B: Backend> FaultyBackend<B> {
    /// Wrap `inner`; counters start at zero.
    pub fn new(inner: B, plan: FaultPlan) -> Self {
        FaultyBackend {
            inner,
            plan,
            ops: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            used: AtomicU64::new(0),
        }
    }

    /// Operations started so far (every call except `location`).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Writes (creates and deletes) counted against `fail_writes_after` so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The wrapped backend, e.g. to check what really got stored.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Start an operation: sleep, count it and decide whether it fails.
    /// `op` and `object` only shape the error message. `Ok(Some(e))` means:
    /// carry the write out, then report `e` (a lost acknowledgement).
    fn begin(
        &self,
        op: &str,
        object: &dyn fmt::Display,
        is_write: bool,
    ) -> Result<Option<StoreError>> {
        if let Some(latency) = self.plan.latency {
            std::thread::sleep(latency);
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        let error = |kind, what: String| {
            let location = self.inner.location();
            StoreError::new(kind, format!("cannot {op} {object} in {location}: {what}"))
        };
        if self.plan.fail_after_ops.is_some_and(|limit| n > limit) {
            return Err(error(
                StoreErrorKind::Other,
                format!("injected failure (operation {n})"),
            ));
        }
        if self
            .plan
            .transient_every
            .is_some_and(|k| k != 0 && n.is_multiple_of(k))
        {
            return Err(error(
                StoreErrorKind::Transient,
                format!("injected transient failure (operation {n}; retrying may succeed)"),
            ));
        }
        if is_write {
            let w = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if self.plan.fail_writes_after.is_some_and(|limit| w > limit)
                || self.plan.fail_write == Some(w)
            {
                return Err(error(
                    StoreErrorKind::Other,
                    format!("injected failure (write {w})"),
                ));
            }
            if self.plan.lose_write_ack == Some(w) {
                return Ok(Some(error(
                    StoreErrorKind::Transient,
                    format!("injected lost acknowledgement (write {w} was carried out)"),
                )));
            }
        }
        Ok(None)
    }
}

/// The outcome of a write whose acknowledgement may be lost.
fn answer(done: Result<()>, lost: Option<StoreError>) -> Result<()> {
    done?;
    lost.map_or(Ok(()), Err)
}

#[deny(clippy::missing_trait_methods)]
impl<B: Backend> Backend for FaultyBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn init_layout(&self) -> Result<()> {
        self.begin("initialise", &"the repository layout", false)?;
        self.inner.init_layout()
    }

    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        let lost = self.begin("create", handle, true)?;
        if self.plan.fail_creates_of == Some(handle.kind()) {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "cannot create {handle} in {}: injected failure ({} objects)",
                    self.inner.location(),
                    handle.kind()
                ),
            ));
        }
        if let Some(disk) = self.plan.disk_bytes {
            let len = data.len() as u64;
            let used = self.used.fetch_add(len, Ordering::SeqCst) + len;
            if used > disk {
                self.used.fetch_sub(len, Ordering::SeqCst);
                return Err(StoreError::new(
                    StoreErrorKind::NoSpace,
                    format!(
                        "cannot create {handle} in {}: no space left on device (the disk is full; free space and run the backup again)",
                        self.inner.location()
                    ),
                ));
            }
        }
        answer(self.inner.create(handle, data), lost)
    }

    fn read(&self, handle: &Handle) -> Result<Bytes> {
        self.begin("read", handle, false)?;
        self.inner.read(handle)
    }

    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        self.begin("read", handle, false)?;
        self.inner.read_range(handle, offset, length)
    }

    fn size(&self, handle: &Handle) -> Result<u64> {
        self.begin("get the size of", handle, false)?;
        self.inner.size(handle)
    }

    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        self.begin("list", &format_args!("{kind} objects"), false)?;
        self.inner.list(kind)
    }

    fn delete(&self, handle: &Handle) -> Result<()> {
        let lost = self.begin("delete", handle, true)?;
        let freed = match self.plan.disk_bytes {
            Some(_) => self.inner.size(handle).unwrap_or(0),
            None => 0,
        };
        self.inner.delete(handle)?;
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(freed))
            });
        answer(Ok(()), lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    fn handle(name: &str) -> Handle {
        Handle::new(FileType::Pack, name).unwrap()
    }

    fn faulty(plan: FaultPlan) -> FaultyBackend<MemoryBackend> {
        FaultyBackend::new(MemoryBackend::new(), plan)
    }

    #[test]
    fn fail_writes_after_stores_nothing() {
        let b = faulty(FaultPlan {
            fail_writes_after: Some(2),
            ..FaultPlan::default()
        });
        b.create(&handle("aa"), Bytes::from_static(b"1")).unwrap();
        b.create(&handle("bb"), Bytes::from_static(b"2")).unwrap();
        let err = b
            .create(&handle("cc"), Bytes::from_static(b"3"))
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Other);
        assert!(!err.is_transient());
        assert!(err.to_string().contains("pack cc in memory"), "{err}");
        assert!(b.inner().read(&handle("cc")).unwrap_err().is_not_found());
        assert!(b.delete(&handle("aa")).is_err());
        assert_eq!(b.inner().list(FileType::Pack).unwrap().len(), 2);
        // Reads are not writes.
        assert_eq!(b.read(&handle("aa")).unwrap(), Bytes::from_static(b"1"));
        assert_eq!((b.writes(), b.ops()), (4, 5));
    }

    #[test]
    fn one_write_fails_or_loses_its_acknowledgement() {
        let b = faulty(FaultPlan {
            fail_write: Some(2),
            lose_write_ack: Some(3),
            ..FaultPlan::default()
        });
        b.create(&handle("aa"), Bytes::from_static(b"1")).unwrap();
        let err = b
            .create(&handle("bb"), Bytes::from_static(b"2"))
            .unwrap_err();
        assert!(!err.is_transient());
        assert!(b.inner().read(&handle("bb")).unwrap_err().is_not_found());
        let err = b
            .create(&handle("cc"), Bytes::from_static(b"3"))
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("lost acknowledgement"), "{err}");
        assert_eq!(
            b.inner().read(&handle("cc")).unwrap(),
            Bytes::from_static(b"3")
        );
        // Write 4 and later succeed.
        b.create(&handle("bb"), Bytes::from_static(b"2")).unwrap();
        b.delete(&handle("aa")).unwrap();
        assert_eq!(b.inner().list(FileType::Pack).unwrap().len(), 2);
    }

    #[test]
    fn transient_every_fails_once_per_k() {
        let b = faulty(FaultPlan {
            transient_every: Some(3),
            ..FaultPlan::default()
        });
        let h = handle("ab");
        b.create(&h, Bytes::from_static(b"x")).unwrap(); // op 1
        b.read(&h).unwrap(); // op 2
        let err = b.read(&h).unwrap_err(); // op 3
        assert!(err.is_transient(), "{err}");
        assert_eq!(b.read(&h).unwrap(), Bytes::from_static(b"x")); // op 4: the retry
        b.size(&h).unwrap(); // op 5
        let err = b
            .create(&handle("cd"), Bytes::from_static(b"y"))
            .unwrap_err(); // op 6
        assert!(err.is_transient());
        assert!(b.inner().read(&handle("cd")).unwrap_err().is_not_found());
        b.create(&handle("cd"), Bytes::from_static(b"y")).unwrap(); // op 7
    }

    #[test]
    fn fail_after_ops_is_permanent() {
        let b = faulty(FaultPlan {
            fail_after_ops: Some(1),
            ..FaultPlan::default()
        });
        b.list(FileType::Lock).unwrap();
        for _ in 0..3 {
            let err = b.list(FileType::Lock).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Other);
            assert!(err.to_string().contains("injected failure"), "{err}");
        }
        assert_eq!(b.location(), "memory");
        assert_eq!(b.ops(), 4);
    }

    #[test]
    fn latency_delays_operations() {
        let latency = std::time::Duration::from_millis(20);
        let b = faulty(FaultPlan {
            latency: Some(latency),
            ..FaultPlan::default()
        });
        let start = std::time::Instant::now();
        b.list(FileType::Key).unwrap();
        assert!(start.elapsed() >= latency);
    }
}
