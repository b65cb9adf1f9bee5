//! The engine through a fault-injecting store: transient faults are retried
//! and change nothing; a store that dies, fails once or loses the answer at
//! any write leaves a repository that checks clean, every committed snapshot
//! restorable, and nothing partial committed.

use std::sync::Arc;
use std::time::Duration;

use vault_core::{
    BackupOptions, Error, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, Source,
};
use vault_store::{Backend, FaultPlan, FaultyBackend, MemoryBackend, RetryBackend};
use vault_tests::text_like;

const PW: &[u8] = b"pw";

fn init(backend: Arc<dyn Backend>) {
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        chunker: vault_core::ChunkerParams::from_average(64 << 10).unwrap(),
        pack_size: 1 << 20,
        ..Default::default()
    };
    Repository::init(backend, PW, &opts).unwrap();
}

fn open(backend: Arc<dyn Backend>) -> vault_core::Result<Repository> {
    Repository::open(backend, PW, &OpenOptions::default())
}

fn backup(
    repo: &Repository,
    name: &str,
    data: &[u8],
) -> vault_core::Result<vault_core::BackupResult> {
    let opts = BackupOptions {
        time: "2026-11-23T10:00:00Z".into(),
        hostname: "h".into(),
        upload_threads: 2,
        ..Default::default()
    };
    repo.snapshot(
        Source::Stream {
            name: name.into(),
            reader: Box::new(std::io::Cursor::new(data.to_vec())),
        },
        &opts,
        &NoProgress,
    )
}

fn dump(repo: &Repository, id: &vault_core::SnapshotId, name: &str) -> Vec<u8> {
    let snap = repo.load_snapshot(id).unwrap();
    let mut out = Vec::new();
    repo.dump(&snap, name, &mut out, &NoProgress).unwrap();
    out
}

#[test]
fn transient_faults_are_retried_and_the_restore_is_byte_exact() {
    let mem = Arc::new(MemoryBackend::new());
    init(mem.clone());
    let flaky: Arc<dyn Backend> = Arc::new(RetryBackend::with_policy(
        FaultyBackend::new(
            mem.clone(),
            FaultPlan {
                transient_every: Some(3),
                latency: Some(Duration::from_micros(200)),
                ..Default::default()
            },
        ),
        5,
        Duration::from_millis(1),
        Duration::from_millis(5),
    ));
    let repo = open(flaky).unwrap();
    let data = text_like(6 << 20, 1);
    let done = backup(&repo, "db.sql", &data).unwrap();
    assert!(dump(&repo, &done.id, "db.sql") == data);
    // A fresh open of the healthy store sees the same.
    let clean = open(mem).unwrap();
    assert!(dump(&clean, &done.id, "db.sql") == data);
}

/// How a store misbehaves at one write of a backup.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The write and every later one fail (a crash, a dead disk or network).
    DiesAt,
    /// Only this write fails; the store works again after it.
    FailsOnly,
    /// The write lands, but the backup hears it failed (a lost answer).
    LosesAckOf,
}

impl Fault {
    fn plan(self, n: u64) -> FaultPlan {
        match self {
            Fault::DiesAt => FaultPlan {
                fail_writes_after: Some(n - 1),
                ..Default::default()
            },
            Fault::FailsOnly => FaultPlan {
                fail_write: Some(n),
                ..Default::default()
            },
            Fault::LosesAckOf => FaultPlan {
                lose_write_ack: Some(n),
                ..Default::default()
            },
        }
    }
}

