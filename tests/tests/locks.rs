//! Leases and the prune lock through the library: refreshed while held,
//! never two prunes at once, work whose protection lapsed commits nothing,
//! leases name the real machine, and data a backup reused during a prune
//! stays readable until the next prune moves it back into the index.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use vault_core::check::ReadData;
use vault_core::lock::{this_host, LockTiming};
use vault_core::prune::PruneOptions;
use vault_core::{BackupOptions, Error, NoProgress, OpenOptions, Repository, SnapshotId, Source};
use vault_store::{Backend, FaultPlan, FaultyBackend, FileType};
use vault_tests::library::{backup, dump, new_repo, open, PW};
use vault_tests::{locks, random_like, text_like};

fn open_timed(b: Arc<dyn Backend>, lifetime_ms: u64, refresh_ms: u64) -> Repository {
    let opts = OpenOptions {
        lock_timing: LockTiming {
            lifetime: Duration::from_millis(lifetime_ms),
            refresh: Duration::from_millis(refresh_ms),
        },
        ..Default::default()
    };
    Repository::open(b, PW, &opts).unwrap()
}

fn stream(data: Vec<u8>) -> Source<'static> {
    Source::Stream {
        name: "db.sql".into(),
        reader: Box::new(std::io::Cursor::new(data)),
    }
}

fn backup_opts(day: u32) -> BackupOptions {
    BackupOptions {
        time: format!("2026-11-{day:02}T03:00:00Z"),
        hostname: "db1".into(),
        ..Default::default()
    }
}

/// A source that calls `hook` once, after `after` bytes, then goes on.
struct Hooked<F: FnMut()> {
    data: std::io::Cursor<Vec<u8>>,
    after: u64,
    hook: Option<F>,
}

impl<F: FnMut()> Read for Hooked<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.position() >= self.after {
            if let Some(mut h) = self.hook.take() {
                h();
            }
        }
        let room = (self.after.saturating_sub(self.data.position()) as usize).max(1);
        let n = buf.len().min(room);
        self.data.read(&mut buf[..n])
    }
}

fn hooked<'a, F: FnMut() + Send + 'a>(data: Vec<u8>, after: u64, hook: F) -> Source<'a> {
    Source::Stream {
        name: "db.sql".into(),
        reader: Box::new(Hooked {
            data: std::io::Cursor::new(data),
            after,
            hook: Some(hook),
        }),
    }
}

fn lock_names(b: &dyn Backend) -> Vec<String> {
    b.list(FileType::Lock)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn a_prune_longer_than_its_lock_lifetime_keeps_refreshing_it() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let ids: Vec<SnapshotId> = (1..=4)
        .map(|d| backup(&repo, d, &random_like(1 << 20, d.into())))
        .collect();
    repo.remove_snapshots(&ids[..2]).unwrap();
    // Every operation is slow: the prune takes several lock lifetimes.
    let slow: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        mem.clone(),
        FaultPlan {
            latency: Some(Duration::from_millis(40)),
            ..Default::default()
        },
    ));
    let pruner = open_timed(slow, 600, 150);
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = std::time::Instant::now();
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen.lock().unwrap().extend(lock_names(&*mem));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let r = pruner.prune(&PruneOptions::default(), &NoProgress);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    })
    .unwrap();
    let took = started.elapsed();
    assert!(report.deleted_now > 0, "{report:?}");
    let seen = seen.into_inner().unwrap();
    let prune_locks: Vec<&String> = seen.iter().filter(|n| n.starts_with("prune-")).collect();
    let keys: std::collections::BTreeSet<&str> = prune_locks
        .iter()
        .map(|n| vault_core::lock::lock_key(n))
        .collect();
    assert_eq!(keys.len(), 1, "one holder: {prune_locks:?}");
    assert!(
        took > Duration::from_millis(900),
        "the slow store makes the prune outlast its lock ({took:?})"
    );
    assert!(
        prune_locks.iter().any(|n| !n.ends_with("-0")),
        "a prune of {took:?} with a 600 ms lock refreshed it: {prune_locks:?}"
    );
    assert!(lock_names(&*mem).is_empty(), "released at the end");
    let repo = open(mem.clone());
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
    for id in &ids[2..] {
        assert!(!dump(&repo, id).is_empty());
    }
}

