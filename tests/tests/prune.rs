//! Prune through the library: what it frees, what it never touches, leases,
//! rescue of data a concurrent backup reused, and crashes at every write.

use std::sync::Arc;
use std::time::Duration;

use vault_core::check::ReadData;
use vault_core::lock::LockInfo;
use vault_core::prune::PruneOptions;
use vault_core::{Error, NoProgress, Repository, SnapshotId};
use vault_store::{Backend, FaultPlan, FaultyBackend, FileType, MemoryBackend};
use vault_tests::library::{backup, dump, new_repo, open};
use vault_tests::{locks, random_like, text_like};

fn opts() -> PruneOptions {
    PruneOptions::default()
}

fn pack_bytes(b: &dyn Backend) -> u64 {
    b.list(FileType::Pack).unwrap().iter().map(|(_, s)| s).sum()
}

/// Six days of distinct data; returns (id, data) per day.
fn six_days(repo: &Repository) -> Vec<(SnapshotId, Vec<u8>)> {
    days(repo, 6, 1 << 20)
}

/// `n` days of distinct data of `size` bytes each.
fn days(repo: &Repository, n: u32, size: usize) -> Vec<(SnapshotId, Vec<u8>)> {
    (1..=n)
        .map(|d| {
            let data = if d % 2 == 0 {
                text_like(size, d.into())
            } else {
                random_like(size, d.into())
            };
            (backup(repo, d, &data), data)
        })
        .collect()
}

#[test]
fn prune_frees_what_forgotten_snapshots_alone_used() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let days = six_days(&repo);
    let before = pack_bytes(&*mem);
    repo.remove_snapshots(&days[..3].iter().map(|d| d.0).collect::<Vec<_>>())
        .unwrap();
    let dry = repo
        .prune(
            &PruneOptions {
                dry_run: true,
                ..opts()
            },
            &NoProgress,
        )
        .unwrap();
    assert!(!dry.delete.is_empty() || !dry.repack.is_empty(), "{dry:?}");
    assert_eq!(pack_bytes(&*mem), before, "dry run changes nothing");
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(r.deleted_now > 0, "{r:?}");
    let after = pack_bytes(&*mem);
    assert!(after < before * 7 / 10, "pruned {before} -> {after}");
    let repo = open(mem.clone());
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
    for (id, data) in &days[3..] {
        assert!(dump(&repo, id) == *data);
    }
    // Nothing left to do: a second prune frees nothing.
    let again = repo.prune(&opts(), &NoProgress).unwrap();
    assert_eq!(
        (again.delete.len(), again.repack.len(), again.bytes_freed),
        (0, 0, 0),
        "{again:?}"
    );
}

#[test]
fn prune_waits_for_running_backups_and_rescues_what_they_reused() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let days = six_days(&repo);
    // A backup is running (its lease is live) and deduplicated against day 1.
    let lease = locks::lease(&repo, "other-host");
    let day1 = repo.load_snapshot(&days[0].0).unwrap();
    repo.remove_snapshots(&[days[0].0]).unwrap();
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(
        r.deferred > 0 && r.deleted_now == 0,
        "deletion waits for the lease: {r:?}"
    );
    // The running backup commits a snapshot reusing day 1's data.
    let reused = repo.save_snapshot(&day1).unwrap();
    repo.release(&lease).unwrap();
    let r = open(mem.clone()).prune(&opts(), &NoProgress).unwrap();
    assert!(
        r.rescued > 0,
        "day 1's chunks are copied out before their packs go: {r:?}"
    );
    assert!(r.deleted_pending > 0, "{r:?}");
    let repo = open(mem.clone());
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
    assert!(dump(&repo, &reused) == days[0].1);
    for (id, data) in &days[1..] {
        assert!(dump(&repo, id) == *data);
    }
}

#[test]
fn a_delta_committed_during_a_prune_keeps_its_base() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let day1 = text_like(3 << 20, 41);
    let day2 = vault_tests::mutate_lines(&day1, 2, 42);
    let d1 = backup(&repo, 1, &day1);
    // A backup runs (lease live) and stores day 2 as deltas against day 1.
    let lease = locks::lease(&repo, "other-host");
    let d2 = backup(&repo, 2, &day2);
    let snap2 = repo.load_snapshot(&d2).unwrap();
    assert!(snap2.summary.blobs_delta > 0, "{:?}", snap2.summary);
    // Before it commits, day 1 is forgotten and a prune finds day 1's packs
    // (the bases) and day 2's packs (not committed yet) unused.
    repo.remove_snapshots(&[d1, d2]).unwrap();
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(r.deferred > 0 && r.deleted_now == 0, "{r:?}");
    // The backup commits; the next prune rescues the deltas and their bases.
    let d2 = repo.save_snapshot(&snap2).unwrap();
    repo.release(&lease).unwrap();
    let r = open(mem.clone()).prune(&opts(), &NoProgress).unwrap();
    assert!(r.rescued > 0 && r.deleted_pending > 0, "{r:?}");
    let repo = open(mem.clone());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(dump(&repo, &d2) == day2);
}

