//! `vault snapshot --profile/--all-profiles` from a TOML config with a real
//! `pg_dump` command and a tree with excludes, and `--metrics-file`.

use vault_cli::metrics::{parse, Sample};
use vault_tests::servers::Postgres;
use vault_tests::{last_json, text_like};

use super::repo;

fn find<'a>(m: &'a [Sample], name: &str, tags: &str) -> Option<&'a Sample> {
    m.iter()
        .find(|s| s.name == name && s.labels.get("tags").map(String::as_str) == Some(tags))
}

#[test]
fn all_profiles_back_up_pg_dump_and_a_tree_and_write_metrics() {
    let h = repo(None);
    let pg = Postgres::start();
    pg.pgbench_init("shop", 1);
    let tree = h.join("app");
    std::fs::create_dir_all(tree.join("cache")).unwrap();
    std::fs::write(tree.join("app.conf"), text_like(5_000, 1)).unwrap();
    std::fs::write(tree.join("scratch.tmp"), b"temporary").unwrap();
    std::fs::write(tree.join("cache/blob"), b"cached").unwrap();
    let dump = pg
        .pg_dump_command("shop")
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cfg = h.join("vault.toml");
    std::fs::write(
        &cfg,
        format!(
            "[profiles.postgres]\ntags = [\"postgres\"]\ncommand = \"{}\"\nstdin-name = \"shop.sql\"\n\
             [profiles.postgres.retention]\nkeep-last = 2\n\n\
             [profiles.config]\ntags = [\"config\"]\npaths = [\"{}\"]\nexcludes = [\"*.tmp\", \"cache\"]\n\n\
             [profiles.broken]\ntags = [\"broken\"]\ncommand = \"sh -c 'exit 3'\"\n",
            dump.replace('\\', "\\\\").replace('"', "\\\""),
            tree.display()
        ),
    )
    .unwrap();
    let metrics = h.join("vault.prom");
    let (c, m) = (cfg.to_str().unwrap(), metrics.to_str().unwrap());
    let out = h.run(&[
        "snapshot",
        "--config",
        c,
        "--all-profiles",
        "--metrics-file",
        m,
        "--json",
    ]);
    // The broken profile fails the run; the others are saved anyway.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"profile\":\"broken\""), "{stderr}");
    let summaries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message_type"] == "summary")
        .collect();
    let profiles: Vec<&str> = summaries
        .iter()
        .map(|s| s["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["config", "postgres"], "{summaries:?}");

    let sql = h.dump("latest", "shop.sql");
    assert!(
        String::from_utf8_lossy(&sql).contains("PostgreSQL database dump"),
        "a real pg_dump was stored"
    );
    let listing = String::from_utf8(h.ok(&["ls", "latest", "--tag", "config"])).unwrap();
    assert!(listing.contains("app.conf"), "{listing}");
    assert!(!listing.contains("scratch.tmp"), "excluded: {listing}");
    assert!(!listing.contains("cache"), "excluded: {listing}");

    let samples = parse(&std::fs::read_to_string(&metrics).unwrap());
    let pg_ok = find(&samples, "vault_last_success_timestamp_seconds", "postgres").unwrap();
    assert_eq!(pg_ok.labels["operation"], "snapshot");
    assert!(pg_ok.value > 1.7e9);
    assert_eq!(
        find(&samples, "vault_bytes_read", "postgres")
            .unwrap()
            .value,
        sql.len() as f64
    );
    assert_eq!(
        find(&samples, "vault_errors", "postgres").unwrap().value,
        0.0
    );
    assert_eq!(find(&samples, "vault_errors", "broken").unwrap().value, 1.0);
    assert!(find(&samples, "vault_last_success_timestamp_seconds", "broken").is_none());

    // A later run of one profile keeps the other groups' series.
    let out = h.run(&[
        "snapshot",
        "--config",
        c,
        "--profile",
        "postgres",
        "--metrics-file",
        m,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last_json(&out.stdout)["profile"], "postgres");
    let again = parse(&std::fs::read_to_string(&metrics).unwrap());
    assert!(find(&again, "vault_last_success_timestamp_seconds", "config").is_some());
    assert_eq!(find(&again, "vault_errors", "broken").unwrap().value, 1.0);
    assert!(
        find(&again, "vault_last_success_timestamp_seconds", "postgres")
            .unwrap()
            .value
            >= pg_ok.value
    );
    // The same file drives retention.
    h.ok(&["forget", "--config", c, "--profile", "postgres"]);
    let snaps = h.snapshots();
    assert_eq!(
        snaps.iter().filter(|s| s["tags"][0] == "postgres").count(),
        2
    );
}

#[test]
fn profile_errors_are_usage_errors() {
    let h = repo(None);
    let out = h.run(&["snapshot", "--profile", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let cfg = h.join("vault.toml");
    std::fs::write(&cfg, "[profiles.x]\ntags = [\"x\"]\n").unwrap();
    let out = h.run(&[
        "snapshot",
        "--config",
        cfg.to_str().unwrap(),
        "--profile",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile `nope`"));
    let out = h.run(&[
        "snapshot",
        "--config",
        cfg.to_str().unwrap(),
        "--profile",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither paths nor a command"));
}
