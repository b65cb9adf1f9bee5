//! Damage of every kind of object: check finds it and names what it affects,
//! restore never returns wrong bytes as success, repair recovers what can be
//! recovered, and nothing panics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vault_core::check::ReadData;
use vault_core::{
    BackupOptions, Error, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, SnapshotId,
    Source,
};
use vault_store::{Backend, LocalDir};
use vault_tests::{random_like, text_like};

const PW: &[u8] = b"pw";

struct Fixture {
    dir: tempfile::TempDir,
    /// (snapshot, file name, content)
    snaps: Vec<(SnapshotId, String, Vec<u8>)>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let init = InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            chunker: vault_core::ChunkerParams::from_average(64 << 10).unwrap(),
            pack_size: 1 << 20,
            ..Default::default()
        };
        Repository::init(Arc::new(LocalDir::new(dir.path().join("repo"))), PW, &init).unwrap();
        let mut f = Fixture {
            dir,
            snaps: Vec::new(),
        };
        let repo = f.open().unwrap();
        for i in 0..4u64 {
            let data = if i % 2 == 0 {
                random_like(700_000, i)
            } else {
                text_like(700_000, i)
            };
            let name = format!("file{i}");
            let opts = BackupOptions {
                time: format!("2026-11-0{}T00:00:00Z", i + 1),
                ..Default::default()
            };
            let src = Source::Stream {
                name: name.clone(),
                reader: Box::new(std::io::Cursor::new(data.clone())),
            };
            let id = repo.snapshot(src, &opts, &NoProgress).unwrap().id;
            f.snaps.push((id, name, data));
        }
        f
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn open(&self) -> vault_core::Result<Repository> {
        Repository::open(
            Arc::new(LocalDir::new(self.root())),
            PW,
            &OpenOptions::default(),
        )
    }

    fn files(&self, sub: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        walk(&self.root().join(sub), &mut out);
        out.sort();
        out
    }

    /// The largest pack (a data pack).
    fn data_pack(&self) -> PathBuf {
        self.files("data")
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    }

    /// Restores every snapshot; returns for each whether it came back (bytes
    /// exact). A wrong byte returned as success fails the test.
    fn restores(&self) -> Vec<bool> {
        let repo = self.open().unwrap();
        self.snaps
            .iter()
            .map(|(id, name, data)| {
                let Ok(snap) = repo.load_snapshot(id) else {
                    return false;
                };
                let mut out = Vec::new();
                match repo.dump(&snap, name, &mut out, &NoProgress) {
                    Ok(_) => {
                        assert!(out == *data, "wrong bytes returned as success for {name}");
                        true
                    }
                    Err(_) => false,
                }
            })
            .collect()
    }

    fn check(&self, read: ReadData) -> vault_core::check::CheckReport {
        self.open().unwrap().check(read, &NoProgress).unwrap()
    }
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    let i = (at as usize).min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &Path, by: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len - by)
        .unwrap();
}

#[test]
fn intact_repository_checks_clean() {
    let f = Fixture::new();
    let r = f.check(ReadData::All);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(r.packs_read > 0);
    assert!(f.restores().iter().all(|ok| *ok));
}

#[test]
fn damaged_pack_data_is_found_by_read_data_and_never_restored() {
    let f = Fixture::new();
    let pack = f.data_pack();
    flip(&pack, 1000);
    assert!(
        f.check(ReadData::None).is_ok(),
        "structure alone cannot see inside blob data"
    );
    let r = f.check(ReadData::All);
    assert!(!r.is_ok());
    assert!(
        r.problems.iter().any(|p| p
            .object
            .contains(&pack.file_name().unwrap().to_string_lossy().to_string())),
        "{:?}",
        r.problems
    );
    let ok = f.restores();
    assert!(ok.iter().any(|o| !o), "the damaged file fails");
    assert!(ok.iter().any(|o| *o), "the others restore");
}