/// A store that, when prune writes its first new index object, runs `hook`
/// with a handle of the repository (to stage what another process does at
/// that moment); returns the store and whether the hook ran.
fn at_first_index(
    mem: &Arc<MemoryBackend>,
    hook: impl Fn(&Repository) + Send + Sync + 'static,
) -> (Arc<dyn Backend>, Arc<std::sync::atomic::AtomicBool>) {
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (inner, flag) = (mem.clone(), fired.clone());
    let store = vault_tests::Intercept::new(
        mem.clone(),
        |_| None,
        move |h| {
            if h.kind() == FileType::Index && !flag.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                hook(&open(inner.clone()));
            }
        },
    );
    (Arc::new(store), fired)
}

#[test]
fn a_backup_that_starts_during_a_prune_defers_the_deletion() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let days = six_days(&repo);
    repo.remove_snapshots(&[days[0].0]).unwrap();
    // A backup announces itself after prune listed the leases, having read
    // the old index (so it may reuse blobs prune is about to drop).
    let (late, fired) = at_first_index(&mem, |repo| drop(locks::lease(repo, "late-host")));
    let r = open(late).prune(&opts(), &NoProgress).unwrap();
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        r.deferred > 0 && r.deleted_now == 0,
        "a lease that appeared before the deletion defers it: {r:?}"
    );
}

/// Six days; day 1 forgotten and pruned while a backup of another host runs:
/// the deletion is deferred. Returns the days and that backup's lease.
fn deferred_under_a_lease(repo: &Repository) -> (Vec<(SnapshotId, Vec<u8>)>, String) {
    let days = six_days(repo);
    let lease = locks::lease(repo, "other-host");
    repo.remove_snapshots(&[days[0].0]).unwrap();
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(r.deferred > 0, "{r:?}");
    (days, lease)
}

#[test]
fn a_refreshed_lease_still_holds_back_a_deferred_deletion() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let (_, lease) = deferred_under_a_lease(&repo);
    // The backup refreshes its lease (a new object, a new name).
    let lease = locks::refresh(&repo, &lease, "other-host");
    let r = open(mem.clone()).prune(&opts(), &NoProgress).unwrap();
    assert_eq!(
        r.deleted_pending, 0,
        "the same backup is still running: {r:?}"
    );
    repo.release(&lease).unwrap();
    let r = open(mem.clone()).prune(&opts(), &NoProgress).unwrap();
    assert!(r.deleted_pending > 0, "{r:?}");
}

