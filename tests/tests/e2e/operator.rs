//! What an operator's setup leans on: profiles that name their repository,
//! host and a `before` command, retention and metrics that follow them, JSON
//! on every stream of every command (errors included), `--quiet`, and drills
//! that hold a snapshot to a maximum age.

use vault_cli::metrics::{parse, Sample};
use vault_tests::{last_json, text_like};

use super::repo;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn metric<'a>(m: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    m.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// Every line of a stream parses as a JSON object.
fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect()
}

#[test]
fn profiles_name_their_repository_host_and_before_command() {
    let h = repo(None);
    // A second repository for the cache profile.
    let second = h.join("second");
    let init = h
        .cmd()
        .env("VAULT_REPOSITORY", &second)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let rdb = h.join("dump.rdb");
    std::fs::write(&rdb, text_like(200_000, 4)).unwrap();
    let mark = h.join("prepared");
    let tree = h.join("ts-snap");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    let cfg = h.join("vault.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[profiles.cache]
repository = "{second}"
host = "cache1"
tags = ["redis"]
before = "sh -c 'echo ready > {mark}'"
command = "cat {rdb}"
stdin-name = "dump.rdb"
[profiles.cache.retention]
keep-last = 1

[profiles.search]
tags = ["typesense"]
paths = ["{tree}"]
before = "sh -c 'echo no snapshot API >&2; exit 4'"

[profiles.everything]
[profiles.everything.retention]
keep-last = 1
"#,
            second = second.display(),
            mark = mark.display(),
            rdb = rdb.display(),
            tree = tree.display(),
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    for _ in 0..3 {
        let done = last_json(&h.ok(&["snapshot", "--config", c, "--profile", "cache", "--json"]));
        assert_eq!(done["profile"], "cache");
    }
    assert_eq!(std::fs::read_to_string(&mark).unwrap().trim(), "ready");
    // They went to the profile's repository, under its host.
    assert!(h.snapshots().is_empty(), "nothing in --repo's repository");
    let in_second = |args: &[&str]| {
        h.cmd()
            .env("VAULT_REPOSITORY", &second)
            .args(args)
            .output()
            .unwrap()
    };
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&in_second(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed.iter().all(|s| s["hostname"] == "cache1"),
        "{listed:?}"
    );
    let restored = in_second(&["dump", "latest", "dump.rdb"]);
    assert!(restored.stdout == std::fs::read(&rdb).unwrap());

    // A failing `before` fails its profile and makes no snapshot.
    let out = h.run(&["snapshot", "--config", c, "--profile", "search"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("before command"), "{}", stderr(&out));
    assert!(stderr(&out).contains("no snapshot was created"));
    assert!(h.snapshots().is_empty());

    // Retention follows the profile into its repository, with metrics.
    let metrics = h.join("vault.prom");
    let m = metrics.to_str().unwrap();
    let out = h.run(&[
        "forget",
        "--config",
        c,
        "--profile",
        "cache",
        "--metrics-file",
        m,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = last_json(&out.stdout);
    assert_eq!(plan["removed"].as_array().unwrap().len(), 2, "{plan}");
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&in_second(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(listed.len(), 1);
    let samples = parse(&std::fs::read_to_string(&metrics).unwrap());
    let removed = metric(
        &samples,
        "vault_snapshots",
        &[
            ("operation", "forget"),
            ("host", "cache1"),
            ("tags", "redis"),
        ],
    )
    .unwrap_or_else(|| panic!("{samples:?}"));
    assert_eq!(removed.value, 2.0);

    // --profile without --config, and a profile that selects everything,
    // are refused before anything is removed.
    let out = h.run(&["forget", "--profile", "cache", "--keep-last", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
    let out = h.run(&["forget", "--config", c, "--profile", "everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("every snapshot"), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<Vec<serde_json::Value>>(
            &in_second(&["snapshots", "--json"]).stdout
        )
        .unwrap()
        .len(),
        1
    );
}

#[test]
fn every_stream_speaks_json_errors_included_and_quiet_is_quiet() {
    let h = repo(Some("64K"));
    // --quiet: a successful backup prints nothing at all.
    let out = h.run_stdin(
        &["-q", "snapshot", "--stdin", "--stdin-name", "db.sql"],
        &text_like(300_000, 1),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // The summary: every field a collector needs.
    let out = h.run_stdin(
        &["snapshot", "--stdin", "--stdin-name", "db.sql", "--json"],
        &text_like(300_000, 2),
    );
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["message_type"], "summary");
    for field in [
        "files",
        "bytes_read",
        "bytes_added",
        "bytes_stored",
        "packs_resumed",
    ] {
        assert!(summary[field].is_u64(), "{field}: {summary}");
    }
    assert!(
        summary["duration_seconds"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert_eq!(summary["bytes_read"], 300_000);
    json_lines(&out.stderr);

    // Errors: one JSON object on stderr, with the documented exit code.
    let wrong = h
        .cmd()
        .env("VAULT_PASSWORD", "not it")
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(12));
    let err = &json_lines(&wrong.stderr)[0];
    assert_eq!(
        (err["message_type"].as_str(), err["code"].as_u64()),
        (Some("error"), Some(12))
    );
    assert!(
        err["message"].as_str().unwrap().contains("wrong password"),
        "{err}"
    );
    let usage = h.run(&["snapshot", "--no-such-flag", "--json"]);
    assert_eq!(usage.status.code(), Some(2));
    let err = &json_lines(&usage.stderr)[0];
    assert_eq!(err["code"], 2);
    assert!(
        err["message"].as_str().unwrap().contains("--no-such-flag"),
        "{err}"
    );
    // Warnings beside a result are JSON too (unlock --remove-all warns).
    let out = h.run(&["unlock", "--remove-all", "--json"]);
    assert!(out.status.success());
    let warned = json_lines(&out.stderr);
    assert_eq!(warned[0]["message_type"], "warning", "{warned:?}");
    assert_eq!(last_json(&out.stdout)["message_type"], "unlock");

    // repair index and repair snapshots report as JSON.
    let r = last_json(&h.ok(&["repair", "index", "--json"]));
    assert_eq!(r["message_type"], "repair_index");
    assert!(r["report"]["blobs"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["report"]["damaged"].as_array().unwrap().len(), 0);
    let r = last_json(&h.ok(&["repair", "snapshots", "--json"]));
    assert_eq!(r["message_type"], "repair_snapshots");
    assert_eq!(r["report"]["intact"], 2, "{r}");
}

#[test]
fn forget_prune_and_check_record_their_runs() {
    let h = repo(Some("64K"));
    for seed in 1..=3 {
        h.snapshot_stdin(
            "db.sql",
            &vault_tests::random_like(1 << 20, seed),
            &["--tag", "db"],
        );
    }
    let metrics = h.join("vault.prom");
    let m = metrics.to_str().unwrap();
    h.ok(&[
        "snapshot",
        "--stdin",
        "--stdin-name",
        "x",
        "--metrics-file",
        m,
        "--tag",
        "x",
    ]);
    let out = h.run(&[
        "forget",
        "--tag",
        "db",
        "--keep-last",
        "1",
        "--prune",
        "--metrics-file",
        m,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    h.ok(&["check", "--metrics-file", m]);
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    let host = vault_core::lock::this_host();
    let snap = [
        ("operation", "snapshot"),
        ("tags", "x"),
        ("host", host.as_str()),
    ];
    assert!(metric(&s, "vault_bytes_added", &snap).is_some(), "{s:?}");
    assert!(
        metric(&s, "vault_last_duration_seconds", &snap)
            .unwrap()
            .value
            > 0.0
    );
    let forgot = [("operation", "forget"), ("tags", "db")];
    assert_eq!(metric(&s, "vault_snapshots", &forgot).unwrap().value, 2.0);
    assert_eq!(metric(&s, "vault_errors", &forgot).unwrap().value, 0.0);
    let freed = metric(&s, "vault_bytes_freed", &[("operation", "prune")]).unwrap();
    assert!(freed.value > 1e6, "two forgotten MiB were freed: {freed:?}");
    assert_eq!(
        metric(&s, "vault_check_problems", &[("operation", "check")])
            .unwrap()
            .value,
        0.0
    );
    // Damage: check fails, and says how much it found.
    let pack = h
        .repo_pack_paths()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    let out = h.run(&["check", "--read-data", "--metrics-file", m]);
    assert_eq!(out.status.code(), Some(1));
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    let check = [("operation", "check")];
    assert!(metric(&s, "vault_check_problems", &check).unwrap().value >= 1.0);
    assert_eq!(metric(&s, "vault_errors", &check).unwrap().value, 1.0);
    // With the repository's state in the same file, every series of every
    // metric has the same label names (node_exporter rejects a family that
    // mixes them).
    h.ok(&["metrics", "--metrics-file", m]);
    // (The drill fails on the damaged pack; it records all the same.)
    h.run(&["drill", "--verify-only", "--metrics-file", m]);
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    let ops: std::collections::BTreeSet<&str> =
        s.iter().map(|x| x.labels["operation"].as_str()).collect();
    assert_eq!(
        ops.into_iter().collect::<Vec<_>>(),
        [
            "check",
            "drill",
            "drill_run",
            "forget",
            "metrics",
            "prune",
            "snapshot"
        ]
    );
    // `vault metrics` replaced only its own series: forget's count stays.
    assert_eq!(metric(&s, "vault_snapshots", &forgot).unwrap().value, 2.0);
    for sample in &s {
        let names: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["host", "operation", "repository", "tags"],
            "{sample:?}"
        );
        assert_eq!(sample.labels["repository"], h.repo, "{sample:?}");
    }
}

#[test]
fn drill_into_a_target_holds_snapshots_to_a_maximum_age() {
    let h = repo(Some("64K"));
    let data = text_like(400_000, 7);
    // A snapshot from two days ago.
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let out = h.run_stdin(
        &[
            "snapshot",
            "--stdin",
            "--stdin-name",
            "db.sql",
            "--time",
            &old.to_string(),
            "--tag",
            "db",
        ],
        &data,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let target = h.join("drills");
    let metrics = h.join("vault.prom");
    let out = h.run(&[
        "drill",
        "--target",
        target.to_str().unwrap(),
        "--max-age",
        "26h",
        "--json",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "too old: {}", stderr(&out));
    let report = json_lines(&out.stdout)
        .into_iter()
        .find(|l| l["message_type"] == "drill")
        .unwrap();
    assert_eq!(report["ok"], false);
    assert!(
        report["error"].as_str().unwrap().contains("26.0 h allowed"),
        "{report}"
    );
    let age = report["snapshot_age_seconds"].as_f64().unwrap();
    assert!(
        (age - 48.0 * 3600.0).abs() < 600.0,
        "the RPO is the snapshot's age: {age}"
    );
    // The restore itself happened, into the target, byte for byte.
    let id = report["snapshot_id"].as_str().unwrap();
    let restored = std::fs::read(target.join(&id[..8]).join("db.sql")).unwrap();
    assert!(restored == data);
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    let drill = [("operation", "drill"), ("tags", "db")];
    assert_eq!(metric(&s, "vault_errors", &drill).unwrap().value, 1.0);
    // A generous limit passes.
    let out = h.run(&["drill", "--verify-only", "--max-age", "3d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A drill that cannot even open the repository is a failed drill in the
    // metrics too.
    let gone = h
        .cmd()
        .env("VAULT_REPOSITORY", h.join("nowhere"))
        .args([
            "drill",
            "--tag",
            "db",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(10));
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    let failed = metric(
        &s,
        "vault_errors",
        &[
            ("operation", "drill_run"),
            ("tags", "db"),
            ("host", ""),
            ("repository", h.join("nowhere").to_str().unwrap()),
        ],
    );
    assert_eq!(failed.map(|f| f.value), Some(1.0), "{s:?}");
    // The run as a whole failed too (too old), for this repository; the next
    // drill of that selection that passes clears it.
    let run = [
        ("operation", "drill_run"),
        ("tags", "db"),
        ("host", ""),
        ("repository", h.repo.as_str()),
    ];
    let out = h.run(&[
        "drill",
        "--tag",
        "db",
        "--max-age",
        "26h",
        "--verify-only",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(metric(&s, "vault_errors", &run).map(|f| f.value), Some(1.0));
    let out = h.run(&[
        "drill",
        "--tag",
        "db",
        "--verify-only",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = parse(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(metric(&s, "vault_errors", &run).map(|f| f.value), Some(0.0));
}

#[test]
fn forget_by_id_removes_only_that_snapshot_even_with_a_config_in_the_environment() {
    let h = repo(None);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let s = h.snapshot_stdin("db.sql", &text_like(10_000, i), &["--tag", "x"]);
            s["snapshot_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let cfg = h.join("vault.toml");
    std::fs::write(
        &cfg,
        "[profiles.x]\ntags = [\"x\"]\n[profiles.x.retention]\nkeep-last = 1\n",
    )
    .unwrap();
    let out = h
        .cmd()
        .env("VAULT_CONFIG", &cfg)
        .args(["forget", &ids[0][..8]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<String> = h
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), 2, "only the id given was removed: {left:?}");
    assert!(!left.contains(&ids[0]));
    // Without ids, the environment's configuration applies.
    let out = h
        .cmd()
        .env("VAULT_CONFIG", &cfg)
        .args(["forget"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.snapshots().len(), 1);
}

#[test]
fn a_profile_naming_the_default_repository_shares_its_forget_pass() {
    let h = repo(None);
    for i in 0..3 {
        h.snapshot_stdin("db.sql", &text_like(10_000, 10 + i), &["--tag", "db"]);
    }
    let cfg = h.join("vault.toml");
    std::fs::write(
        &cfg,
        format!(
            "[profiles.db]\nrepository = \"{}\"\ntags = [\"db\"]\n[profiles.db.retention]\nkeep-last = 3\n",
            h.repo
        ),
    )
    .unwrap();
    // The profile keeps all three; the command line alone would keep one.
    // One pass over the repository: what any rule keeps stays.
    let out = h.run(&[
        "forget",
        "--config",
        cfg.to_str().unwrap(),
        "--keep-last",
        "1",
        "--tag",
        "db",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.snapshots().len(), 3);
}