#[test]
fn two_prunes_started_together_never_both_run() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let ids: Vec<SnapshotId> = (1..=4)
        .map(|d| backup(&repo, d, &text_like(1 << 20, d.into())))
        .collect();
    repo.remove_snapshots(&ids[..2]).unwrap();
    for _ in 0..3 {
        let slow = || -> Arc<dyn Backend> {
            Arc::new(FaultyBackend::new(
                mem.clone(),
                FaultPlan {
                    latency: Some(Duration::from_millis(3)),
                    ..Default::default()
                },
            ))
        };
        let (a, b) = (open(slow()), open(slow()));
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| {
                barrier.wait();
                a.prune(&PruneOptions::default(), &NoProgress)
            });
            let tb = s.spawn(|| {
                barrier.wait();
                b.prune(&PruneOptions::default(), &NoProgress)
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        for r in [&ra, &rb] {
            assert!(matches!(r, Ok(_) | Err(Error::Locked { .. })), "{r:?}");
        }
        assert!(
            ra.is_err() || rb.is_err(),
            "two prunes started at once both ran: {ra:?} {rb:?}"
        );
        assert!(lock_names(&*mem).is_empty(), "{:?}", lock_names(&*mem));
    }
    let repo = open(mem.clone());
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
    for id in &ids[2..] {
        assert!(!dump(&repo, id).is_empty());
    }
}

#[test]
fn a_backup_whose_lease_lapsed_commits_nothing() {
    let mem = new_repo();
    // Refreshes come too late for the lifetime: the lease lapses while the
    // backup is stalled (a machine suspended, a store unreachable).
    let repo = open_timed(mem.clone(), 500, 60_000);
    let src = hooked(text_like(2 << 20, 3), 1 << 20, || {
        std::thread::sleep(Duration::from_millis(700))
    });
    match repo.snapshot(src, &backup_opts(1), &NoProgress) {
        Err(Error::LockLost { what }) => assert!(what.contains("expired"), "{what}"),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert!(repo.snapshot_ids().unwrap().is_empty(), "nothing committed");
    assert!(lock_names(&*mem).is_empty(), "its lease is released");
    // Removed by someone else (`vault unlock --remove-all`): the same.
    let repo = open(mem.clone());
    let other = open(mem.clone());
    let src = hooked(text_like(2 << 20, 4), 1 << 20, || {
        for (n, _) in other.locks().unwrap() {
            other.release(&n).unwrap();
        }
    });
    match repo.snapshot(src, &backup_opts(2), &NoProgress) {
        Err(Error::LockLost { what }) => assert!(what.contains("removed"), "{what}"),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert!(repo.snapshot_ids().unwrap().is_empty());
    // With its lease intact, the same backup commits.
    let id = backup(&repo, 3, &text_like(2 << 20, 4));
    assert!(dump(&repo, &id) == text_like(2 << 20, 4));
}

#[test]
fn leases_name_this_machine_whatever_host_the_snapshot_records() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let reader = open(mem.clone());
    let hosts = std::sync::Mutex::new(Vec::new());
    let src = hooked(text_like(1 << 20, 5), 1 << 19, || {
        for (_, info) in reader.locks().unwrap() {
            hosts.lock().unwrap().push(info.unwrap().hostname);
        }
    });
    let opts = BackupOptions {
        hostname: "recorded-host".into(),
        ..backup_opts(1)
    };
    let done = repo.snapshot(src, &opts, &NoProgress).unwrap();
    assert_eq!(done.snapshot.hostname, "recorded-host");
    assert_eq!(hosts.into_inner().unwrap(), vec![this_host()]);
}

#[test]
fn data_reused_during_a_prune_stays_readable_until_the_next_prune() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let day1 = text_like(2 << 20, 11);
    let d1 = backup(&repo, 1, &day1);
    let d2 = backup(&repo, 2, &random_like(1 << 20, 12));
    // A backup is running (lease live) and has deduplicated against day 1.
    let lease = locks::lease(&repo, "other-host");
    let snap1 = repo.load_snapshot(&d1).unwrap();
    repo.remove_snapshots(&[d1]).unwrap();
    let r = repo.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.deferred > 0 && r.deleted_now == 0, "{r:?}");
    // It commits: its snapshot uses blobs that are in no index object now,
    // only in packs awaiting deletion. They are readable all the same.
    let reused = repo.save_snapshot(&snap1).unwrap();
    repo.release(&lease).unwrap();
    let fresh = open(mem.clone());
    assert!(
        dump(&fresh, &reused) == day1,
        "readable before the next prune"
    );
    let report = fresh.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // A backup starting now does not deduplicate against them: it stores
    // day 1 again rather than come to rely on packs about to go.
    let again = fresh
        .snapshot(stream(day1.clone()), &backup_opts(3), &NoProgress)
        .unwrap();
    assert!(
        again.snapshot.summary.bytes_added >= day1.len() as u64 / 2,
        "{:?}",
        again.snapshot.summary
    );
    let r = fresh.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.deleted_pending > 0, "{r:?}");
    let repo = open(mem.clone());
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
    for id in [reused, again.id] {
        assert!(dump(&repo, &id) == day1);
    }
    assert!(!dump(&repo, &d2).is_empty());
}

