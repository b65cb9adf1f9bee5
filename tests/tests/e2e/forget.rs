//! `vault forget`, `vault prune`, `vault check` and `vault unlock` from the shell.

use vault_tests::{random_like, text_like};

use super::harness_on;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

both!(
    forget_and_prune_shrink_the_repository_and_keep_restoring,
    |store| {
        let h = harness_on(store);
        h.init(&["--chunk-size", "64K", "--pack-size", "1M"]);
        let days: Vec<Vec<u8>> = (1..=6).map(|d| random_like(1 << 20, d)).collect();
        for (i, data) in days.iter().enumerate() {
            h.snapshot_stdin(
                "db.sql",
                data,
                &[
                    "--tag",
                    "db",
                    "--time",
                    &format!("2026-11-{:02}T03:00:00Z", i + 1),
                ],
            );
        }
        // No policy: refused, nothing removed.
        let out = h.run(&["forget"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));
        assert_eq!(h.snapshots().len(), 6);
        // Dry run: the plan, with reasons, and nothing removed.
        let plan: serde_json::Value =
            serde_json::from_slice(&h.ok(&["forget", "--keep-last", "3", "--dry-run", "--json"]))
                .unwrap();
        let group = &plan["groups"][0];
        assert_eq!(group["keep"].as_array().unwrap().len(), 3, "{plan}");
        assert_eq!(group["remove"].as_array().unwrap().len(), 3);
        assert_eq!(group["keep"][0]["reasons"], serde_json::json!(["last #1"]));
        assert_eq!(group["keep"][0]["time"], "2026-11-06T03:00:00Z");
        assert_eq!(h.snapshots().len(), 6);
        let before = h.repo_bytes();
        let out = h.ok(&["forget", "--keep-last", "3", "--prune"]);
        assert!(String::from_utf8_lossy(&out).contains("removed 3 snapshot(s)"));
        assert_eq!(h.snapshots().len(), 3);
        let after = h.repo_bytes();
        assert!(
            after < before * 6 / 10,
            "repository shrank from {before} to {after}"
        );
        let check = h.run(&["check", "--read-data"]);
        assert!(check.status.success(), "{}", stderr(&check));
        for (i, data) in days.iter().enumerate().skip(3) {
            let snaps = h.snapshots();
            let s = snaps
                .iter()
                .find(|s| s["time"] == format!("2026-11-{:02}T03:00:00Z", i + 1))
                .unwrap();
            assert!(
                h.dump(s["id"].as_str().unwrap(), "db.sql") == *data,
                "day {}",
                i + 1
            );
        }
    }
);

#[test]
fn config_profiles_apply_each_streams_schedule() {
    let h = super::repo(None);
    for day in 1..=10u32 {
        let t = format!("2026-11-{day:02}T03:00:00Z");
        h.snapshot_stdin(
            "dump.rdb",
            format!("redis {day}").as_bytes(),
            &["--tag", "redis", "--time", &t],
        );
        h.snapshot_stdin(
            "shop.dump",
            format!("pg {day}").as_bytes(),
            &["--tag", "postgres", "--time", &t],
        );
    }
    let cfg = h.join("vault.toml");
    std::fs::write(
        &cfg,
        "[profiles.redis]\ntags = [\"redis\"]\n[profiles.redis.retention]\nkeep-last = 2\n\n\
         [profiles.postgres]\ntags = [\"postgres\"]\n[profiles.postgres.retention]\nkeep-daily = 7\n",
    )
    .unwrap();
    h.ok(&["forget", "--config", cfg.to_str().unwrap()]);
    let snaps = h.snapshots();
    let count = |tag: &str| snaps.iter().filter(|s| s["tags"][0] == tag).count();
    assert_eq!((count("redis"), count("postgres")), (2, 7));
}

#[test]
fn a_live_prune_lock_blocks_prune_with_exit_11() {
    let h = super::repo(None);
    h.snapshot_stdin("a", b"data", &[]);
    let repo = vault_core::Repository::open(
        vault_store::open_url(&h.repo).unwrap(),
        h.password.as_bytes(),
        &vault_core::OpenOptions::default(),
    )
    .unwrap();
    vault_tests::locks::prune_lock(
        &repo,
        &vault_core::lock::LockInfo::new(
            "prune",
            "some-other-host",
            std::time::Duration::from_secs(3600),
        ),
    );
    let out = h.run(&["prune"]);
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("locked by prune by pid"),
        "{}",
        stderr(&out)
    );
    // So does repair, and a backup is not blocked at all.
    for repair in ["index", "snapshots"] {
        let out = h.run(&["repair", repair]);
        assert_eq!(
            out.status.code(),
            Some(11),
            "repair {repair}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("some-other-host"), "{}", stderr(&out));
    }
    h.snapshot_stdin("b", b"more data", &[]);
    // unlock leaves a live lock alone; --remove-all removes it.
    h.ok(&["unlock"]);
    assert_eq!(h.run(&["prune"]).status.code(), Some(11));
    h.ok(&["unlock", "--remove-all"]);
    h.ok(&["prune"]);
}