#[test]
fn truncated_and_deleted_packs_are_reported_with_the_files_they_affect() {
    let f = Fixture::new();
    let pack = f.data_pack();
    truncate(&pack, 10);
    let r = f.check(ReadData::None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("truncated") || p.message.contains("damaged")),
        "{:?}",
        r.problems
    );
    std::fs::remove_file(&pack).unwrap();
    let r = f.check(ReadData::None);
    assert!(
        r.problems.iter().any(|p| p.message.contains("missing")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.affects.iter().any(|a| a.contains("/file"))),
        "names files: {:?}",
        r.problems
    );
    // repair snapshots: the snapshots that lost a file get repaired copies without it.
    let repo = f.open().unwrap();
    let rep = repo.repair_snapshots(false, false, &NoProgress).unwrap();
    assert!(!rep.repaired.is_empty());
    for (_, new, lost) in &rep.repaired {
        assert!(!lost.is_empty());
        let s = repo.load_snapshot(new).unwrap();
        assert!(s.tags.contains(&"repaired".to_string()));
    }
    // Everything left in the repaired snapshots checks out; originals are still there.
    let after = f.check(ReadData::None);
    assert!(after.problems.iter().all(|p| !p.affects.iter().any(|a| rep
        .repaired
        .iter()
        .any(|(_, n, _)| a.starts_with(&n.to_string())))));
    assert_eq!(
        repo.list_snapshots().unwrap().len(),
        f.snaps.len() + rep.repaired.len()
    );
}

#[test]
fn lost_index_is_rebuilt_fully_from_pack_headers() {
    let f = Fixture::new();
    for p in f.files("index") {
        std::fs::remove_file(p).unwrap();
    }
    // Nothing is lost: every pack describes itself. Check says where the
    // chunks are and what to run; everything restores from the packs.
    let r = f.check(ReadData::None);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(
        r.info
            .iter()
            .any(|i| i.contains("no index object names") && i.contains("vault repair index")),
        "{:?}",
        r.info
    );
    assert!(f.restores().iter().all(|ok| *ok));
    let repo = f.open().unwrap();
    let rep = repo.repair_index(&NoProgress).unwrap();
    assert!(rep.damaged.is_empty() && rep.blobs > 0);
    let r = f.check(ReadData::All);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(
        !r.info.iter().any(|i| i.contains("no index object names")),
        "{:?}",
        r.info
    );
    assert!(f.restores().iter().all(|ok| *ok));
}

#[test]
fn damaged_index_objects_are_reported_and_repaired() {
    let f = Fixture::new();
    let idx = f.files("index");
    flip(&idx[0], 50);
    let r = f.check(ReadData::None);
    assert!(
        r.problems.iter().any(|p| p.object.starts_with("index")),
        "{:?}",
        r.problems
    );
    // The repository still opens (so check and repair can run); repair index
    // rebuilds what the damaged object described from the pack headers.
    let repo = f.open().unwrap();
    repo.repair_index(&NoProgress).unwrap();
    assert!(f.check(ReadData::All).is_ok());
    assert!(f.restores().iter().all(|ok| *ok));
    // Swapping two index objects (each under the other's name) is damage too.
    let f2 = Fixture::new();
    let idx2 = f2.files("index");
    if idx2.len() >= 2 {
        let (a, b) = (
            std::fs::read(&idx2[0]).unwrap(),
            std::fs::read(&idx2[1]).unwrap(),
        );
        std::fs::write(&idx2[0], &b).unwrap();
        std::fs::write(&idx2[1], &a).unwrap();
        let r = f2.check(ReadData::None);
        assert!(
            r.problems
                .iter()
                .filter(|p| p.object.starts_with("index"))
                .count()
                >= 2,
            "{:?}",
            r.problems
        );
    }
}

#[test]
fn damaged_swapped_and_duplicated_snapshots() {
    let f = Fixture::new();
    let snaps = f.files("snapshots");
    // Duplicate: the same bytes under another name are caught by the name check.
    let dup = snaps[0].with_file_name("ab".repeat(32));
    std::fs::copy(&snaps[0], &dup).unwrap();
    let r = f.check(ReadData::None);
    assert!(
        r.problems.iter().any(|p| p.message.contains("name")),
        "{:?}",
        r.problems
    );
    std::fs::remove_file(&dup).unwrap();
    // Swap two snapshots' contents.
    let (a, b) = (
        std::fs::read(&snaps[0]).unwrap(),
        std::fs::read(&snaps[1]).unwrap(),
    );
    std::fs::write(&snaps[0], &b).unwrap();
    std::fs::write(&snaps[1], &a).unwrap();
    let repo = f.open().unwrap();
    let (good, bad) = repo.list_snapshots_checked().unwrap();
    assert_eq!((good.len(), bad.len()), (f.snaps.len() - 2, 2));
    // Flip a byte in a third.
    flip(&snaps[2], 40);
    let r = f.check(ReadData::None);
    assert_eq!(
        r.problems
            .iter()
            .filter(|p| p.object.starts_with("snapshot"))
            .count(),
        3
    );
    // The one left intact still restores.
    assert_eq!(f.restores().iter().filter(|ok| **ok).count(), 1);
}

