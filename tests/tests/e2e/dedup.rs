//! Deduplication and the parent-snapshot shortcut.

use vault_tests::{dir_bytes, text_like};

use super::repo;

fn packs(h: &vault_tests::Harness) -> u64 {
    dir_bytes(&std::path::Path::new(&h.repo).join("data"))
}

#[test]
fn identical_data_stores_nothing_new() {
    let h = repo(None);
    let src = h.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("f{i}")), text_like(300_000, i)).unwrap();
    }
    let first = h.snapshot(&[src.to_str().unwrap()]);
    assert!(first["bytes_added"].as_u64().unwrap() >= 20 * 300_000);
    let before = packs(&h);
    let second = h.snapshot(&[src.to_str().unwrap()]);
    assert_eq!(second["bytes_added"], 0, "{second}");
    assert_eq!(
        second["files_unchanged"], 20,
        "unchanged files are not re-read: {second}"
    );
    assert_eq!(second["bytes_read"], 0);
    assert_eq!(packs(&h), before, "no new packs");
    let forced = h.snapshot(&["--force", src.to_str().unwrap()]);
    assert_eq!(
        forced["bytes_read"],
        20 * 300_000,
        "--force re-reads: {forced}"
    );
    assert_eq!(forced["bytes_added"], 0, "{forced}");

    // The same bytes as a stream also dedup against the files' chunks.
    let data = text_like(300_000, 3);
    let s = h.snapshot_stdin("again", &data, &[]);
    assert_eq!(s["blobs_added"], 1, "only the new root tree: {s}");
}

#[test]
fn localized_change_stores_only_nearby_chunks() {
    let h = repo(None);
    let mut data = text_like(40 << 20, 11);
    let first = h.snapshot_stdin("db.sql", &data, &[]);
    assert!(first["bytes_added"].as_u64().unwrap() >= 40 << 20);
    data[20 << 20..(20 << 20) + 100].copy_from_slice(&[b'X'; 100]);
    let second = h.snapshot_stdin("db.sql", &data, &[]);
    let added = second["bytes_added"].as_u64().unwrap();
    // One edit touches one or two chunks (at most 4 MiB each), plus the tree.
    assert!(added < 8 << 20, "a 100-byte edit added {added} bytes");
    assert_eq!(h.dump("latest", "db.sql"), data);
}

#[test]
fn a_new_stream_under_the_same_name_restores_the_new_bytes() {
    let h = repo(None);
    let old = text_like(5 << 20, 1);
    let new = text_like(5 << 20, 2);
    let a = h.snapshot_stdin("dump.rdb", &old, &[]);
    let b = h.snapshot_stdin("dump.rdb", &new, &[]);
    assert!(
        b["bytes_read"] == new.len() as u64,
        "the stream was read again: {b}"
    );
    assert!(h.dump("latest", "dump.rdb") == new);
    assert!(h.dump(&a["snapshot_id"].as_str().unwrap()[..8], "dump.rdb") == old);
    // The same through --command.
    let f = h.join("payload");
    std::fs::write(&f, &old).unwrap();
    h.snapshot(&[
        "--command",
        &format!("cat {}", f.display()),
        "--stdin-name",
        "dump.rdb",
    ]);
    std::fs::write(&f, &new).unwrap();
    h.snapshot(&[
        "--command",
        &format!("cat {}", f.display()),
        "--stdin-name",
        "dump.rdb",
    ]);
    assert!(h.dump("latest", "dump.rdb") == new);
}