#[test]
fn what_a_killed_backup_leaves_is_removed_by_the_next_command() {
    use std::io::Write;
    let h = super::repo(None);
    let backend = vault_store::open_url(&h.repo).unwrap();
    let leases = || {
        backend
            .list(vault_store::FileType::Lock)
            .unwrap()
            .into_iter()
            .filter(|(n, _)| n.starts_with("lease-"))
            .count()
    };
    // A backup killed with SIGKILL while it reads its input.
    let mut child = h
        .cmd()
        .args(["snapshot", "--stdin", "--stdin-name", "db.sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&text_like(1 << 20, 5)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while leases() == 0 {
        assert!(std::time::Instant::now() < deadline, "no lease appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(leases(), 1, "the killed backup's lease is left behind");
    // And an expired prune lock of another host (a prune that stalled).
    let repo = vault_core::Repository::open(
        backend.clone(),
        h.password.as_bytes(),
        &vault_core::OpenOptions::default(),
    )
    .unwrap();
    let mut stalled =
        vault_core::lock::LockInfo::new("prune", "gone-host", std::time::Duration::from_secs(60));
    stalled.expires = "2026-01-01T00:00:00Z".into();
    vault_tests::locks::prune_lock(&repo, &stalled);
    // The next backup runs, removes both, and says so.
    let out = h.run_stdin(&["snapshot", "--stdin", "--stdin-name", "db.sql"], b"day 2");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("removed a stale lease"), "{err}");
    assert!(err.contains("removed a stale prune"), "{err}");
    assert!(backend
        .list(vault_store::FileType::Lock)
        .unwrap()
        .is_empty());
    h.ok(&["prune"]);
}

both!(
    concurrent_backups_with_a_prune_in_between_all_commit_and_restore,
    |store| {
        use std::io::Write;
        let h = harness_on(store);
        h.init(&["--chunk-size", "64K", "--pack-size", "1M"]);
        let base = random_like(3 << 20, 99);
        // History for prune to work on: the forgotten snapshot holds the data
        // every writer is about to deduplicate against, so a prune that
        // ignored them would delete what they need.
        let mut old = base.clone();
        old.extend_from_slice(&random_like(1 << 20, 1));
        h.snapshot_stdin("old.bin", &old, &["--tag", "old"]);
        h.snapshot_stdin("old.bin", &random_like(2 << 20, 2), &["--tag", "old"]);
        h.ok(&["forget", "--tag", "old", "--keep-last", "1"]);
        // Four writers on overlapping data (a shared base, then their own part).
        let inputs: Vec<Vec<u8>> = (0..4u64)
            .map(|i| {
                let mut d = base.clone();
                d.extend_from_slice(&random_like(1 << 20, 10 + i));
                d
            })
            .collect();
        let children: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let mut c = h.cmd();
                c.args([
                    "snapshot",
                    "--json",
                    "--stdin",
                    "--stdin-name",
                    &format!("w{i}.bin"),
                    "--tag",
                    "concurrent",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
                let mut child = c.spawn().unwrap();
                let mut stdin = child.stdin.take().unwrap();
                let data = data.clone();
                // The last part waits until the prune is done, so every
                // writer is still running while it prunes.
                let (go, wait) = std::sync::mpsc::channel::<()>();
                let feeder = std::thread::spawn(move || {
                    let (head, tail) = data.split_at(data.len() - (256 << 10));
                    for part in head.chunks(256 << 10) {
                        stdin.write_all(part).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let _ = wait.recv();
                    stdin.write_all(tail).unwrap();
                });
                (child, (feeder, go))
            })
            .collect();
        // Prune once every writer has announced itself.
        let backend = h.backend();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while backend
            .list(vault_store::FileType::Lock)
            .unwrap()
            .iter()
            .filter(|(n, _)| n.starts_with("lease-"))
            .count()
            < 4
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the writers never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let pruned = h.run(&["prune", "--json"]);
        assert!(pruned.status.success(), "{}", stderr(&pruned));
        let report = vault_tests::last_json(&pruned.stdout);
        assert!(
            report["report"]["deferred"].as_u64().unwrap() > 0,
            "running backups defer the deletion: {report}"
        );
        for (child, (feeder, go)) in children {
            go.send(()).unwrap();
            feeder.join().unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a concurrent writer failed: {}",
                stderr(&out)
            );
        }
        let check = h.run(&["check", "--read-data"]);
        assert!(check.status.success(), "{}", stderr(&check));
        for (i, data) in inputs.iter().enumerate() {
            assert!(
                h.ok(&[
                    "dump",
                    "latest",
                    &format!("w{i}.bin"),
                    "--tag",
                    "concurrent",
                    "--path",
                    &format!("/w{i}.bin")
                ]) == *data,
                "writer {i}"
            );
        }
        // A later prune finishes what was deferred, rescuing the shared data
        // the writers reused; everything still restores.
        let done = vault_tests::last_json(&h.ok(&["prune", "--json"]));
        assert!(
            done["report"]["deleted_pending"].as_u64().unwrap() > 0,
            "{done}"
        );
        let check = h.run(&["check", "--read-data"]);
        assert!(check.status.success(), "{}", stderr(&check));
        for (i, data) in inputs.iter().enumerate() {
            let name = format!("w{i}.bin");
            let path = format!("/{name}");
            let args = [
                "dump",
                "latest",
                &name,
                "--tag",
                "concurrent",
                "--path",
                &path,
            ];
            assert!(h.ok(&args) == *data, "writer {i} after the second prune");
        }
        assert_eq!(h.snapshots().len(), 5);
    }
);
