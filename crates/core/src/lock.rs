//! Leases and the prune lock: how backups and prune stay out of each other's way.
//!
//! Backups take no lock. A running backup announces itself with a *lease*
//! (`locks/lease-<random>`: host, pid, start, expiry), refreshed while it runs
//! and deleted when it ends; a lease never blocks anything and simply
//! expires. Prune is exclusive among prunes through `locks/prune`, created
//! create-only. A lock or lease is *stale* when its expiry has passed, or
//! when it was taken on this host by a process that no longer exists; the
//! next prune removes stale ones and says so. Prune deletes data at once only
//! when no live lease exists; otherwise it records the deletion and a later
//! prune carries it out (see `prune`). Lock objects are sealed JSON
//! (associated data `"vault lock v1"`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vault_store::{FileType, Handle, StoreErrorKind};

use crate::error::{Error, Result};
use crate::repository::Repository;

const AD: &[u8] = b"vault lock v1";
/// How long a backup's lease lasts without a refresh.
pub const LEASE_SECONDS: i64 = 15 * 60;
/// How often a running backup refreshes its lease.
pub const LEASE_REFRESH_SECONDS: u64 = 5 * 60;
/// How long the prune lock lasts.
pub const PRUNE_LOCK_SECONDS: i64 = 60 * 60;

/// What a lock object says about its holder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    /// `lease` or `prune`.
    pub kind: String,
    /// Host of the holder.
    pub hostname: String,
    /// Process id of the holder on that host.
    pub pid: u32,
    /// When it was taken (RFC 3339).
    pub started: String,
    /// When it stops counting unless refreshed (RFC 3339).
    pub expires: String,
}

impl LockInfo {
    /// A lock for this process, expiring in `seconds`.
    pub fn new(kind: &str, hostname: &str, seconds: i64) -> LockInfo {
        let now = jiff::Timestamp::now();
        LockInfo {
            kind: kind.into(),
            hostname: hostname.into(),
            pid: std::process::id(),
            started: now.to_string(),
            expires: (now + jiff::SignedDuration::from_secs(seconds)).to_string(),
        }
    }

    /// Expired, or taken on this host by a process that is gone.
    pub fn is_stale(&self, this_host: &str) -> bool {
        let expired = self
            .expires
            .parse::<jiff::Timestamp>()
            .map_or(true, |t| t < jiff::Timestamp::now());
        let dead = self.hostname == this_host
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        expired || dead
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} by pid {} on {} since {} (expires {})",
            self.kind, self.pid, self.hostname, self.started, self.expires
        )
    }
}

/// The identity of a lease across its refreshes: its name without the
/// refresh count (`lease-<32 hex>`).
pub fn lease_key(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((key, n)) if key.starts_with("lease-") && n.bytes().all(|b| b.is_ascii_digit()) => key,
        _ => name,
    }
}

