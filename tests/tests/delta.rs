//! Delta compression through the library: similar chunks are stored as
//! deltas, bases are always whole (depth 1), and a lost base is reported
//! against every file that needs it.

use std::collections::HashMap;
use std::sync::Arc;

use vault_core::check::ReadData;
use vault_core::pack::PackEntry;
use vault_core::{
    BackupOptions, BlobId, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, SnapshotId,
    Source,
};
use vault_store::{FileType, LocalDir};
use vault_tests::{mutate_lines, text_like};

const PW: &[u8] = b"pw";

fn init(dir: &std::path::Path, delta: bool) -> Repository {
    let init = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        chunker: vault_core::ChunkerParams::from_average(64 << 10).unwrap(),
        pack_size: 1 << 20,
        delta,
        ..Default::default()
    };
    let backend = Arc::new(LocalDir::new(dir.join("repo")));
    Repository::init(backend.clone(), PW, &init).unwrap();
    open(dir)
}

fn open(dir: &std::path::Path) -> Repository {
    Repository::open(
        Arc::new(LocalDir::new(dir.join("repo"))),
        PW,
        &OpenOptions::default(),
    )
    .unwrap()
}

fn backup(
    repo: &Repository,
    name: &str,
    data: &[u8],
    day: u32,
) -> (SnapshotId, vault_core::Summary) {
    let opts = BackupOptions {
        time: format!("2026-11-{day:02}T03:00:00Z"),
        ..Default::default()
    };
    let src = Source::Stream {
        name: name.into(),
        reader: Box::new(std::io::Cursor::new(data.to_vec())),
    };
    let r = repo.snapshot(src, &opts, &NoProgress).unwrap();
    (r.id, r.snapshot.summary)
}

fn dump(repo: &Repository, id: &SnapshotId, name: &str) -> Vec<u8> {
    let snap = repo.load_snapshot(id).unwrap();
    let mut out = Vec::new();
    repo.dump(&snap, name, &mut out, &NoProgress).unwrap();
    out
}

/// Every entry of every index object in the repository, with its pack.
fn index_entries(repo: &Repository) -> Vec<(vault_core::PackId, PackEntry)> {
    let mut out = Vec::new();
    for (name, _) in repo.backend().list(FileType::Index).unwrap() {
        let f = repo
            .load_index(&vault_core::IndexId::from_hex(&name).unwrap())
            .unwrap();
        for (pack, entries) in f.packs {
            out.extend(entries.into_iter().map(|e| (pack, e)));
        }
    }
    out
}

/// Every entry, by blob id (the last one seen of each).
fn all_entries(repo: &Repository) -> HashMap<BlobId, PackEntry> {
    index_entries(repo)
        .into_iter()
        .map(|(_, e)| (e.id, e))
        .collect()
}

/// The pack of every delta blob.
fn delta_packs(repo: &Repository) -> HashMap<BlobId, vault_core::PackId> {
    index_entries(repo)
        .into_iter()
        .filter(|(_, e)| e.base.is_some())
        .map(|(p, e)| (e.id, p))
        .collect()
}

/// Every delta in any index object has a whole copy of its base indexed
/// (the chain is one deep wherever the blobs moved); returns how many
/// delta entries there are.
fn assert_depth_one(repo: &Repository) -> usize {
    let entries = index_entries(repo);
    let whole: std::collections::HashSet<BlobId> = entries
        .iter()
        .filter(|(_, e)| e.base.is_none())
        .map(|(_, e)| e.id)
        .collect();
    let mut deltas = 0;
    for (_, e) in entries.iter().filter(|(_, e)| e.base.is_some()) {
        let base = e.base.unwrap();
        assert!(
            whole.contains(&base),
            "delta {} has no whole base {} indexed",
            e.id.to_hex(),
            base.to_hex()
        );
        deltas += 1;
    }
    deltas
}