#[test]
fn damaged_tree_pack_names_the_snapshot() {
    let f = Fixture::new();
    let smallest = f
        .files("data")
        .into_iter()
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip(&smallest, 30);
    let r = f.check(ReadData::None);
    assert!(!r.is_ok());
    assert!(
        r.problems
            .iter()
            .any(|p| !p.affects.is_empty() || p.object.starts_with("pack")),
        "{:?}",
        r.problems
    );
    // Never wrong bytes (asserted inside `restores`), never a panic.
    f.restores();
}

#[test]
fn tampered_key_and_foreign_key_give_clear_errors() {
    let f = Fixture::new();
    let keys = f.files("keys");
    let original = std::fs::read(&keys[0]).unwrap();
    flip(&keys[0], original.len() as u64 / 2);
    match f.open() {
        Err(e @ Error::WrongPassword { .. }) | Err(e @ Error::Corrupt { .. }) => {
            assert!(e.to_string().contains("key"), "{e}")
        }
        other => panic!("tampered key: {other:?}"),
    }
    std::fs::write(&keys[0], &original).unwrap();
    // A key object from another repository (same password) does not open this config.
    let other = Fixture::new();
    let foreign = other.files("keys")[0].clone();
    std::fs::remove_file(&keys[0]).unwrap();
    std::fs::copy(
        &foreign,
        f.root().join("keys").join(foreign.file_name().unwrap()),
    )
    .unwrap();
    match f.open() {
        Err(e) => assert!(e.to_string().contains("another repository"), "{e}"),
        Ok(_) => panic!("a foreign key opened the repository"),
    }
    let backend: Arc<dyn Backend> = Arc::new(LocalDir::new(f.root()));
    assert!(backend.list(vault_store::FileType::Key).unwrap().len() == 1);
}

#[test]
fn damaged_config_is_a_clear_error() {
    let f = Fixture::new();
    flip(&f.root().join("config"), 30);
    match f.open() {
        Err(e @ Error::Corrupt { .. }) => assert!(e.to_string().contains("config"), "{e}"),
        other => panic!("a damaged config: {other:?}"),
    }
    truncate(&f.root().join("config"), 20);
    assert!(matches!(f.open(), Err(Error::Corrupt { .. })));
}

#[test]
fn swapped_and_duplicated_packs() {
    let f = Fixture::new();
    let mut packs = f.files("data");
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let (a, b) = (
        packs[packs.len() - 1].clone(),
        packs[packs.len() - 2].clone(),
    );
    // A duplicate under another name is unreferenced data: information, not damage.
    let name = a.file_name().unwrap().to_string_lossy().into_owned();
    let last = if name.ends_with('0') { '1' } else { '0' };
    let dup = a.with_file_name(format!("{}{last}", &name[..63]));
    assert_ne!(dup, a);
    std::fs::copy(&a, &dup).unwrap();
    let r = f.check(ReadData::All);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(
        r.info.iter().any(|i| i.contains("not referenced")),
        "{:?}",
        r.info
    );
    std::fs::remove_file(&dup).unwrap();
    // Two packs swapped: both are reported, and no wrong byte is restored.
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &db).unwrap();
    std::fs::write(&b, &da).unwrap();
    let r = f.check(ReadData::None);
    let named = |p: &PathBuf| {
        r.problems.iter().any(|x| {
            x.object
                .contains(&*p.file_name().unwrap().to_string_lossy())
        })
    };
    assert!(named(&a) && named(&b), "{:?}", r.problems);
    let _ = f.restores();
}
