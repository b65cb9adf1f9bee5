//! Leases and the prune lock: how backups and prune stay out of each other's way.
//!
//! Backups take no lock. A running backup (or copy) announces itself with a
//! *lease* (`locks/lease-<32 hex>-<n>`: host, pid, start, expiry); prune and
//! repair are exclusive among themselves through a *prune lock*
//! (`locks/prune-<32 hex>-<n>`). Both are [`Held`]: refreshed in the
//! background while the work runs (objects are immutable, so a refresh writes
//! `-<n+1>` and then deletes `-<n>`; the name without the count is the
//! holder's identity), released at the end, and checked with
//! [`Held::ensure_valid`] before the work commits or deletes anything. A lease
//! never blocks anything; it simply expires.
//!
//! Taking the prune lock is create-then-look: write our own lock object, then
//! list the prune locks; any other live one means someone else holds it, and
//! we withdraw ours. Of two contenders at least one sees the other (each
//! lists after its own create), so two prunes never both proceed.
//!
//! A lock or lease is *stale* when its expiry has passed, or when it was taken
//! on this very machine (same host name, boot and process namespace) by a
//! process that no longer exists. Stale ones are removed by the next backup,
//! prune or `vault unlock`, which say so. Lock objects are sealed JSON
//! (associated data `"vault lock v1"`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vault_store::{FileType, Handle, StoreErrorKind};

use crate::error::{Error, Result};
use crate::repository::Repository;

const AD: &[u8] = b"vault lock v1";

/// How long leases and prune locks last and how often their holders refresh them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTiming {
    /// How long a lease or lock counts without a refresh.
    pub lifetime: Duration,
    /// How often a holder refreshes it.
    pub refresh: Duration,
}

impl Default for LockTiming {
    /// 15 minutes, refreshed every 5: a holder survives two failed refreshes.
    fn default() -> Self {
        LockTiming {
            lifetime: Duration::from_secs(15 * 60),
            refresh: Duration::from_secs(5 * 60),
        }
    }
}

impl LockTiming {
    /// How close to its expiry a lease may be when the work commits: the
    /// commit itself must end before anyone may call the lease stale.
    fn margin(&self) -> Duration {
        (self.lifetime / 10).min(Duration::from_secs(60))
    }
}

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
    /// The holder's kernel boot (Linux `boot_id`): a pid means something
    /// only within one boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The holder's pid namespace (containers sharing a host name have their
    /// own pids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// The holder process's start time (clock ticks since boot): tells a
    /// reused pid from the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
}

/// This machine's host name, as leases and locks record it.
pub fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether process `pid` exists (`kill(pid, 0)`): `Some(false)` only when
/// the kernel says there is no such process; a process of another user
/// exists (`EPERM`), and an answer that cannot be had is `None`.
fn process_exists(pid: u32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    match rustix::process::test_kill_process(pid) {
        Ok(()) => Some(true),
        Err(e) if e == rustix::io::Errno::SRCH => Some(false),
        Err(e) if e == rustix::io::Errno::PERM => Some(true),
        Err(_) => None,
    }
}

/// Start time of process `pid` (field 22 of `/proc/<pid>/stat`), or `None`
/// when it cannot be read (no such process, or `/proc` hides it).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl LockInfo {
    /// A lock of `kind` for this process on `hostname`, expiring after `lifetime`.
    pub fn new(kind: &str, hostname: &str, lifetime: Duration) -> LockInfo {
        let now = jiff::Timestamp::now();
        let pid = std::process::id();
        LockInfo {
            kind: kind.into(),
            hostname: hostname.into(),
            pid,
            started: now.to_string(),
            expires: expiry(now, lifetime).to_string(),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            process_start: process_start(pid),
        }
    }

    /// Expired, or taken on this machine by a process that is gone.
    pub fn is_stale(&self) -> bool {
        let expired = self
            .expires
            .parse::<jiff::Timestamp>()
            .map_or(true, |t| t < jiff::Timestamp::now());
        expired || self.holder_is_gone()
    }

    /// True only when the holder provably ran on this machine, in this boot
    /// and pid namespace, and its process no longer exists (or its pid now
    /// belongs to a younger process). Anything else (another machine that
    /// shares the host name, a container, a system without `/proc`) waits
    /// for the expiry.
    fn holder_is_gone(&self) -> bool {
        if self.hostname != this_host() {
            return false;
        }
        let same_machine = self.boot_id.is_some()
            && self.boot_id == boot_id()
            && self.pid_namespace.is_some()
            && self.pid_namespace == pid_namespace();
        if !same_machine {
            return false;
        }
        match process_exists(self.pid) {
            // No such process: it is gone.
            Some(false) => true,
            // It runs (or cannot be told): gone only if the pid now belongs
            // to a process that started at another time.
            _ => match (process_start(self.pid), self.process_start) {
                (Some(now), Some(then)) => now != then,
                _ => false,
            },
        }
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} by pid {} on {} since {} (expires {})",
            self.kind, self.pid, self.hostname, self.started, self.expires
        )
    }
}

