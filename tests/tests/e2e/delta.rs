//! Delta-stored chunks through every path of the binary: dump, restore,
//! copy, check --read-data, prune with repack, repair index; on a local
//! repository and on S3.

use vault_tests::{assert_success, last_json, mutate_lines, text_like, Harness, Store};

use super::{repo, repo_on};

/// Day 1 and day 2 of a "dump" whose changes are spread over every chunk.
fn two_days(h: &Harness) -> (Vec<u8>, Vec<u8>, String, String) {
    let day1 = text_like(4 << 20, 21);
    let day2 = mutate_lines(&day1, 2, 22);
    let d1 = h.snapshot_stdin("db.sql", &day1, &["--time", "2026-11-01T03:00:00Z"]);
    let d2 = h.snapshot_stdin("db.sql", &day2, &["--time", "2026-11-02T03:00:00Z"]);
    assert!(
        d2["blobs_delta"].as_u64().unwrap() > 0,
        "day 2 stored no delta: {d2}"
    );
    assert!(
        d2["bytes_stored"].as_u64().unwrap() * 5 < d1["bytes_stored"].as_u64().unwrap(),
        "day 2 is not much smaller than day 1: {d1} {d2}"
    );
    let id = |v: &serde_json::Value| v["snapshot_id"].as_str().unwrap().to_owned();
    (day1, day2, id(&d1), id(&d2))
}

fn check_read_data(h: &Harness) {
    let out = h.run(&["check", "--read-data", "--json"]);
    assert_success(&out, &["check", "--read-data"]);
    let report = last_json(&out.stdout);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["report"]["problems"].as_array().unwrap().len(),
        0,
        "{report}"
    );
    assert!(
        report["report"]["packs_read"].as_u64().unwrap() > 0,
        "{report}"
    );
}

both!(every_path_round_trips_delta_chunks, |store| {
    let h = repo_on(store, Some("64K"));
    let (day1, day2, id1, id2) = two_days(&h);
    assert!(h.dump(&id1, "db.sql") == day1);
    assert!(h.dump(&id2, "db.sql") == day2);
    let target = h.join("restore");
    h.ok(&["restore", &id2, "--target", target.to_str().unwrap()]);
    assert!(std::fs::read(target.join("db.sql")).unwrap() == day2);
    check_read_data(&h);

    // Copy into a repository with its own keys: deltas are rebuilt there.
    let dest = repo(Some("64K"));
    let mut c = dest.cmd();
    if store == Store::S3 {
        for (k, v) in h.s3_env() {
            c.env(k, v);
        }
    }
    let out = c
        .env("VAULT_FROM_REPOSITORY", &h.repo)
        .env("VAULT_FROM_PASSWORD", &h.password)
        .args(["copy", "--json"])
        .output()
        .unwrap();
    assert_success(&out, &["copy"]);
    assert!(dest.dump("latest", "db.sql") == day2, "the copy of day 2");
    check_read_data(&dest);

    // Forget day 1 and prune with repacking: day 2's bases are kept.
    h.ok(&["forget", &id1]);
    let out = h.run(&["prune", "--max-unused", "0", "--json"]);
    assert_success(&out, &["prune"]);
    assert!(h.dump(&id2, "db.sql") == day2, "day 2 after prune");
    check_read_data(&h);

    // Rebuild the index from the packs: deltas and their bases survive.
    h.ok(&["repair", "index"]);
    assert!(h.dump(&id2, "db.sql") == day2, "day 2 after repair index");
    check_read_data(&h);
    // Another day after the repair still finds bases (sketches kept).
    let day3 = mutate_lines(&day2, 2, 23);
    let d3 = h.snapshot_stdin("db.sql", &day3, &["--time", "2026-11-03T03:00:00Z"]);
    assert!(d3["blobs_delta"].as_u64().unwrap() > 0, "{d3}");
    assert!(h.dump(d3["snapshot_id"].as_str().unwrap(), "db.sql") == day3);
});

#[test]
fn init_no_delta_stores_whole_chunks() {
    let h = super::harness();
    let out = h.run(&["init", "--no-delta", "--chunk-size", "64K", "--json"]);
    assert_success(&out, &["init"]);
    assert_eq!(last_json(&out.stdout)["delta"], false);
    let day1 = text_like(1 << 20, 31);
    h.snapshot_stdin("db.sql", &day1, &[]);
    let d2 = h.snapshot_stdin("db.sql", &mutate_lines(&day1, 2, 32), &[]);
    assert_eq!(d2["blobs_delta"], 0, "{d2}");
}