#[test]
fn a_deferred_deletion_spares_packs_indexed_again_by_repair() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let day1 = text_like(2 << 20, 21);
    let d1 = backup(&repo, 1, &day1);
    backup(&repo, 2, &random_like(1 << 20, 22));
    let lease = locks::lease(&repo, "other-host");
    repo.remove_snapshots(&[d1]).unwrap();
    let r = repo.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.deferred > 0, "{r:?}");
    // `repair index` puts every pack back into the index, those awaiting
    // deletion too; a backup then deduplicates against them.
    repo.repair_index(&NoProgress).unwrap();
    let repo = open(mem.clone());
    let again = repo
        .snapshot(stream(day1.clone()), &backup_opts(3), &NoProgress)
        .unwrap();
    assert!(
        again.snapshot.summary.bytes_added < day1.len() as u64 / 100,
        "deduplicated, only a new tree: {:?}",
        again.snapshot.summary
    );
    repo.release(&lease).unwrap();
    // The deferred deletion comes due, but those packs are in use again.
    open(mem.clone())
        .prune(&PruneOptions::default(), &NoProgress)
        .unwrap();
    let repo = open(mem.clone());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(dump(&repo, &again.id) == day1);
}

#[test]
fn packs_an_interrupted_backup_left_unindexed_are_adopted_by_the_next() {
    let mem = new_repo();
    let data = random_like(6 << 20, 31);
    // The packs are stored, but no index object ever is: the backup fails.
    let no_index: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        mem.clone(),
        FaultPlan {
            fail_creates_of: Some(FileType::Index),
            ..Default::default()
        },
    ));
    let err = open(no_index)
        .snapshot(stream(data.clone()), &backup_opts(1), &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    let orphans = mem.list(FileType::Pack).unwrap().len();
    let orphan_bytes: u64 = mem.list(FileType::Pack).unwrap().iter().map(|p| p.1).sum();
    assert!(orphans >= 4, "{orphans} packs stored");
    // While a prune holds the lock, nothing is adopted (the prune may be
    // deleting exactly these packs).
    let repo = open(mem.clone());
    let held = locks::prune_lock(
        &repo,
        &vault_core::lock::LockInfo::new("prune", "elsewhere", Duration::from_secs(600)),
    );
    let wary = repo
        .snapshot(stream(b"tiny".to_vec()), &backup_opts(2), &NoProgress)
        .unwrap();
    assert_eq!(wary.resumed_packs, 0);
    repo.release(&held).unwrap();
    // Then the retry adopts them and uploads almost nothing.
    let before: u64 = mem.list(FileType::Pack).unwrap().iter().map(|p| p.1).sum();
    let done = repo
        .snapshot(stream(data.clone()), &backup_opts(3), &NoProgress)
        .unwrap();
    let after: u64 = mem.list(FileType::Pack).unwrap().iter().map(|p| p.1).sum();
    assert!(
        done.resumed_packs as usize >= orphans,
        "{}",
        done.resumed_packs
    );
    // Nothing the orphans hold is uploaded again (the data is incompressible,
    // so stored bytes are about the input's).
    assert!(
        orphan_bytes + (after - before) < data.len() as u64 + (256 << 10),
        "uploaded {} of {} again, {orphan_bytes} were stored already",
        after - before,
        data.len()
    );
    let repo = open(mem.clone());
    assert!(dump(&repo, &done.id) == data);
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
}