#[test]
fn daily_dumps_store_deltas_of_depth_one() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    let mut day = text_like(3 << 20, 1);
    let mut stored = Vec::new();
    let mut snaps = Vec::new();
    for d in 1..=4u32 {
        let (id, s) = backup(&repo, "db.sql", &day, d);
        stored.push(s.bytes_stored);
        snaps.push((id, day.clone()));
        if d > 1 {
            assert!(s.blobs_delta > 0, "day {d}: no delta ({s:?})");
        }
        day = mutate_lines(&day, 2, u64::from(d));
    }
    // Deltas against a base grow as days pass; a chunk whose delta passes a
    // quarter of its size is stored whole again (a fresh base).
    for d in 1..4 {
        assert!(
            stored[d] * 3 < stored[0],
            "day {} stored {} bytes, day 1 {}",
            d + 1,
            stored[d],
            stored[0]
        );
    }
    let entries = all_entries(&repo);
    let deltas: Vec<&PackEntry> = entries.values().filter(|e| e.base.is_some()).collect();
    assert!(!deltas.is_empty());
    for e in &deltas {
        let base = entries
            .get(&e.base.unwrap())
            .expect("every base is indexed");
        assert!(
            base.base.is_none(),
            "a base is itself a delta: chain deeper than 1"
        );
    }
    let fresh = open(dir.path());
    for (id, data) in &snaps {
        assert!(dump(&fresh, id, "db.sql") == *data);
    }
    let report = fresh.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn delta_compression_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), false);
    assert!(!repo.config().delta);
    let day1 = text_like(1 << 20, 2);
    backup(&repo, "db.sql", &day1, 1);
    let (_, s) = backup(&repo, "db.sql", &mutate_lines(&day1, 2, 9), 2);
    assert_eq!(s.blobs_delta, 0);
    assert!(all_entries(&repo).values().all(|e| e.base.is_none()));
}

#[test]
fn a_lost_base_is_reported_against_every_file_that_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    let (a1, b1) = (text_like(1 << 20, 3), text_like(1 << 20, 4));
    backup(&repo, "a.sql", &a1, 1);
    backup(&repo, "b.sql", &b1, 1);
    let day1_packs: Vec<String> = repo
        .backend()
        .list(FileType::Pack)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let (sa, _) = backup(&repo, "a.sql", &mutate_lines(&a1, 2, 5), 2);
    let (sb, _) = backup(&repo, "b.sql", &mutate_lines(&b1, 2, 6), 2);
    // The day-2 packs hold deltas whose bases are in day-1 packs. Damage one
    // byte in every day-1 data pack: check --read-data finds the packs, and
    // names the day-2 files that cannot be rebuilt.
    let root = dir.path().join("repo").join(FileType::Pack.dir());
    for name in &day1_packs {
        let path = root.join(&name[..2]).join(name);
        let mut b = std::fs::read(&path).unwrap();
        if b.len() > 50_000 {
            b[100] ^= 1;
            std::fs::write(&path, b).unwrap();
        }
    }
    let repo = open(dir.path());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    let affects: Vec<&String> = report.problems.iter().flat_map(|p| &p.affects).collect();
    for (snap, name) in [(sa, "a.sql"), (sb, "b.sql")] {
        let want = format!("{snap}:/{name}");
        assert!(
            affects.iter().any(|a| **a == want),
            "{want} not named: {:#?}",
            report.problems
        );
    }
    // Without reading data, a base that is gone altogether is found too.
    for name in &day1_packs {
        std::fs::remove_file(root.join(&name[..2]).join(name)).unwrap();
    }
    let report = repo.check(ReadData::None, &NoProgress).unwrap();
    let affects: Vec<&String> = report.problems.iter().flat_map(|p| &p.affects).collect();
    assert!(
        affects.iter().any(|a| **a == format!("{sa}:/a.sql")),
        "{:#?}",
        report.problems
    );
    assert!(
        affects.iter().any(|a| **a == format!("{sb}:/b.sql")),
        "{:#?}",
        report.problems
    );
    // And restoring a file whose base is gone is an error, never wrong bytes.
    let snap = repo.load_snapshot(&sa).unwrap();
    let err = repo
        .dump(&snap, "a.sql", &mut Vec::new(), &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("pack"), "{err}");
    // repair snapshots leaves those files out, though their own packs are
    // there: a delta without its base is lost.
    let r = repo.repair_snapshots(false, true, &NoProgress).unwrap();
    for (snap, name) in [(sa, "a.sql"), (sb, "b.sql")] {
        let lost = r
            .repaired
            .iter()
            .find(|(old, _, _)| *old == snap)
            .map(|(_, _, lost)| lost.clone());
        assert_eq!(lost, Some(vec![format!("/{name}")]), "{r:?}");
    }
}