#[test]
fn a_store_failing_or_losing_the_answer_at_any_write_loses_nothing_committed() {
    use vault_core::check::ReadData;
    // How many writes does a whole second backup take?
    let probe_mem = Arc::new(MemoryBackend::new());
    init(probe_mem.clone());
    let day1 = text_like(3 << 20, 1);
    let mut day2 = day1.clone();
    day2.extend_from_slice(&text_like(2 << 20, 2));
    backup(&open(probe_mem.clone()).unwrap(), "db.sql", &day1).unwrap();
    let counting = Arc::new(FaultyBackend::new(probe_mem, FaultPlan::default()));
    backup(&open(counting.clone()).unwrap(), "db.sql", &day2).unwrap();
    let writes = counting.writes();
    assert!(writes >= 4, "a backup makes several writes ({writes})");

    let mut failed = 0;
    for fault in [Fault::DiesAt, Fault::FailsOnly, Fault::LosesAckOf] {
        for n in 1..=writes {
            let at = format!("{fault:?} write {n}");
            let mem = Arc::new(MemoryBackend::new());
            init(mem.clone());
            let first = backup(&open(mem.clone()).unwrap(), "db.sql", &day1).unwrap();
            let faulty: Arc<dyn Backend> = Arc::new(FaultyBackend::new(mem.clone(), fault.plan(n)));
            let result = backup(&open(faulty).unwrap(), "db.sql", &day2);
            let repo = open(mem.clone()).unwrap();
            // Whatever happened, the repository checks clean, down to the data.
            let report = repo.check(ReadData::All, &NoProgress).unwrap();
            assert!(report.is_ok(), "{at}: {:?}", report.problems);
            // Every snapshot there is restores: the first, and the second
            // only if it was committed whole.
            let snaps = repo.list_snapshots().unwrap();
            for (id, _) in &snaps {
                let got = dump(&repo, id, "db.sql");
                assert!(got == day1 || got == day2, "{at}: snapshot {id}");
            }
            assert!(dump(&repo, &first.id, "db.sql") == day1, "{at}");
            match result {
                // Random blob-to-pack assignment varies the number of writes
                // a little; a backup whose fault hit only its lease's release
                // succeeds, and must restore.
                Ok(done) => assert!(dump(&repo, &done.id, "db.sql") == day2, "{at}"),
                Err(err) => {
                    failed += 1;
                    assert!(
                        err.to_string().contains("injected"),
                        "{at}: the cause is named: {err}"
                    );
                    // A lost answer to the snapshot write itself commits it
                    // (the backup cannot know); anything else commits nothing.
                    assert!(snaps.len() <= 2, "{at}");
                }
            }
            // And the next backup on a healthy store succeeds and restores.
            let again = backup(&repo, "db.sql", &day2).unwrap();
            assert!(
                dump(&open(mem).unwrap(), &again.id, "db.sql") == day2,
                "{at}"
            );
        }
    }
    assert!(
        failed as u64 >= 2 * writes,
        "only {failed} backups were cut short"
    );
}

#[test]
fn lost_answers_are_retried_into_success() {
    // Behind the retry layer, a write whose answer was lost is retried,
    // finds its object present and goes on: every such backup commits.
    let probe = Arc::new(MemoryBackend::new());
    init(probe.clone());
    let data = text_like(4 << 20, 7);
    let counting = Arc::new(FaultyBackend::new(probe, FaultPlan::default()));
    backup(&open(counting.clone()).unwrap(), "db.sql", &data).unwrap();
    for n in 1..=counting.writes() {
        let mem = Arc::new(MemoryBackend::new());
        init(mem.clone());
        let retried: Arc<dyn Backend> = Arc::new(RetryBackend::with_policy(
            FaultyBackend::new(mem.clone(), Fault::LosesAckOf.plan(n)),
            3,
            Duration::from_millis(1),
            Duration::from_millis(2),
        ));
        let done = backup(&open(retried).unwrap(), "db.sql", &data)
            .unwrap_or_else(|e| panic!("write {n}: {e}"));
        let repo = open(mem).unwrap();
        assert!(dump(&repo, &done.id, "db.sql") == data, "write {n}");
        assert_eq!(repo.list_snapshots().unwrap().len(), 1, "write {n}");
    }
}

#[test]
fn a_full_disk_fails_the_backup_clearly_and_loses_nothing() {
    let mem = Arc::new(MemoryBackend::new());
    init(mem.clone());
    // A "disk" with room for day 1 but not for day 2 (incompressible data).
    let full: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        mem.clone(),
        FaultPlan {
            disk_bytes: Some(6 << 20),
            ..Default::default()
        },
    ));
    let repo = open(full).unwrap();
    let day1 = vault_tests::random_like(2 << 20, 1);
    let d1 = backup(&repo, "day1", &day1).unwrap();
    let err = backup(&repo, "day2", &vault_tests::random_like(8 << 20, 2)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no space left on device"), "{msg}");
    assert!(
        matches!(&err, Error::Store(e) if e.kind() == vault_store::StoreErrorKind::NoSpace)
            || msg.contains("backup aborted"),
        "{err:?}"
    );
    // Nothing partial was committed, and day 1 is intact.
    let clean = open(mem.clone()).unwrap();
    assert_eq!(clean.list_snapshots().unwrap().len(), 1);
    assert!(dump(&clean, &d1.id, "day1") == day1);
    let report = clean
        .check(vault_core::check::ReadData::All, &NoProgress)
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // Once there is room again the backup goes through.
    let day2 = vault_tests::random_like(8 << 20, 2);
    let d2 = backup(&clean, "day2", &day2).unwrap();
    assert!(dump(&clean, &d2.id, "day2") == day2);
}

