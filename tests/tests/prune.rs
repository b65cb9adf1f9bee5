//! Prune through the library: what it frees, what it never touches, leases,
//! rescue of data a concurrent backup reused, and crashes at every write.

use std::sync::Arc;

use vault_core::check::ReadData;
use vault_core::lock::LockInfo;
use vault_core::prune::PruneOptions;
use vault_core::{
    BackupOptions, Error, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, SnapshotId,
    Source,
};
use vault_store::{Backend, FaultPlan, FaultyBackend, FileType, MemoryBackend};
use vault_tests::{random_like, text_like};

const PW: &[u8] = b"pw";

fn new_repo() -> Arc<MemoryBackend> {
    let mem = Arc::new(MemoryBackend::new());
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        chunker: vault_core::ChunkerParams::from_average(64 << 10).unwrap(),
        pack_size: 1 << 20,
        ..Default::default()
    };
    Repository::init(mem.clone(), PW, &opts).unwrap();
    mem
}

fn open(b: Arc<dyn Backend>) -> Repository {
    Repository::open(b, PW, &OpenOptions::default()).unwrap()
}

fn backup(repo: &Repository, day: u32, data: &[u8]) -> SnapshotId {
    let opts = BackupOptions {
        time: format!("2026-11-{day:02}T03:00:00Z"),
        hostname: "db1".into(),
        ..Default::default()
    };
    let src = Source::Stream {
        name: "db.sql".into(),
        reader: Box::new(std::io::Cursor::new(data.to_vec())),
    };
    repo.snapshot(src, &opts, &NoProgress).unwrap().id
}

fn dump(repo: &Repository, id: &SnapshotId) -> Vec<u8> {
    let s = repo.load_snapshot(id).unwrap();
    let mut out = Vec::new();
    repo.dump(&s, "db.sql", &mut out, &NoProgress).unwrap();
    out
}

fn opts() -> PruneOptions {
    PruneOptions {
        hostname: "test-host".into(),
        ..Default::default()
    }
}

fn pack_bytes(b: &dyn Backend) -> u64 {
    b.list(FileType::Pack).unwrap().iter().map(|(_, s)| s).sum()
}

/// Six days of distinct data; returns (id, data) per day.
fn six_days(repo: &Repository) -> Vec<(SnapshotId, Vec<u8>)> {
    (1..=6)
        .map(|d| {
            let data = if d % 2 == 0 {
                text_like(1 << 20, d.into())
            } else {
                random_like(1 << 20, d.into())
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
    let lease = repo.take_lease("other-host").unwrap();
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
fn prune_is_exclusive_and_stale_locks_expire() {
    let mem = new_repo();
    let repo = open(mem.clone());
    repo.lock_prune("test-host").unwrap();
    match repo.prune(&opts(), &NoProgress) {
        Err(Error::Locked { holder }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    repo.release("prune").unwrap();
    // A lock left by a process of this host that is gone is stale.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let mut stale = LockInfo::new("prune", "test-host", 3600);
    stale.pid = dead_pid;
    repo.write_lock("prune", &stale).unwrap();
    let r = repo.prune(&opts(), &NoProgress).unwrap();
    assert!(
        r.stale_removed
            .iter()
            .any(|s| s.contains(&dead_pid.to_string())),
        "{r:?}"
    );
}

#[test]
fn prune_killed_at_any_write_keeps_every_kept_snapshot() {
    // Count the writes of one whole prune.
    let probe = new_repo();
    let days_probe = six_days(&open(probe.clone()));
    let repo = open(probe.clone());
    repo.remove_snapshots(&[days_probe[0].0, days_probe[2].0, days_probe[4].0])
        .unwrap();
    let counting = Arc::new(FaultyBackend::new(probe.clone(), FaultPlan::default()));
    open(counting.clone())
        .prune(
            &PruneOptions {
                max_unused: 0.0,
                ..opts()
            },
            &NoProgress,
        )
        .unwrap();
    let writes = counting.writes();
    assert!(writes >= 5, "{writes}");
    let mut trials = 0;
    for n in 0..writes {
        let mem = new_repo();
        let days = six_days(&open(mem.clone()));
        open(mem.clone())
            .remove_snapshots(&[days[0].0, days[2].0, days[4].0])
            .unwrap();
        let dying: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
            mem.clone(),
            FaultPlan {
                fail_writes_after: Some(n),
                ..Default::default()
            },
        ));
        // Random blob-to-pack assignment varies the write count a little: a
        // prune that fit in `n` writes just succeeds, which must be fine too.
        if open(dying)
            .prune(
                &PruneOptions {
                    max_unused: 0.0,
                    ..opts()
                },
                &NoProgress,
            )
            .is_err()
        {
            trials += 1;
        }
        let repo = open(mem.clone());
        let report = repo.check(ReadData::All, &NoProgress).unwrap();
        assert!(
            report.is_ok(),
            "after a prune killed at write {n}: {:?}",
            report.problems
        );
        for i in [1, 3, 5] {
            assert!(
                dump(&repo, &days[i].0) == days[i].1,
                "write {n}, day {}",
                i + 1
            );
        }
        // Running prune again finishes the job (the dead prune's lock is
        // this process's, so remove it as `vault unlock` would).
        repo.release("prune").unwrap();
        repo.prune(
            &PruneOptions {
                max_unused: 0.0,
                ..opts()
            },
            &NoProgress,
        )
        .unwrap();
        let repo = open(mem);
        assert!(
            repo.check(ReadData::All, &NoProgress).unwrap().is_ok(),
            "write {n}: after the second prune"
        );
        assert!(
            repo.prune(
                &PruneOptions {
                    dry_run: true,
                    ..opts()
                },
                &NoProgress
            )
            .unwrap()
            .bytes_freed
                == 0
        );
    }
    assert!(trials >= 5);
}