#[test]
fn deltas_survive_repack_copy_and_repair_byte_exact_and_one_deep() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    let day1 = text_like(3 << 20, 21);
    let day2 = mutate_lines(&day1, 2, 22);
    backup(&repo, "db.sql", &day1, 1);
    // Day 2 and then new random data in one stream: the packs around the
    // seam hold deltas beside chunks only this snapshot uses.
    let mut day2_more = day2.clone();
    day2_more.extend_from_slice(&vault_tests::random_like(3 << 20, 23));
    let (both, s) = backup(&repo, "db.sql", &day2_more, 2);
    assert!(s.blobs_delta > 0, "{s:?}");
    let (d2, _) = backup(&repo, "db.sql", &day2, 3);
    let before = delta_packs(&repo);
    repo.remove_snapshots(&[both]).unwrap();
    let r = repo
        .prune(
            &vault_core::prune::PruneOptions {
                max_unused: 0.0,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap();
    assert!(!r.repack.is_empty(), "{r:?}");
    let repo = open(dir.path());
    let after = delta_packs(&repo);
    let moved = after
        .iter()
        .filter(|(id, pack)| before.get(id).is_some_and(|p| p != *pack))
        .count();
    assert!(moved > 0, "repacking moved delta blobs, still deltas");
    assert!(assert_depth_one(&repo) > 0);
    assert!(dump(&repo, &d2, "db.sql") == day2);
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    // Copied into another repository: rebuilt, re-identified, stored as
    // that repository's own deltas, one deep.
    let other_dir = tempfile::tempdir().unwrap();
    let other = init(other_dir.path(), true);
    let copied = other
        .copy_from(&repo, &repo.list_snapshots().unwrap(), &NoProgress)
        .unwrap();
    assert_eq!(copied.copied.len(), 2);
    let other = open(other_dir.path());
    assert!(assert_depth_one(&other) > 0, "the target made deltas");
    for (from, to) in &copied.copied {
        let name = "db.sql";
        assert!(dump(&other, to, name) == dump(&repo, from, name));
    }
    assert!(other.check(ReadData::All, &NoProgress).unwrap().is_ok());

    // The index rebuilt from pack headers keeps every delta's base.
    repo.repair_index(&NoProgress).unwrap();
    let repo = open(dir.path());
    assert!(assert_depth_one(&repo) > 0);
    assert!(dump(&repo, &d2, "db.sql") == day2);
    assert!(repo.check(ReadData::All, &NoProgress).unwrap().is_ok());
}

#[test]
fn a_second_copy_whose_base_is_gone_does_not_condemn_the_copy_in_use() {
    use vault_tests::library::gated_stream;
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    let day1 = text_like(2 << 20, 31);
    let day2 = mutate_lines(&day1, 2, 32);
    let mut day2_more = day2.clone();
    day2_more.extend_from_slice(&vault_tests::random_like(2 << 20, 33));
    // W1 reads the index before day 1 exists, W2 after; both are held, then
    // W1 stores day 2 whole and W2 (not seeing W1's index) as deltas of
    // day 1, beside data only it has: day 2's chunks twice, in two forms.
    let (w1, w2) = (open(dir.path()), open(dir.path()));
    let opts = |day: u32| BackupOptions {
        time: format!("2026-11-{day:02}T03:00:00Z"),
        ..Default::default()
    };
    let (src1, ready1, go1) = gated_stream(day2.clone());
    let (src2, ready2, go2) = gated_stream(day2_more.clone());
    let (s1, s2) = std::thread::scope(|s| {
        let t1 = s.spawn(|| w1.snapshot(src1, &opts(2), &NoProgress).unwrap());
        ready1.recv().unwrap();
        let (d1, _) = backup(&repo, "db.sql", &day1, 1);
        let t2 = s.spawn(|| w2.snapshot(src2, &opts(3), &NoProgress).unwrap());
        ready2.recv().unwrap();
        go1.send(()).unwrap();
        let s1 = t1.join().unwrap();
        go2.send(()).unwrap();
        let s2 = t2.join().unwrap();
        repo.remove_snapshots(&[d1]).unwrap();
        (s1, s2)
    });
    assert_eq!(s1.snapshot.summary.blobs_delta, 0);
    assert!(
        s2.snapshot.summary.blobs_delta > 0,
        "{:?}",
        s2.snapshot.summary
    );
    // Day 1 goes: the indexed copies of day 2's chunks are whole, so its
    // bases are not kept, and nothing is repacked: W2's packs keep their
    // delta copies, whose base is gone.
    repo.prune(
        &vault_core::prune::PruneOptions {
            max_unused: 1.0,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let repo = open(dir.path());
    let report = repo.check(ReadData::All, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert!(
        report.info.iter().any(|i| i.contains("cannot be rebuilt")),
        "the dead copies are reported as information: {:?}",
        report.info
    );
    assert!(dump(&repo, &s1.id, "db.sql") == day2);
    assert!(dump(&repo, &s2.id, "db.sql") == day2_more);
}
