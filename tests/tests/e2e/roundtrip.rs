//! Byte-exact round trips through snapshot → dump/restore.

use std::os::unix::fs::PermissionsExt;

use vault_tests::{assert_same_tree, random_like, text_like};

use super::{repo, repo_on};

/// 64 KiB average: min 16 KiB, max 256 KiB.
const MIN: usize = 16 << 10;
const AVG: usize = 64 << 10;
const MAX: usize = 256 << 10;

fn sizes() -> Vec<usize> {
    vec![
        0,
        1,
        MIN - 1,
        MIN,
        MIN + 1,
        AVG - 1,
        AVG,
        AVG + 1,
        MAX - 1,
        MAX,
        MAX + 1,
        3 * MAX + 7,
    ]
}

both!(streams_of_every_boundary_size_round_trip, |store| {
    let h = repo_on(store, Some("64K"));
    for (i, size) in sizes().into_iter().enumerate() {
        let data = if i % 2 == 0 {
            random_like(size, i as u64)
        } else {
            text_like(size, i as u64)
        };
        let name = format!("s{size}.bin");
        let sum = h.snapshot_stdin(&name, &data, &[]);
        assert_eq!(sum["bytes_read"], size as u64, "{name}");
        let id = sum["snapshot_id"].as_str().unwrap().to_owned();
        assert_eq!(h.dump(&id[..8], &name), data, "dump of {name}");
    }
    assert_eq!(h.snapshots().len(), sizes().len());
});

both!(files_of_every_boundary_size_round_trip, |store| {
    let h = repo_on(store, Some("64K"));
    let src = h.join("src");
    std::fs::create_dir(&src).unwrap();
    for (i, size) in sizes().into_iter().enumerate() {
        std::fs::write(
            src.join(format!("f{size}")),
            text_like(size, i as u64 + 100),
        )
        .unwrap();
    }
    h.snapshot(&[src.to_str().unwrap()]);
    let target = h.join("restored");
    h.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    for size in sizes() {
        let p = format!("{}/f{size}", src.display());
        assert_eq!(h.dump("latest", &p).len(), size);
    }
});

#[test]
fn large_stream_round_trips() {
    let h = repo(None);
    let data = text_like(210 << 20, 7);
    let sum = h.snapshot_stdin("big.sql", &data, &["--tag", "big"]);
    assert_eq!(sum["bytes_read"], data.len() as u64);
    assert!(
        sum["bytes_stored"].as_u64().unwrap() < data.len() as u64 / 2,
        "text compresses: {sum}"
    );
    let out = h.dump("latest", "big.sql");
    assert!(out == data, "210 MB stream differs after dump");
    let target = h.join("r");
    h.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(std::fs::read(target.join("big.sql")).unwrap() == data);
}

both!(
    tree_with_thousands_of_files_symlinks_and_empty_dirs,
    |store| {
        let h = repo_on(store, Some("64K"));
        let src = h.join("tree");
        for d in 0..40 {
            let dir = src.join(format!("dir{d:02}/sub"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..60 {
                let size = (f * 997 + d * 31) % 20_000;
                std::fs::write(
                    dir.join(format!("file{f:03}.txt")),
                    text_like(size, (d * 100 + f) as u64),
                )
                .unwrap();
            }
            std::fs::write(src.join(format!("dir{d:02}/empty")), b"").unwrap();
        }
        std::fs::create_dir_all(src.join("empty/nested/deeper")).unwrap();
        {
            use std::os::unix::ffi::OsStrExt;
            let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9 \x01name.txt");
            std::fs::write(src.join(latin1), b"not UTF-8").unwrap();
        }
        std::fs::write(src.join("big.bin"), random_like(3 << 20, 1)).unwrap();
        std::os::unix::fs::symlink("dir00/sub/file001.txt", src.join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", src.join("dangling")).unwrap();
        std::fs::set_permissions(
            src.join("dir01/sub/file002.txt"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::set_permissions(src.join("dir02"), std::fs::Permissions::from_mode(0o750))
            .unwrap();

        let sum = h.snapshot(&[src.to_str().unwrap()]);
        assert_eq!(sum["files"], 40 * 61 + 2);
        let target = h.join("restored");
        h.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));

        let listing = String::from_utf8(h.ok(&["ls", "latest"])).unwrap();
        assert!(listing.contains("/tree/dir39/sub/file059.txt"), "{listing}");
        assert!(listing.contains("/tree/empty/nested/deeper"));

        let only = h.join("only");
        h.ok(&[
            "restore",
            "latest",
            "--target",
            only.to_str().unwrap(),
            "--include",
            "file001.txt",
        ]);
        let restored = vault_tests::dir_bytes(&only);
        assert!(restored > 0);
        assert!(
            !only
                .join(src.strip_prefix("/").unwrap())
                .join("big.bin")
                .exists(),
            "--include restored too much"
        );
        assert!(only
            .join(src.strip_prefix("/").unwrap())
            .join("dir05/sub/file001.txt")
            .exists());
    }
);