impl Repository {
    /// Runs `work` under a lease: announces it, removes stale leases and locks
    /// (best effort; returned described), brings the index cache up to date
    /// (after the lease exists, so that a prune either sees the lease or
    /// wrote its new index before this read it), refreshes the lease while
    /// `work` runs, and releases it after. `work` gets the lease identity to
    /// record in the index objects it writes.
    pub fn with_lease<T>(
        &self,
        hostname: &str,
        work: impl FnOnce(&str) -> Result<T> + Send,
    ) -> Result<(Result<T>, Vec<String>)>
    where
        T: Send,
    {
        let lease = self.take_lease(hostname)?;
        let key = lease_key(&lease).to_owned();
        let stale: Vec<String> = self
            .remove_stale_locks(hostname)
            .unwrap_or_default()
            .iter()
            .map(LockInfo::describe)
            .collect();
        if let Err(e) = self.refresh_index() {
            let _ = self.release(&lease);
            return Err(e);
        }
        let lease = std::sync::Mutex::new(lease);
        let done = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            let refresher = s.spawn(|| {
                let mut last = std::time::Instant::now();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(std::time::Duration::from_secs(1));
                    if last.elapsed().as_secs() >= LEASE_REFRESH_SECONDS {
                        last = std::time::Instant::now();
                        let mut name = lease.lock().unwrap_or_else(|p| p.into_inner());
                        if let Ok(new) = self.refresh_lease(&name, hostname) {
                            *name = new;
                        }
                    }
                }
            });
            let r = work(&key);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            refresher.thread().unpark();
            r
        });
        let _ = self.release(&lease.into_inner().unwrap_or_else(|p| p.into_inner()));
        Ok((result, stale))
    }

    /// Writes a lock object as given (for tools and tests that need to stage one).
    pub fn write_lock(&self, name: &str, info: &LockInfo) -> Result<()> {
        let sealed = self
            .keys()
            .seal(AD, &serde_json::to_vec(info).expect("lock serializes"));
        self.backend()
            .create(&Handle::new(FileType::Lock, name)?, Bytes::from(sealed))?;
        Ok(())
    }

    fn read_lock(&self, name: &str) -> Result<LockInfo> {
        let bytes = self.backend().read(&Handle::new(FileType::Lock, name)?)?;
        let plain = self
            .keys()
            .open(AD, &bytes)
            .map_err(|e| Error::corrupt(format!("lock {name}"), e.to_string()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| Error::corrupt(format!("lock {name}"), e.to_string()))
    }

    /// Announces a running backup; returns the lease's name,
    /// `lease-<32 hex>-<refresh count>`.
    pub fn take_lease(&self, hostname: &str) -> Result<String> {
        let name = format!(
            "lease-{}-0",
            hex::encode(crate::crypto::random_bytes::<16>())
        );
        self.write_lock(&name, &LockInfo::new("lease", hostname, LEASE_SECONDS))?;
        Ok(name)
    }

    /// Replaces a lease with a fresh one (objects are immutable); returns the
    /// new name, which keeps the lease's identity ([`lease_key`]) so a prune
    /// waiting for this backup keeps waiting.
    pub fn refresh_lease(&self, old: &str, hostname: &str) -> Result<String> {
        let new = match old.rsplit_once('-') {
            Some((key, n)) if key.starts_with("lease-") && n.parse::<u64>().is_ok() => {
                format!("{key}-{}", n.parse::<u64>().unwrap_or(0) + 1)
            }
            _ => format!(
                "lease-{}-0",
                hex::encode(crate::crypto::random_bytes::<16>())
            ),
        };
        self.write_lock(&new, &LockInfo::new("lease", hostname, LEASE_SECONDS))?;
        self.release(old)?;
        Ok(new)
    }

    /// Deletes a lease or lock.
    pub fn release(&self, name: &str) -> Result<()> {
        self.backend().delete(&Handle::new(FileType::Lock, name)?)?;
        Ok(())
    }

    /// Leases and locks with what they say (unreadable ones count as live
    /// until they expire by age of listing; they are reported as such).
    pub fn locks(&self) -> Result<Vec<(String, Result<LockInfo>)>> {
        Ok(self
            .backend()
            .list(FileType::Lock)?
            .into_iter()
            .filter(|(n, _)| n.starts_with("lease-") || n == "prune")
            .map(|(n, _)| {
                let info = self.read_lock(&n);
                (n, info)
            })
            .collect())
    }

    /// Removes stale leases and locks; returns what was removed, for the caller to report.
    pub fn remove_stale_locks(&self, this_host: &str) -> Result<Vec<LockInfo>> {
        let mut removed = Vec::new();
        for (name, info) in self.locks()? {
            if let Ok(info) = info {
                if info.is_stale(this_host) {
                    self.release(&name)?;
                    removed.push(info);
                }
            }
        }
        Ok(removed)
    }

    /// Live leases (names), after stale ones were removed.
    pub fn live_leases(&self, this_host: &str) -> Result<Vec<String>> {
        Ok(self
            .locks()?
            .into_iter()
            .filter(|(n, i)| {
                n.starts_with("lease-") && i.as_ref().map_or(true, |i| !i.is_stale(this_host))
            })
            .map(|(n, _)| n)
            .collect())
    }

    /// Takes the exclusive prune lock, or fails with [`Error::Locked`] naming
    /// the holder. Returns the stale lock it replaced, if any.
    pub fn lock_prune(&self, hostname: &str) -> Result<Option<LockInfo>> {
        let info = LockInfo::new("prune", hostname, PRUNE_LOCK_SECONDS);
        let mut replaced = None;
        for _ in 0..2 {
            match self.write_lock("prune", &info) {
                Ok(()) => return Ok(replaced),
                Err(Error::Store(e)) if e.kind() == StoreErrorKind::AlreadyExists => {
                    match self.read_lock("prune") {
                        Ok(holder) if !holder.is_stale(hostname) => {
                            return Err(Error::Locked {
                                holder: holder.describe(),
                            })
                        }
                        // Stale (or unreadable, then created by a crashed writer): remove and retry.
                        other => {
                            replaced = other.ok();
                            self.release("prune")?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Locked {
            holder: "another prune (the lock changed hands while taking it)".into(),
        })
    }
}