#[test]
fn packs_awaiting_deletion_are_never_adopted() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let day1 = random_like(3 << 20, 41);
    let d1 = backup(&repo, 1, &day1);
    backup(&repo, 2, &text_like(1 << 20, 42));
    let lease = locks::lease(&repo, "other-host");
    repo.remove_snapshots(&[d1]).unwrap();
    let r = repo.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.deferred > 0, "{r:?}");
    // Day 1's packs are outside the index, but a prune recorded them for
    // deletion: a backup of day 1 stores it anew instead of adopting them.
    let again = repo
        .snapshot(stream(day1.clone()), &backup_opts(3), &NoProgress)
        .unwrap();
    assert_eq!(again.resumed_packs, 0);
    assert!(again.snapshot.summary.bytes_added >= day1.len() as u64);
    repo.release(&lease).unwrap();
    let r = open(mem.clone())
        .prune(&PruneOptions::default(), &NoProgress)
        .unwrap();
    assert!(r.deleted_pending > 0, "{r:?}");
    let repo = open(mem.clone());
    assert!(dump(&repo, &again.id) == day1);
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
}

#[test]
fn a_lease_that_lapsed_stays_lost_when_refreshes_work_again() {
    let mem = new_repo();
    // Lock writes fail while `down` is set: an outage only the lease
    // refreshes meet.
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = down.clone();
    let store = Arc::new(vault_tests::Intercept::new(
        mem.clone(),
        move |h| {
            (h.kind() == FileType::Lock && flag.load(std::sync::atomic::Ordering::SeqCst)).then(
                || {
                    vault_store::StoreError::new(
                        vault_store::StoreErrorKind::Other,
                        "injected outage",
                    )
                },
            )
        },
        |_| {},
    ));
    // Refreshed every 150 ms, lasting 600 ms: an outage of a second lets it
    // lapse; when the store comes back, the next refresh must not revive it
    // (a prune may have acted on its absence meanwhile).
    let repo = open_timed(store.clone(), 600, 150);
    let src = hooked(text_like(2 << 20, 61), 1 << 20, || {
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1000));
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(400));
    });
    match repo.snapshot(src, &backup_opts(1), &NoProgress) {
        Err(Error::LockLost { what }) => assert!(what.contains("expired"), "{what}"),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert!(repo.snapshot_ids().unwrap().is_empty(), "nothing committed");
}

#[test]
fn work_that_panics_releases_its_lease_and_stops_refreshing() {
    let mem = new_repo();
    let repo = open_timed(mem.clone(), 600, 50);
    let started = std::time::Instant::now();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = repo.with_lease(|_| -> vault_core::Result<()> { panic!("the work failed") });
    }));
    assert!(caught.is_err(), "the panic reaches the caller");
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    assert!(lock_names(&*mem).is_empty(), "{:?}", lock_names(&*mem));
    // And nothing refreshes it afterwards.
    std::thread::sleep(Duration::from_millis(200));
    assert!(lock_names(&*mem).is_empty(), "{:?}", lock_names(&*mem));
}

#[test]
fn a_damaged_lease_holds_prune_back_until_unlock_removes_it() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let days: Vec<SnapshotId> = (1..=3)
        .map(|d| backup(&repo, d, &random_like(1 << 20, 80 + u64::from(d))))
        .collect();
    // A lease object that does not open (damage): it might be a live
    // backup's, so prune must not ignore it.
    mem.create(
        &vault_store::Handle::new(FileType::Lock, "lease-00112233445566778899aabbccddeeff-0")
            .unwrap(),
        bytes::Bytes::from_static(b"not a sealed lock"),
    )
    .unwrap();
    repo.remove_snapshots(&days[..1]).unwrap();
    let r = repo.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.deferred > 0 && r.deleted_now == 0, "{r:?}");
    assert_eq!(
        repo.remove_stale_locks().unwrap().len(),
        0,
        "not stale: unknown"
    );
    assert_eq!(repo.remove_unreadable_locks().unwrap().len(), 1);
    let r = open(mem.clone())
        .prune(&PruneOptions::default(), &NoProgress)
        .unwrap();
    assert!(r.deleted_pending > 0, "{r:?}");
    assert!(open(mem.clone())
        .check(ReadData::All, &NoProgress)
        .unwrap()
        .is_ok());
}
