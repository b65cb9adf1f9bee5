//! Deduplication and the parent-snapshot shortcut.

use vault_tests::text_like;

use super::repo_on;

both!(identical_data_stores_nothing_new, |store| {
    let h = repo_on(store, None);
    let src = h.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("f{i}")), text_like(300_000, i)).unwrap();
    }
    let first = h.snapshot(&[src.to_str().unwrap()]);
    assert!(first["bytes_added"].as_u64().unwrap() >= 20 * 300_000);
    let before = h.pack_bytes();
    let second = h.snapshot(&[src.to_str().unwrap()]);
    // No data is new. Trees may be: the scratch directory above `src` (part
    // of the recorded absolute path) can change its mtime between runs.
    assert!(second["bytes_added"].as_u64().unwrap() < 2000, "{second}");
    assert!(second["blobs_added"].as_u64().unwrap() <= 3, "{second}");
    assert_eq!(
        second["files_unchanged"], 20,
        "unchanged files are not re-read: {second}"
    );
    assert_eq!(second["bytes_read"], 0);
    assert!(h.pack_bytes() < before + 4096, "no new data packs");
    let forced = h.snapshot(&["--force", src.to_str().unwrap()]);
    assert_eq!(
        forced["bytes_read"],
        20 * 300_000,
        "--force re-reads: {forced}"
    );
    assert!(forced["bytes_added"].as_u64().unwrap() < 2000, "{forced}");

    // The same bytes as a stream also dedup against the files' chunks.
    let data = text_like(300_000, 3);
    let s = h.snapshot_stdin("again", &data, &[]);
    assert_eq!(s["blobs_added"], 1, "only the new root tree: {s}");
});

both!(localized_change_stores_only_nearby_chunks, |store| {
    let h = repo_on(store, None);
    let mut data = text_like(40 << 20, 11);
    let first = h.snapshot_stdin("db.sql", &data, &[]);
    assert!(first["bytes_added"].as_u64().unwrap() >= 40 << 20);
    data[20 << 20..(20 << 20) + 100].copy_from_slice(&[b'X'; 100]);
    let second = h.snapshot_stdin("db.sql", &data, &[]);
    let added = second["bytes_added"].as_u64().unwrap();
    // One edit touches one or two chunks (at most 4 MiB each), plus the tree.
    assert!(added < 8 << 20, "a 100-byte edit added {added} bytes");
    assert_eq!(h.dump("latest", "db.sql"), data);
});

both!(
    a_new_stream_under_the_same_name_restores_the_new_bytes,
    |store| {
        let h = repo_on(store, None);
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
);