fn expiry(from: jiff::Timestamp, lifetime: Duration) -> jiff::Timestamp {
    let d = jiff::SignedDuration::try_from(lifetime).unwrap_or(jiff::SignedDuration::MAX);
    from.checked_add(d).unwrap_or(jiff::Timestamp::MAX)
}

/// The identity of a lease or prune lock across its refreshes: its name
/// without the refresh count (`lease-<32 hex>`, `prune-<32 hex>`).
pub fn lock_key(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((key, n))
            if (key.starts_with("lease-") || key.starts_with("prune-"))
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            key
        }
        _ => name,
    }
}

fn is_prune_lock(name: &str) -> bool {
    name == "prune" || name.starts_with("prune-")
}

/// A lease or prune lock this process holds, refreshed in the background
/// while its work runs.
pub struct Held<'r> {
    repo: &'r Repository,
    key: String,
    info: LockInfo,
    state: Mutex<HeldState>,
}

struct HeldState {
    /// The current lock object.
    name: String,
    /// Its refresh count.
    count: u64,
    /// The expiry written in the newest lock object known to be stored.
    valid_until: jiff::Timestamp,
    /// Why this lease or lock stopped counting, once it did: sticky, so a
    /// later refresh cannot bring it back.
    lost: Option<String>,
}

impl std::fmt::Debug for Held<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("key", &self.key).finish()
    }
}

