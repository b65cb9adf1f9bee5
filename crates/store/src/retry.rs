//! Decorators: [`RetryBackend`] retries transient failures with exponential
//! backoff and jitter; [`CountingBackend`] counts requests by kind (for the
//! requests-per-GB report and tests).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::backend::Backend;
use crate::error::Result;
use crate::handle::{FileType, Handle};

/// Retries operations that fail with a transient error.
#[derive(Debug)]
pub struct RetryBackend<B> {
    inner: B,
    attempts: u32,
    base: Duration,
    cap: Duration,
}

impl<B: Backend> RetryBackend<B> {
    /// Up to 6 attempts, backoff from 50 ms doubling to at most 5 s, with jitter.
    pub fn new(inner: B) -> Self {
        Self::with_policy(inner, 6, Duration::from_millis(50), Duration::from_secs(5))
    }

    /// A custom policy (`attempts` ≥ 1).
    pub fn with_policy(inner: B, attempts: u32, base: Duration, cap: Duration) -> Self {
        RetryBackend {
            inner,
            attempts: attempts.max(1),
            base,
            cap,
        }
    }

    fn run<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match op() {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    let exp = self
                        .base
                        .saturating_mul(1 << (attempt - 1).min(20))
                        .min(self.cap);
                    // Full jitter: spread retries of many clients apart.
                    let sleep = rand::thread_rng().gen_range(exp / 2..=exp);
                    std::thread::sleep(sleep);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[deny(clippy::missing_trait_methods)]
impl<B: Backend> Backend for RetryBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn init_layout(&self) -> Result<()> {
        self.run(|| self.inner.init_layout())
    }
    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        self.run(|| self.inner.create(handle, data.clone()))
    }
    fn read(&self, handle: &Handle) -> Result<Bytes> {
        self.run(|| self.inner.read(handle))
    }
    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        self.run(|| self.inner.read_range(handle, offset, length))
    }
    fn size(&self, handle: &Handle) -> Result<u64> {
        self.run(|| self.inner.size(handle))
    }
    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        self.run(|| self.inner.list(kind))
    }
    fn delete(&self, handle: &Handle) -> Result<()> {
        self.run(|| self.inner.delete(handle))
    }
}

/// Request counts of a [`CountingBackend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// Objects created (PUT).
    pub puts: u64,
    /// Whole or ranged reads and size queries (GET/HEAD).
    pub gets: u64,
    /// Listings (LIST).
    pub lists: u64,
    /// Deletions (DELETE).
    pub deletes: u64,
    /// Bytes written by creates.
    pub bytes_put: u64,
    /// Bytes returned by reads.
    pub bytes_got: u64,
}

/// Counts requests by kind.
#[derive(Debug, Default)]
pub struct CountingBackend<B> {
    inner: B,
    c: [AtomicU64; 6],
}

impl<B: Backend> CountingBackend<B> {
    /// Wraps `inner` with zeroed counters.
    pub fn new(inner: B) -> Self {
        CountingBackend {
            inner,
            c: Default::default(),
        }
    }

    /// The counts so far.
    pub fn requests(&self) -> Requests {
        let g = |i: usize| self.c[i].load(Ordering::Relaxed);
        Requests {
            puts: g(0),
            gets: g(1),
            lists: g(2),
            deletes: g(3),
            bytes_put: g(4),
            bytes_got: g(5),
        }
    }

    fn add(&self, i: usize, n: u64) {
        self.c[i].fetch_add(n, Ordering::Relaxed);
    }
}

impl<B: fmt::Display> fmt::Display for CountingBackend<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[deny(clippy::missing_trait_methods)]
impl<B: Backend> Backend for CountingBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn init_layout(&self) -> Result<()> {
        self.inner.init_layout()
    }
    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        self.add(0, 1);
        self.add(4, data.len() as u64);
        self.inner.create(handle, data)
    }
    fn read(&self, handle: &Handle) -> Result<Bytes> {
        self.add(1, 1);
        let b = self.inner.read(handle)?;
        self.add(5, b.len() as u64);
        Ok(b)
    }
    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        self.add(1, 1);
        let b = self.inner.read_range(handle, offset, length)?;
        self.add(5, b.len() as u64);
        Ok(b)
    }
    fn size(&self, handle: &Handle) -> Result<u64> {
        self.add(1, 1);
        self.inner.size(handle)
    }
    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        self.add(2, 1);
        self.inner.list(kind)
    }
    fn delete(&self, handle: &Handle) -> Result<()> {
        self.add(3, 1);
        self.inner.delete(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faulty::{FaultPlan, FaultyBackend};
    use crate::memory::MemoryBackend;

    #[test]
    fn transient_failures_are_retried_and_permanent_ones_are_not() {
        let flaky = FaultyBackend::new(
            MemoryBackend::new(),
            FaultPlan {
                transient_every: Some(2),
                ..Default::default()
            },
        );
        let b =
            RetryBackend::with_policy(flaky, 4, Duration::from_millis(1), Duration::from_millis(2));
        for i in 0..20 {
            let h = Handle::new(FileType::Snapshot, format!("s{i}")).unwrap();
            b.create(&h, Bytes::from_static(b"x")).unwrap();
            assert_eq!(b.read(&h).unwrap(), "x");
        }
        assert_eq!(b.list(FileType::Snapshot).unwrap().len(), 20);
        let dead = RetryBackend::with_policy(
            FaultyBackend::new(
                MemoryBackend::new(),
                FaultPlan {
                    fail_after_ops: Some(0),
                    ..Default::default()
                },
            ),
            4,
            Duration::from_millis(1),
            Duration::from_millis(2),
        );
        assert!(dead.list(FileType::Pack).is_err());
        assert_eq!(dead.inner.ops(), 1, "permanent errors are not retried");
    }

    #[test]
    fn counts_requests() {
        let b = CountingBackend::new(MemoryBackend::new());
        let h = Handle::new(FileType::Pack, "aa11").unwrap();
        b.create(&h, Bytes::from_static(b"hello")).unwrap();
        b.read_range(&h, 1, 2).unwrap();
        b.list(FileType::Pack).unwrap();
        b.delete(&h).unwrap();
        let r = b.requests();
        assert_eq!(
            (r.puts, r.gets, r.lists, r.deletes, r.bytes_put, r.bytes_got),
            (1, 1, 1, 1, 5, 2)
        );
    }
}