#[test]
fn prune_is_exclusive_and_stale_locks_expire() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let me = vault_core::lock::this_host();
    let live = locks::prune_lock(
        &repo,
        &LockInfo::new("prune", &me, Duration::from_secs(3600)),
    );
    match repo.prune(&opts(), &NoProgress) {
        Err(Error::Locked { holder }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // The loser withdrew its own lock object: only the holder's is left.
    let names: Vec<String> = repo.locks().unwrap().into_iter().map(|l| l.0).collect();
    assert_eq!(names, vec![live.clone()]);
    repo.release(&live).unwrap();
    // A lock left by a process of this machine that is gone is stale.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let mut stale = LockInfo::new("prune", &me, Duration::from_secs(3600));
    stale.pid = dead_pid;
    locks::prune_lock(&repo, &stale);
    // So is one whose holder stopped refreshing it, wherever it ran.
    let mut expired = LockInfo::new("prune", "elsewhere", Duration::from_secs(3600));
    expired.expires = "2026-01-01T00:00:00Z".into();
    locks::prune_lock(&repo, &expired);
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(
        r.stale_removed
            .iter()
            .any(|s| s.contains(&format!("pid {dead_pid} "))),
        "{r:?}"
    );
    assert!(
        r.stale_removed.iter().any(|s| s.contains("elsewhere")),
        "{r:?}"
    );
    assert!(repo.locks().unwrap().is_empty(), "prune released its lock");
}

#[test]
fn prune_killed_at_any_write_keeps_every_kept_snapshot() {
    let prune_all = PruneOptions {
        max_unused: 0.0,
        ..opts()
    };
    // Two workloads (forget the even days, or the odd ones); for each, a
    // prune killed at its 1st, 2nd, ... write.
    let mut trials = 0;
    for first_forgotten in [0usize, 1] {
        let workload = |repo: &Repository| days(repo, 12, 3 << 20);
        let forget = |repo: &Repository, d: &[(SnapshotId, Vec<u8>)]| {
            let ids: Vec<SnapshotId> = d
                .iter()
                .skip(first_forgotten)
                .step_by(2)
                .map(|x| x.0)
                .collect();
            repo.remove_snapshots(&ids).unwrap();
        };
        let probe = new_repo();
        let d = workload(&open(probe.clone()));
        forget(&open(probe.clone()), &d);
        let counting = Arc::new(FaultyBackend::new(probe.clone(), FaultPlan::default()));
        open(counting.clone())
            .prune(&prune_all, &NoProgress)
            .unwrap();
        let writes = counting.writes();
        for n in 0..writes {
            let mem = new_repo();
            let days = workload(&open(mem.clone()));
            forget(&open(mem.clone()), &days);
            let dying: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
                mem.clone(),
                FaultPlan {
                    fail_writes_after: Some(n),
                    ..Default::default()
                },
            ));
            // Random blob-to-pack assignment varies the write count a little:
            // a prune that fit in `n` writes just succeeds, which is fine too.
            if open(dying).prune(&prune_all, &NoProgress).is_err() {
                trials += 1;
            }
            let repo = open(mem.clone());
            let report = repo.check(ReadData::All, &NoProgress).unwrap();
            assert!(
                report.is_ok(),
                "after a prune killed at write {n}: {:?}",
                report.problems
            );
            for (i, (id, data)) in days.iter().enumerate().skip(1 - first_forgotten).step_by(2) {
                assert!(dump(&repo, id) == *data, "write {n}, day {}", i + 1);
            }
            // Running prune again finishes the job (the killed prune's lock
            // belongs to this live process, so remove it as `vault unlock --remove-all` would).
            locks::remove_prune_locks(&repo);
            repo.prune(&prune_all, &NoProgress).unwrap();
            let repo = open(mem);
            assert!(
                repo.check(ReadData::All, &NoProgress).unwrap().is_ok(),
                "write {n}: after the second prune"
            );
            assert_eq!(
                repo.prune(
                    &PruneOptions {
                        dry_run: true,
                        ..opts()
                    },
                    &NoProgress
                )
                .unwrap()
                .bytes_freed,
                0
            );
        }
    }
    assert!(trials >= 20, "{trials} prunes were killed part-way");
}

#[test]
fn prune_failing_or_losing_answers_beside_a_running_backup_keeps_everything() {
    // A backup runs (its lease is live) and reuses day 1, which is forgotten:
    // prune must defer, record the deletion, and a later prune rescue day 1.
    // Each trial breaks the first prune at one write, three ways.
    let plans = |n: u64| {
        [
            FaultPlan {
                fail_writes_after: Some(n - 1),
                ..Default::default()
            },
            FaultPlan {
                fail_write: Some(n),
                ..Default::default()
            },
            FaultPlan {
                lose_write_ack: Some(n),
                ..Default::default()
            },
        ]
    };
    let setup = || {
        let mem = new_repo();
        let repo = open(mem.clone());
        let d = days(&repo, 5, 1 << 20);
        let lease = locks::lease(&repo, "other-host");
        let day1 = repo.load_snapshot(&d[0].0).unwrap();
        repo.remove_snapshots(&[d[0].0, d[2].0]).unwrap();
        (mem, d, lease, day1)
    };
    let (probe, ..) = setup();
    let counting = Arc::new(FaultyBackend::new(probe, FaultPlan::default()));
    let r = open(counting.clone()).prune(&opts(), &NoProgress).unwrap();
    assert!(r.deferred > 0, "{r:?}");
    let writes = counting.writes();
    let mut broken = 0;
    for n in 1..=writes {
        for plan in plans(n) {
            let at = format!("write {n} of {plan:?}");
            let (mem, d, lease, day1) = setup();
            let faulty: Arc<dyn Backend> = Arc::new(FaultyBackend::new(mem.clone(), plan));
            if open(faulty).prune(&opts(), &NoProgress).is_err() {
                broken += 1;
            }
            let repo = open(mem.clone());
            let report = repo.check(ReadData::All, &NoProgress).unwrap();
            assert!(report.is_ok(), "{at}: {:?}", report.problems);
            for i in [1, 3, 4] {
                assert!(dump(&repo, &d[i].0) == d[i].1, "{at}: day {}", i + 1);
            }
            // The backup commits its reuse of day 1 and ends.
            let reused = repo.save_snapshot(&day1).unwrap();
            repo.release(&lease).unwrap();
            assert!(dump(&open(mem.clone()), &reused) == d[0].1, "{at}");
            locks::remove_prune_locks(&repo);
            let r = open(mem.clone()).prune(&opts(), &NoProgress).unwrap();
            let repo = open(mem.clone());
            let report = repo.check(ReadData::All, &NoProgress).unwrap();
            assert!(
                report.is_ok(),
                "{at}: after the next prune {r:?}: {:?}",
                report.problems
            );
            assert!(dump(&repo, &reused) == d[0].1, "{at}");
            for i in [1, 3, 4] {
                assert!(dump(&repo, &d[i].0) == d[i].1, "{at}: day {}", i + 1);
            }
            // Nothing is left for a third prune but what it may now delete.
            let again = repo.prune(&opts(), &NoProgress).unwrap();
            assert_eq!(again.deferred, 0, "{at}: {again:?}");
        }
    }
    assert!(broken as u64 >= writes, "only {broken} prunes were broken");
}