impl<'r> Held<'r> {
    /// Writes a new lock object of `kind` (`lease` or `prune`).
    fn take(repo: &'r Repository, kind: &str) -> Result<Held<'r>> {
        let key = format!(
            "{kind}-{}",
            hex::encode(crate::crypto::random_bytes::<16>())
        );
        let info = LockInfo::new(kind, &this_host(), repo.lock_timing().lifetime);
        let name = format!("{key}-0");
        repo.write_own_lock(&name, &info)?;
        let valid_until = info.expires.parse().unwrap_or(jiff::Timestamp::MIN);
        Ok(Held {
            repo,
            key,
            info,
            state: Mutex::new(HeldState {
                name,
                count: 0,
                valid_until,
                lost: None,
            }),
        })
    }

    /// The holder's identity, the same across refreshes (recorded by backups
    /// in the index objects they write, so prune knows whose packs they are).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The current lock object's name.
    pub fn name(&self) -> String {
        self.state().name.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HeldState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the next lock object, then deletes the previous one. A failed
    /// refresh leaves the previous object counting until its expiry; the
    /// next refresh tries again. A lease or lock that already lapsed (its
    /// expiry passed, or another process removed it) is never refreshed:
    /// others may have acted on its absence, so it stays lost.
    fn refresh(&self) -> Result<()> {
        let mut st = self.state();
        if st.lost.is_some() {
            return Ok(());
        }
        if let Some(why) = self.lapsed(&st)? {
            st.lost = Some(why);
            return Ok(());
        }
        let count = st.count + 1;
        let new = format!("{}-{count}", self.key);
        let now = jiff::Timestamp::now();
        let info = LockInfo {
            expires: expiry(now, self.repo.lock_timing().lifetime).to_string(),
            ..self.info.clone()
        };
        let expires = match self.repo.write_lock(&new, &info) {
            Ok(()) => info.expires.parse().ok(),
            // A retried create whose first attempt landed: what it stored
            // is what counts.
            Err(Error::Store(e)) if e.kind() == StoreErrorKind::AlreadyExists => self
                .repo
                .read_lock(&new)
                .ok()
                .and_then(|i| i.expires.parse().ok()),
            Err(e) => return Err(e),
        };
        let old = std::mem::replace(&mut st.name, new);
        st.count = count;
        if let Some(t) = expires {
            st.valid_until = t;
        }
        drop(st);
        // Best effort: a leftover is the same holder and expires.
        let _ = self.repo.release(&old);
        Ok(())
    }

    /// Why the current object no longer counts, if it does not: its expiry
    /// is (about to be) past, or it is gone from the store.
    fn lapsed(&self, st: &HeldState) -> Result<Option<String>> {
        let margin = self.repo.lock_timing().margin();
        if expiry(jiff::Timestamp::now(), margin) >= st.valid_until {
            return Ok(Some(format!(
                "{} {} expired at {} (refreshes failed, or the process was stopped for longer than its lifetime)",
                self.info.kind, st.name, st.valid_until
            )));
        }
        match self
            .repo
            .backend()
            .size(&Handle::new(FileType::Lock, &st.name)?)
        {
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(Some(format!(
                "{} {} was removed by another process (`vault unlock --remove-all`?)",
                self.info.kind, st.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Fails with [`Error::LockLost`] unless this lease or lock still counts
    /// and will for a safety margin: its newest object is stored, nobody
    /// removed it, and its expiry is ahead. Called before committing or
    /// deleting, so that work whose protection lapsed (a machine suspended
    /// for longer than the lifetime, a store unreachable for the refreshes,
    /// `unlock --remove-all`) stops instead of trusting it. Once lost, it
    /// stays lost.
    pub fn ensure_valid(&self) -> Result<()> {
        // The state is held across the check, so a refresh cannot rename the
        // object between reading its name and looking it up.
        let mut st = self.state();
        if st.lost.is_none() {
            st.lost = self.lapsed(&st)?;
        }
        match &st.lost {
            None => Ok(()),
            Some(why) => Err(Error::LockLost { what: why.clone() }),
        }
    }

    /// Runs `work` while a background thread refreshes this lease or lock;
    /// releases it afterwards.
    fn run<T: Send>(self, work: impl FnOnce(&Held<'r>) -> Result<T> + Send) -> Result<T> {
        /// Stops the refresher when the work ends, also by a panic (which
        /// would otherwise leave it refreshing forever).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        /// Releases the lease or lock when the work is over, however it ended.
        struct Release<'a, 'r>(&'a Held<'r>);
        impl Drop for Release<'_, '_> {
            fn drop(&mut self) {
                // The current object, and the next one in case a refresh
                // landed but its answer was lost (deleting what is not
                // there is fine).
                let (name, next) = {
                    let st = self.0.state();
                    (st.name.clone(), format!("{}-{}", self.0.key, st.count + 1))
                };
                let _ = self.0.repo.release(&name);
                let _ = self.0.repo.release(&next);
            }
        }
        let _release = Release(&self);
        let done = AtomicBool::new(false);
        let timing = self.repo.lock_timing();
        let tick = timing.refresh.min(Duration::from_secs(1));
        std::thread::scope(|s| {
            let refresher = s.spawn(|| {
                let mut due = std::time::Instant::now() + timing.refresh;
                while !done.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    if done.load(Ordering::Relaxed) || std::time::Instant::now() < due {
                        continue;
                    }
                    due = std::time::Instant::now()
                        + match self.refresh() {
                            Ok(()) => timing.refresh,
                            // Try again soon: the previous object still counts.
                            Err(_) => timing.refresh / 5,
                        };
                }
            });
            let guard = Done(&done);
            let r = work(&self);
            drop(guard);
            refresher.thread().unpark();
            r
        })
    }
}

impl Repository {
    /// Runs `work` under a lease: announces it (and keeps it refreshed),
    /// removes stale leases and locks (best effort; returned described),
    /// brings the index cache up to date (after the lease exists, so that a
    /// prune either sees the lease or wrote its new index before this read
    /// it), and releases it after. `work` gets the lease, to record its
    /// [`Held::key`] in the index objects it writes and to
    /// [`Held::ensure_valid`] before it commits.
    pub fn with_lease<T: Send>(
        &self,
        work: impl FnOnce(&Held<'_>) -> Result<T> + Send,
    ) -> Result<(Result<T>, Vec<String>)> {
        let lease = Held::take(self, "lease")?;
        let mut stale = Vec::new();
        let result = lease.run(|lease| {
            stale = self
                .remove_stale_locks()
                .unwrap_or_default()
                .iter()
                .map(LockInfo::describe)
                .collect();
            self.refresh_index()?;
            Ok(work(lease))
        });
        result.map(|r| (r, stale))
    }

    /// Runs `work` holding the exclusive prune lock (prune and repair), or
    /// fails with [`Error::Locked`] naming the holder. Also returns the stale
    /// leases and locks it removed on the way, described.
    pub fn with_prune_lock<T: Send>(
        &self,
        work: impl FnOnce(&Held<'_>) -> Result<T> + Send,
    ) -> Result<(T, Vec<String>)> {
        let lock = Held::take(self, "prune")?;
        let mut replaced = Vec::new();
        let others = match self.locks() {
            Ok(l) => l,
            Err(e) => {
                let _ = self.release(&lock.name());
                return Err(e);
            }
        };
        for (name, info) in others {
            if !is_prune_lock(&name) || lock_key(&name) == lock.key() {
                continue;
            }
            let holder = match info {
                Ok(i) if i.is_stale() => {
                    match self.release(&name) {
                        Ok(()) => replaced.push(i.describe()),
                        Err(Error::Store(e)) if e.is_not_found() => {}
                        Err(e) => {
                            let _ = self.release(&lock.name());
                            return Err(e);
                        }
                    }
                    continue;
                }
                Ok(i) => i.describe(),
                Err(e) => {
                    format!("an unreadable prune lock {name} ({e}; `vault unlock` removes it)")
                }
            };
            let _ = self.release(&lock.name());
            return Err(Error::Locked { holder });
        }
        // Stale leases too: whoever holds the prune lock tidies up.
        replaced.extend(
            self.remove_stale_locks()
                .unwrap_or_default()
                .iter()
                .map(LockInfo::describe),
        );
        lock.run(work).map(|r| (r, replaced))
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

    /// Writes a lock object under a name only this process uses (128 random
    /// bits): one that exists already is a retried create whose first
    /// attempt landed.
    fn write_own_lock(&self, name: &str, info: &LockInfo) -> Result<()> {
        match self.write_lock(name, info) {
            Err(Error::Store(e)) if e.kind() == StoreErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
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

    /// Deletes a lease or lock.
    pub fn release(&self, name: &str) -> Result<()> {
        self.backend().delete(&Handle::new(FileType::Lock, name)?)?;
        Ok(())
    }

    /// Leases and prune locks with what they say. An unreadable one (damaged;
    /// no working vault writes one) counts as live for prune, which is the
    /// safe side, and is reported; `vault unlock` removes it.
    pub fn locks(&self) -> Result<Vec<(String, Result<LockInfo>)>> {
        let mut out = Vec::new();
        for (n, _) in self.backend().list(FileType::Lock)? {
            if !(n.starts_with("lease-") || is_prune_lock(&n)) {
                continue;
            }
            match self.read_lock(&n) {
                // Released between the listing and the read.
                Err(Error::Store(e)) if e.is_not_found() => {}
                // The store failed: nothing can be said about this lock, so
                // nobody may act on it.
                Err(Error::Store(e)) => return Err(e.into()),
                info => out.push((n, info)),
            }
        }
        Ok(out)
    }

    /// Removes stale leases and locks; returns what was removed, for the
    /// caller to report.
    pub fn remove_stale_locks(&self) -> Result<Vec<LockInfo>> {
        let mut removed = Vec::new();
        for (name, info) in self.locks()? {
            if let Ok(info) = info {
                if info.is_stale() {
                    match self.release(&name) {
                        Ok(()) => removed.push(info),
                        Err(Error::Store(e)) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Removes lock objects that cannot be read (damaged); returns their names.
    pub fn remove_unreadable_locks(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (name, info) in self.locks()? {
            if info.is_err() {
                self.release(&name)?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Live leases (names; unreadable ones count as live).
    pub fn live_leases(&self) -> Result<Vec<String>> {
        Ok(self
            .locks()?
            .into_iter()
            .filter(|(n, i)| n.starts_with("lease-") && i.as_ref().map_or(true, |i| !i.is_stale()))
            .map(|(n, _)| n)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_strip_the_refresh_count_only() {
        for (name, key) in [
            ("lease-ab12-0", "lease-ab12"),
            ("lease-ab12-17", "lease-ab12"),
            ("prune-ab12-3", "prune-ab12"),
            ("prune", "prune"),
            ("lease-ab12-", "lease-ab12-"),
            ("lease-ab12-x", "lease-ab12-x"),
            ("pending-ab12-1", "pending-ab12-1"),
        ] {
            assert_eq!(lock_key(name), key, "{name}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let mine = LockInfo::new("lease", &this_host(), Duration::from_secs(60));
        assert!(!mine.is_stale());
        if mine.boot_id.is_none() {
            return; // no /proc: only expiry counts, checked below
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LockInfo {
            pid,
            ..mine.clone()
        };
        assert!(dead.is_stale(), "pid {pid} has exited");
        // Same pid, another start time: the pid was reused.
        let reused = LockInfo {
            process_start: mine.process_start.map(|s| s + 1),
            ..mine.clone()
        };
        assert!(reused.is_stale());
        // Another boot or namespace: only the expiry can tell.
        for other in [
            LockInfo {
                pid,
                boot_id: Some("another boot".into()),
                ..mine.clone()
            },
            LockInfo {
                pid,
                pid_namespace: Some("pid:[1]".into()),
                ..mine.clone()
            },
            LockInfo {
                pid,
                hostname: "elsewhere".into(),
                ..mine.clone()
            },
        ] {
            assert!(!other.is_stale(), "{other:?}");
        }
    }

    #[test]
    fn expired_is_stale_anywhere() {
        let mut l = LockInfo::new("prune", "elsewhere", Duration::from_secs(60));
        l.expires = "2020-01-01T00:00:00Z".into();
        assert!(l.is_stale());
        l.expires = "not a time".into();
        assert!(l.is_stale());
    }
}
