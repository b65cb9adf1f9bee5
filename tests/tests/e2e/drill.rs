//! `vault drill` and `vault metrics`: the restore rehearsal with a real
//! validation command, its metrics, and a drill that finds damage.

use vault_cli::metrics::{parse, Sample};
use vault_tests::servers::Redis;
use vault_tests::{last_json, text_like};

use super::repo;

fn find<'a>(m: &'a [Sample], name: &str, op: Option<&str>, tags: &str) -> Option<&'a Sample> {
    m.iter().find(|s| {
        s.name == name
            && s.labels.get("tags").map(String::as_str) == Some(tags)
            && s.labels.get("operation").map(String::as_str) == op
    })
}

#[test]
fn drill_restores_validates_and_reports_rto_rpo_and_finds_damage() {
    let h = repo(Some("64K"));
    let redis = Redis::start();
    redis.populate(20_000, 100, 1);
    let dir = h.join("redis");
    std::fs::create_dir(&dir).unwrap();
    redis.save_to(&dir.join("dump.rdb"));
    let rdb = std::fs::read(dir.join("dump.rdb")).unwrap();
    h.snapshot_stdin("dump.rdb", &rdb, &["--tag", "redis"]);
    h.snapshot_stdin("db.sql", &text_like(1 << 20, 3), &["--tag", "postgres"]);
    let metrics = h.join("vault.prom");
    let m = metrics.to_str().unwrap();

    // A real validation of the restored RDB file.
    let out = h.run(&[
        "drill",
        "--tag",
        "redis",
        "--validate",
        "redis-check-rdb {}",
        "--json",
        "--metrics-file",
        m,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = last_json(&out.stdout);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["bytes"], rdb.len() as u64, "{report}");
    assert!(report["restore_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["snapshot_age_seconds"].as_f64().unwrap() >= 0.0);
    // A validation that fails fails the drill.
    let out = h.run(&["drill", "--tag", "redis", "--validate", "sh -c 'exit 4' {}"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));

    // Both groups, verify-only, with metrics.
    let out = h.run(&["drill", "--verify-only", "--json", "--metrics-file", m]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["message_type"] == "drill")
        .collect();
    assert_eq!(lines.len(), 2, "one per group: {lines:?}");
    let samples = parse(&std::fs::read_to_string(&metrics).unwrap());
    for tags in ["redis", "postgres"] {
        let ok = find(
            &samples,
            "vault_last_success_timestamp_seconds",
            Some("drill"),
            tags,
        );
        assert!(ok.is_some_and(|s| s.value > 1.7e9), "{tags}: {samples:?}");
        assert!(find(&samples, "vault_restore_seconds", Some("drill"), tags).is_some());
        assert_eq!(
            find(&samples, "vault_errors", Some("drill"), tags)
                .unwrap()
                .value,
            0.0
        );
    }

    // `vault metrics`: snapshots and the latest time per group.
    let out = h.run(&["metrics"]);
    assert!(out.status.success());
    let state = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        find(&state, "vault_snapshots", Some("metrics"), "redis")
            .unwrap()
            .value,
        1.0
    );
    assert!(
        find(
            &state,
            "vault_last_snapshot_timestamp_seconds",
            Some("metrics"),
            "postgres"
        )
        .unwrap()
        .value
            > 1.7e9
    );
    assert!(state
        .iter()
        .any(|s| s.name == "vault_repository_packs" && s.value >= 1.0));

    // forget, prune and check record their runs too.
    h.ok(&["check", "--metrics-file", m]);
    let checked = parse(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(
        find(&checked, "vault_errors", Some("check"), "")
            .unwrap()
            .value,
        0.0
    );

    // Damage a data pack: the drill fails and says so in its metrics, which
    // keep the last success of the earlier drill.
    let packs = h.repo_pack_paths();
    let biggest = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(biggest).unwrap();
    b[200] ^= 0x55;
    std::fs::write(biggest, b).unwrap();
    let out = h.run(&["drill", "--verify-only", "--metrics-file", m]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = h.run(&["check", "--read-data", "--metrics-file", m]);
    assert_eq!(out.status.code(), Some(1));
    let after = parse(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(
        find(&after, "vault_errors", Some("check"), "")
            .unwrap()
            .value,
        1.0
    );
    let failed: Vec<&Sample> = after
        .iter()
        .filter(|s| s.name == "vault_errors" && s.labels["operation"] == "drill" && s.value == 1.0)
        .collect();
    assert!(!failed.is_empty(), "{after:?}");
    for s in failed {
        let tags = &s.labels["tags"];
        assert!(
            find(
                &after,
                "vault_last_success_timestamp_seconds",
                Some("drill"),
                tags
            )
            .is_some(),
            "the earlier success of {tags} is kept"
        );
    }
}