/// Counts what the engine reports through the progress trait.
#[derive(Default)]
struct Recorder {
    total: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    files: std::sync::atomic::AtomicU64,
    added: std::sync::atomic::AtomicU64,
    stored: std::sync::atomic::AtomicU64,
}

impl vault_core::Progress for Recorder {
    fn total(&self, b: u64) {
        self.total.store(b, std::sync::atomic::Ordering::SeqCst);
    }
    fn file(&self, _: &std::path::Path) {
        self.files.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }
    fn added(&self, plain: u64, stored: u64) {
        self.added
            .fetch_add(plain, std::sync::atomic::Ordering::SeqCst);
        self.stored
            .fetch_add(stored, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn progress_events_add_up_to_the_summary() {
    use std::sync::atomic::Ordering::SeqCst;
    let mem = Arc::new(MemoryBackend::new());
    init(mem.clone());
    let repo = open(mem).unwrap();
    let data = text_like(5 << 20, 9);
    let rec = Recorder::default();
    let opts = BackupOptions {
        time: "2026-11-23T10:00:00Z".into(),
        hostname: "h".into(),
        ..Default::default()
    };
    let src = Source::Stream {
        name: "db.sql".into(),
        reader: Box::new(std::io::Cursor::new(data.clone())),
    };
    let done = repo.snapshot(src, &opts, &rec).unwrap();
    let s = &done.snapshot.summary;
    assert_eq!(rec.bytes.load(SeqCst), data.len() as u64, "bytes read");
    assert_eq!(rec.added.load(SeqCst), s.bytes_added);
    assert!(rec.stored.load(SeqCst) > 0 && rec.stored.load(SeqCst) <= s.bytes_stored);
    // Restoring reports the bytes written and the total up front.
    let rec = Recorder::default();
    let mut out = Vec::new();
    repo.dump(&done.snapshot, "db.sql", &mut out, &rec).unwrap();
    assert_eq!(rec.bytes.load(SeqCst), data.len() as u64);
    assert_eq!(rec.total.load(SeqCst), data.len() as u64);
    assert!(out == data);
    // So does a restore into a directory, file by file.
    let rec = Recorder::default();
    let dir = tempfile::tempdir().unwrap();
    repo.restore(
        &done.snapshot,
        dir.path(),
        &vault_core::RestoreOptions::default(),
        &rec,
    )
    .unwrap();
    assert_eq!(
        (
            rec.total.load(SeqCst),
            rec.bytes.load(SeqCst),
            rec.files.load(SeqCst)
        ),
        (data.len() as u64, data.len() as u64, 1)
    );
    // check --read-data: the total is the packs it will read, and it reads them.
    let rec = Recorder::default();
    let report = repo.check(vault_core::check::ReadData::All, &rec).unwrap();
    assert!(report.is_ok());
    assert_eq!(rec.total.load(SeqCst), report.bytes_read);
    assert_eq!(rec.bytes.load(SeqCst), report.bytes_read);
    assert!(report.bytes_read > 0);
    // copy: the bytes of the snapshots it copies, and the files.
    let target = Arc::new(MemoryBackend::new());
    init(target.clone());
    let target = open(target).unwrap();
    let rec = Recorder::default();
    let snaps = repo.list_snapshots().unwrap();
    let copied = target.copy_from(&repo, &snaps, &rec).unwrap();
    assert_eq!(copied.copied.len(), 1);
    assert_eq!(
        (
            rec.total.load(SeqCst),
            rec.bytes.load(SeqCst),
            rec.files.load(SeqCst)
        ),
        (data.len() as u64, data.len() as u64, 1)
    );
    assert!(rec.added.load(SeqCst) >= data.len() as u64 / 2);
    // prune: what it repacks. One stream of X then Y fills packs that mix
    // both near the seam; once only a snapshot of X is kept, those packs
    // are partly used and repacked.
    let x = vault_tests::random_like(3 << 20, 10);
    let mut xy = x.clone();
    xy.extend_from_slice(&vault_tests::random_like(3 << 20, 11));
    let both = backup(&repo, "xy.bin", &xy).unwrap();
    backup(&repo, "xy.bin", &x).unwrap();
    repo.remove_snapshots(&[both.id]).unwrap();
    let rec = Recorder::default();
    let r = repo
        .prune(
            &vault_core::prune::PruneOptions {
                max_unused: 0.0,
                ..Default::default()
            },
            &rec,
        )
        .unwrap();
    assert!(!r.repack.is_empty(), "{r:?}");
    assert!(rec.total.load(SeqCst) > 0, "{r:?}");
    assert_eq!(rec.bytes.load(SeqCst), rec.total.load(SeqCst), "{r:?}");
}