#[test]
fn a_due_deferred_deletion_is_carried_out_while_other_backups_commit() {
    let mem = new_repo();
    let repo = open(mem.clone());
    let (days, lease) = deferred_under_a_lease(&repo);
    repo.release(&lease).unwrap();
    // A busy fleet: another backup commits while the next prune runs. The
    // deferred deletion is due (its backup ended) and goes ahead anyway.
    repo.remove_snapshots(&[days[1].0]).unwrap();
    let (busy, fired) = at_first_index(&mem, |repo| {
        backup(repo, 20, &text_like(1 << 20, 99));
    });
    let r = open(busy).prune(&opts(), &NoProgress).unwrap();
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    assert!(r.deleted_pending > 0, "{r:?}");
    // This run's own deletions wait: a snapshot was committed meanwhile.
    assert!(r.deferred > 0, "{r:?}");
    let repo = open(mem.clone());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    for (id, data) in &days[2..] {
        assert!(dump(&repo, id) == *data);
    }
    assert_eq!(repo.list_snapshots().unwrap().len(), 5);
}

#[test]
fn prune_reclaims_what_racing_writers_stored_twice() {
    let mem = new_repo();
    let d = random_like(4 << 20, 71);
    let mut de = d.clone();
    de.extend_from_slice(&random_like(2 << 20, 72));
    // Writer B reads the index, then waits; writer A stores D meanwhile; B
    // goes on with D (which it believes new) followed by E: D twice.
    let (a, b) = (open(mem.clone()), open(mem.clone()));
    let (src, ready, go) = vault_tests::library::gated_stream(de.clone());
    let b_done = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let opts = vault_core::BackupOptions {
                time: "2026-11-02T03:00:00Z".into(),
                ..Default::default()
            };
            b.snapshot(src, &opts, &NoProgress).unwrap()
        });
        ready.recv().unwrap();
        backup(&a, 1, &d);
        go.send(()).unwrap();
        writer.join().unwrap()
    });
    assert!(
        b_done.snapshot.summary.bytes_added >= de.len() as u64,
        "B stored D again: {:?}",
        b_done.snapshot.summary
    );
    let twice = pack_bytes(&*mem);
    assert!(twice > (d.len() * 2) as u64);
    let repo = open(mem.clone());
    repo.prune(&opts(), &NoProgress).unwrap();
    let once = pack_bytes(&*mem);
    let slack = 128 << 10;
    assert!(
        once <= de.len() as u64 + de.len() as u64 / 100 + slack,
        "after prune {once} bytes of packs for {} bytes of data ({twice} before)",
        de.len()
    );
    let repo = open(mem.clone());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(dump(&repo, &b_done.id) == de);
    let (a_id, _) = repo
        .list_snapshots()
        .unwrap()
        .into_iter()
        .find(|(id, _)| *id != b_done.id)
        .unwrap();
    assert!(dump(&repo, &a_id) == d);
}
