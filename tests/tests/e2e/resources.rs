//! Resource failures on real filesystems, each in a mount namespace of its
//! own: a full disk under the repository (a small tmpfs, so the kernel
//! answers ENOSPC) and a repository on a read-only mount (EROFS).

use vault_tests::{random_like, text_like};

use super::harness;

fn read(h: &vault_tests::Harness, name: &str) -> String {
    std::fs::read_to_string(h.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_full_disk_fails_the_backup_clearly_loses_nothing_and_prune_recovers() {
    let h = harness();
    let small = h.join("small");
    std::fs::create_dir(&small).unwrap();
    let day1 = text_like(3 << 20, 1);
    std::fs::write(h.join("day1.sql"), &day1).unwrap();
    // Incompressible and larger than the disk.
    std::fs::write(h.join("big.bin"), random_like(40 << 20, 2)).unwrap();
    let script = r#"
        mount -t tmpfs -o size=24m vault-full "$SMALL"
        export VAULT_REPOSITORY="$SMALL/repo"
        "$VAULT" init --chunk-size 256K --pack-size 2M > /dev/null
        "$VAULT" snapshot --stdin --stdin-name day1.sql --tag day1 < "$OUT/day1.sql" > /dev/null
        rc=0; "$VAULT" snapshot --stdin --stdin-name big.bin < "$OUT/big.bin" > /dev/null 2> "$OUT/big.err" || rc=$?
        echo "$rc" > "$OUT/big.rc"
        rc=0; "$VAULT" check --read-data > "$OUT/check.out" 2>&1 || rc=$?
        echo "$rc" > "$OUT/check.rc"
        "$VAULT" snapshots --json > "$OUT/snaps.json"
        "$VAULT" dump latest day1.sql > "$OUT/day1.back"
        find "$SMALL/repo" -name '.tmp-*' | wc -l > "$OUT/tmp.count"
        # The failed backup's packs fill the disk until prune removes them.
        df -k "$SMALL" | tail -n 1 | awk '{print $4}' > "$OUT/free.before"
        "$VAULT" prune > "$OUT/prune.out" 2>&1
        df -k "$SMALL" | tail -n 1 | awk '{print $4}' > "$OUT/free.after"
        "$VAULT" snapshot --stdin --stdin-name day2.sql < "$OUT/day1.sql" > /dev/null
        "$VAULT" check --read-data > /dev/null
        echo done > "$OUT/done"
    "#;
    let out = h.in_mount_namespace(script, &[("SMALL", &small), ("OUT", h.path())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(read(&h, "done").trim(), "done");
    // A clear error with exit 1, naming the cause and what to do.
    assert_eq!(read(&h, "big.rc").trim(), "1");
    let err = read(&h, "big.err");
    assert!(err.contains("no space left"), "{err}");
    assert!(err.contains("free space"), "says what to do: {err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing lost, nothing half-written, nothing committed.
    assert_eq!(
        read(&h, "check.rc").trim(),
        "0",
        "{}",
        read(&h, "check.out")
    );
    assert!(std::fs::read(h.join("day1.back")).unwrap() == day1);
    let snaps: serde_json::Value = serde_json::from_str(&read(&h, "snaps.json")).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(read(&h, "tmp.count").trim(), "0", "no temporary files left");
    let free = |n: &str| read(&h, n).trim().parse::<u64>().unwrap();
    assert!(
        free("free.after") > free("free.before") + 4096,
        "prune gave back the failed backup's packs: {} -> {} KiB free",
        free("free.before"),
        free("free.after")
    );
}

#[test]
fn a_repository_on_a_read_only_mount_lists_checks_and_restores() {
    let h = super::repo(Some("64K"));
    let data = text_like(2 << 20, 8);
    h.snapshot_stdin("db.sql", &data, &[]);
    let repo = std::path::PathBuf::from(&h.repo);
    let script = r#"
        mount --bind "$REPO" "$REPO"
        mount -o remount,bind,ro "$REPO"
        export VAULT_CACHE_DIR="$OUT/ro-cache"
        "$VAULT" snapshots --json > "$OUT/snaps.json"
        "$VAULT" check --read-data > /dev/null
        "$VAULT" dump latest db.sql > "$OUT/db.back"
        "$VAULT" restore latest --target "$OUT/restored" > /dev/null
        rc=0; "$VAULT" snapshot --stdin --stdin-name x < /dev/null > /dev/null 2> "$OUT/write.err" || rc=$?
        echo "$rc" > "$OUT/write.rc"
        rc=0; "$VAULT" prune > /dev/null 2> "$OUT/prune.err" || rc=$?
        echo "$rc" > "$OUT/prune.rc"
    "#;
    let out = h.in_mount_namespace(script, &[("REPO", &repo), ("OUT", h.path())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snaps: serde_json::Value = serde_json::from_str(&read(&h, "snaps.json")).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert!(std::fs::read(h.join("db.back")).unwrap() == data);
    assert!(std::fs::read(h.join("restored/db.sql")).unwrap() == data);
    for what in ["write", "prune"] {
        assert_eq!(read(&h, &format!("{what}.rc")).trim(), "1", "{what}");
        let err = read(&h, &format!("{what}.err"));
        assert!(err.contains("read-only"), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // The repository is as it was.
    assert_eq!(h.snapshots().len(), 1);
    assert!(h.dump("latest", "db.sql") == data);
}
