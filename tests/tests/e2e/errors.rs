//! Bad input: clear errors, documented exit codes, nothing lost.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vault_tests::servers::{is_root, unprivileged};
use vault_tests::text_like;

use super::{harness, harness_on, repo, repo_on};

/// Every object of the repository with its size.
fn objects(h: &vault_tests::Harness) -> Vec<(String, String, u64)> {
    let b = h.backend();
    let mut out: Vec<(String, String, u64)> = vault_store::FileType::ALL
        .iter()
        .filter(|k| **k != vault_store::FileType::Config)
        .flat_map(|k| {
            b.list(*k)
                .unwrap()
                .into_iter()
                .map(move |(n, s)| (k.name().to_owned(), n, s))
        })
        .collect();
    out.push((
        "config".into(),
        "config".into(),
        b.size(&vault_store::Handle::config()).unwrap_or(0),
    ));
    out.sort();
    out
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

both!(wrong_password_exits_12_and_changes_nothing, |store| {
    let mut h = repo_on(store, None);
    h.snapshot_stdin("a", b"hello", &[]);
    let before = objects(&h);
    h.password = "not the password".into();
    for args in [
        &["snapshots"][..],
        &["snapshot", "--stdin"],
        &["dump", "latest", "a"],
    ] {
        let out = h.run(args);
        assert_eq!(out.status.code(), Some(12), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    }
    assert_eq!(objects(&h), before);
});

both!(missing_repository_exits_10, |store| {
    let h = harness_on(store);
    for args in [
        &["snapshots"][..],
        &["snapshot", "/etc/hostname"],
        &["restore", "latest", "--target", "/tmp/x"],
    ] {
        let out = h.run(args);
        assert_eq!(out.status.code(), Some(10), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("no repository"), "{}", stderr(&out));
    }
    assert!(objects(&h).iter().all(|o| o.2 == 0), "nothing was created");
});

both!(init_refuses_an_existing_repository, |store| {
    let h = repo_on(store, None);
    let out = h.run(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
});

both!(failing_command_creates_no_snapshot, |store| {
    let h = repo_on(store, None);
    for (cmd, expect) in [
        ("sh -c 'echo partial; exit 3'", "exited with status 3"),
        ("/nonexistent/pg_dump mydb", "could not be started"),
        ("sh -c 'kill -9 $$'", "killed by signal 9"),
    ] {
        let out = h.run(&["snapshot", "--command", cmd, "--stdin-name", "db.sql"]);
        assert_ne!(out.status.code(), Some(0), "{cmd}");
        assert!(stderr(&out).contains(expect), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no snapshot was created"),
            "{}",
            stderr(&out)
        );
    }
    assert!(h.snapshots().is_empty());
    // Quoting follows shell rules without a shell.
    let s = h.snapshot(&[
        "--command",
        "printf '%s|%s' 'a b' \"c'd\"",
        "--stdin-name",
        "out",
    ]);
    assert_eq!(s["files"], 1);
    assert_eq!(h.dump("latest", "out"), b"a b|c'd");
});

#[test]
fn unreadable_file_exits_3_and_saves_the_rest() {
    let h = repo(None);
    let src = h.join("src");
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::write(src.join("readable.txt"), text_like(10_000, 1)).unwrap();
    std::fs::write(src.join("secret.txt"), b"top secret").unwrap();
    std::fs::write(src.join("locked/inner.txt"), b"inner").unwrap();
    std::fs::set_permissions(
        src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(src.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads everything: run the backup as an unprivileged user then.
    let mut cmd = if is_root() {
        unprivileged(h.bin())
    } else {
        h.cmd()
    };
    h.configure(&mut cmd);
    // The repository and cache must be writable by that user.
    let chmod = std::process::Command::new("chmod")
        .args(["-R", "a+rwX", &h.repo])
        .status()
        .unwrap();
    assert!(chmod.success());
    let out = cmd
        .args(["snapshot", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::set_permissions(src.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("secret.txt"), "{err}");
    assert!(err.contains("locked"), "{err}");
    let listing = String::from_utf8(h.ok(&["ls", "latest"])).unwrap();
    assert!(listing.contains("readable.txt"), "{listing}");
    assert!(!listing.contains("secret.txt"), "{listing}");
    assert_eq!(
        h.dump("latest", &format!("{}/readable.txt", src.display())),
        text_like(10_000, 1)
    );
}

both!(deleted_cache_is_rebuilt, |store| {
    let h = repo_on(store, Some("64K"));
    let data = text_like(3 << 20, 5);
    h.snapshot_stdin("x", &data, &[]);
    std::fs::remove_dir_all(&h.cache).unwrap();
    assert_eq!(h.dump("latest", "x"), data);
    assert!(h.cache.exists(), "cache recreated");
    std::fs::remove_dir_all(&h.cache).unwrap();
    let s = h.snapshot_stdin("x", &data, &[]);
    // Only the new root tree (the stream node carries the snapshot time) is new.
    assert_eq!(
        s["blobs_added"], 1,
        "dedup works against the rebuilt cache: {s}"
    );
    // A cache file full of garbage is replaced, not trusted.
    let db = std::fs::read_dir(&h.cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("index.sqlite");
    std::fs::write(&db, vec![0xAB; 8192]).unwrap();
    assert_eq!(h.dump("latest", "x"), data);
});

both!(snapshot_selection_by_prefix_latest_and_filters, |store| {
    let h = repo_on(store, None);
    h.snapshot_stdin(
        "a",
        b"one",
        &[
            "--tag",
            "db",
            "--host",
            "alpha",
            "--time",
            "2026-01-01T00:00:00Z",
        ],
    );
    h.snapshot_stdin(
        "a",
        b"two",
        &[
            "--tag",
            "redis",
            "--host",
            "beta",
            "--time",
            "2026-01-02T00:00:00+02:00",
        ],
    );
    assert_eq!(h.dump("latest", "a"), b"two");
    assert_eq!(h.ok(&["dump", "latest", "a", "--tag", "db"]), b"one");
    assert_eq!(h.ok(&["dump", "latest", "a", "--host", "beta"]), b"two");
    let snaps = h.snapshots();
    let first = snaps.iter().find(|s| s["hostname"] == "alpha").unwrap();
    assert_eq!(first["time"], "2026-01-01T00:00:00Z");
    assert_eq!(first["tags"], serde_json::json!(["db"]));
    assert_eq!(first["paths"], serde_json::json!(["/a"]));
    assert_eq!(
        first["short_id"].as_str().unwrap(),
        &first["id"].as_str().unwrap()[..8]
    );
    assert!(first["summary"]["bytes_read"] == 3);
    let id = first["id"].as_str().unwrap();
    assert_eq!(h.dump(&id[..4], "a"), b"one");
    let out = h.run(&["dump", "abc", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("at least 4 hex digits"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["dump", "latest", "missing"]);
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));
    let out = h.run(&["snapshot", "--stdin", "--time", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
});

#[test]
fn password_sources_file_command_and_env() {
    let h = repo(None);
    h.snapshot_stdin("a", b"data", &[]);
    let pwfile = h.join("pw");
    std::fs::write(&pwfile, format!("{}\nsecond line ignored\n", h.password)).unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut c = h.cmd();
        c.env_remove("VAULT_PASSWORD");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(["dump", "latest", "a"]).output().unwrap()
    };
    let out = run(&[("VAULT_PASSWORD_FILE", pwfile.to_str().unwrap())]);
    assert_eq!(out.stdout, b"data", "{}", stderr(&out));
    let cmd = format!("cat '{}'", pwfile.display());
    let out = run(&[("VAULT_PASSWORD_COMMAND", &cmd)]);
    assert_eq!(out.stdout, b"data", "{}", stderr(&out));
    // The file wins over a wrong VAULT_PASSWORD.
    let out = run(&[
        ("VAULT_PASSWORD_FILE", pwfile.to_str().unwrap()),
        ("VAULT_PASSWORD", "wrong"),
    ]);
    assert_eq!(out.stdout, b"data", "{}", stderr(&out));
    let out = run(&[("VAULT_PASSWORD_COMMAND", "false")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("password command"),
        "{}",
        stderr(&out)
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("password given"), "{}", stderr(&out));
}

/// Runs `vault ARGS` under a pseudo-terminal (util-linux `script`), typing `lines`.
fn on_terminal(h: &vault_tests::Harness, args: &str, lines: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut c = std::process::Command::new("script");
    h.configure(&mut c);
    c.env_remove("VAULT_PASSWORD")
        .args([
            "-qec",
            &format!("{} {args}", h.bin().display()),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script(1) from util-linux");
    let mut stdin = child.stdin.take().unwrap();
    for l in lines {
        std::thread::sleep(std::time::Duration::from_millis(400));
        writeln!(stdin, "{l}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    out
}

#[test]
fn init_on_a_terminal_asks_twice() {
    let h = harness();
    let out = on_terminal(&h, "init", &["typed secret", "typed secret"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("repeat the password"), "{text}");
    let mut h = h;
    h.password = "typed secret".into();
    assert!(h.snapshots().is_empty());
    let other = harness();
    let out = on_terminal(&other, "init", &["one", "two"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("do not match"));
    assert!(!Path::new(&other.repo).join("config").exists());
}

#[test]
fn sigterm_during_a_snapshot_stops_cleanly_and_commits_nothing() {
    use std::io::Write;
    let h = repo(None);
    h.snapshot_stdin("before", b"committed earlier", &[]);
    for signal in ["-TERM", "-INT"] {
        let mut child = h
            .cmd()
            .args(["snapshot", "--stdin", "--stdin-name", "endless"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            let block = text_like(1 << 20, 3);
            // Until the pipe breaks: vault stopped reading.
            for _ in 0..10_000 {
                if stdin.write_all(&block).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(800));
        let killed = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(!out.status.success(), "{signal}");
        assert!(
            stderr(&out).contains("interrupted"),
            "{signal}: {}",
            stderr(&out)
        );
    }
    assert_eq!(h.snapshots().len(), 1, "nothing partial was committed");
    assert!(
        h.backend()
            .list(vault_store::FileType::Lock)
            .unwrap()
            .is_empty(),
        "the lease was released"
    );
    let check = h.run(&["check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(h.dump("latest", "before"), b"committed earlier");
}

#[test]
fn check_read_data_shows_progress_on_a_terminal_only() {
    let h = repo(Some("64K"));
    h.snapshot_stdin("x", &text_like(2 << 20, 8), &[]);
    let out = on_terminal(&h, "check --read-data", &[h.password.as_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("check: "), "{text}");
    // Not a terminal: no progress line.
    let plain = h.run(&["check", "--read-data"]);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("check: "));
}

#[test]
fn snapshot_and_restore_draw_a_progress_bar_on_a_terminal() {
    let h = repo(Some("64K"));
    let input = h.join("input.sql");
    std::fs::write(&input, text_like(8 << 20, 9)).unwrap();
    let out = on_terminal(
        &h,
        &format!("snapshot {}", input.display()),
        &[h.password.as_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The final state of the bar: bytes read, rate, files, new and stored.
    assert!(text.contains("snapshot: "), "{text}");
    assert!(text.contains("/s"), "a rate: {text}");
    assert!(text.contains("new "), "{text}");
    let target = h.join("back");
    let out = on_terminal(
        &h,
        &format!("restore latest --target {}", target.display()),
        &[h.password.as_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("restore: "), "{text}");
    assert!(text.contains("ETA"), "the total is known: {text}");
    // --quiet on a terminal: no bar.
    let out = on_terminal(
        &h,
        &format!("-q restore latest --target {}", h.join("again").display()),
        &[h.password.as_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("restore: "), "{text}");
}

#[test]
fn restoring_a_damaged_snapshot_restores_the_rest_and_names_the_loss() {
    let h = harness();
    h.init(&["--chunk-size", "64K", "--pack-size", "1M"]);
    let src = h.join("src");
    std::fs::create_dir(&src).unwrap();
    let a = vault_tests::random_like(3 << 20, 1);
    std::fs::write(src.join("a.bin"), &a).unwrap();
    h.snapshot(&[src.to_str().unwrap()]);
    let before: std::collections::HashSet<String> = h
        .backend()
        .list(vault_store::FileType::Pack)
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect();
    std::fs::write(src.join("b.bin"), vault_tests::random_like(3 << 20, 2)).unwrap();
    h.snapshot(&[src.to_str().unwrap()]);
    // Lose the packs only the second backup wrote (b.bin's chunks, and trees).
    let b = h.backend();
    let new_data: Vec<(String, u64)> = b
        .list(vault_store::FileType::Pack)
        .unwrap()
        .into_iter()
        .filter(|p| !before.contains(&p.0))
        .collect();
    let biggest = new_data.iter().max_by_key(|p| p.1).unwrap().0.clone();
    b.delete(&vault_store::Handle::new(vault_store::FileType::Pack, biggest).unwrap())
        .unwrap();
    let target = h.join("restored");
    let out = h.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("b.bin"),
        "the damaged file is named: {}",
        stderr(&out)
    );
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert!(
        std::fs::read(restored.join("a.bin")).unwrap() == a,
        "the intact file is restored"
    );
    assert!(
        !restored.join("b.bin").exists(),
        "no wrong or partial bytes are left as b.bin"
    );
    // dump of the damaged file fails; check names it.
    let out = h.run(&["dump", "latest", &format!("{}/b.bin", src.display())]);
    assert_ne!(out.status.code(), Some(0));
    let check = h.run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stderr(&check).contains("b.bin"), "{}", stderr(&check));
}

#[test]
fn an_unusable_cache_directory_is_a_clear_error_and_changes_nothing() {
    let h = repo(None);
    // A cache directory that cannot be created (its parent is a file): this
    // fails the same way for root and for any user.
    let blocker = h.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("cache");
    let out = h
        .cmd()
        .args(["--cache-dir", bad.to_str().unwrap(), "snapshot", "--stdin"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cache"), "{err}");
    assert!(err.contains("--cache-dir"), "says what to do: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(h.snapshots().is_empty(), "nothing was committed");
}

#[test]
fn a_read_only_repository_can_be_listed_checked_and_restored() {
    use std::os::unix::fs::PermissionsExt;
    let h = repo(Some("64K"));
    let data = text_like(2 << 20, 8);
    h.snapshot_stdin("db.sql", &data, &[]);
    // Read-only for everyone but root, and root bypasses modes: run the
    // readers as an unprivileged user, with a cache and target of its own.
    let status = std::process::Command::new("chmod")
        .args(["-R", "a-w,a+rX", &h.repo])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let scratch = h.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = if is_root() {
            unprivileged(h.bin())
        } else {
            h.cmd()
        };
        h.configure(&mut cmd);
        cmd.env("VAULT_CACHE_DIR", scratch.join("cache"));
        cmd.args(args).output().unwrap()
    };
    let listed = run(&["snapshots", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let checked = run(&["check", "--read-data"]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    let dumped = run(&["dump", "latest", "db.sql"]);
    assert!(dumped.status.success(), "{}", stderr(&dumped));
    assert!(dumped.stdout == data);
    let target = scratch.join("restore");
    let restored = run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(std::fs::read(target.join("db.sql")).unwrap() == data);
    // Writing is refused with a clear error, not a panic.
    let wrote = run(&["snapshot", "--stdin"]);
    assert!(!wrote.status.success());
    let err = stderr(&wrote);
    assert!(
        err.contains("ermission") || err.contains("read-only"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let status = std::process::Command::new("chmod")
        .args(["-R", "u+w", &h.repo])
        .status()
        .unwrap();
    assert!(status.success());
}
