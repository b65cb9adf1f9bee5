//! `kill -9` of `vault snapshot` at many points: nothing committed is lost,
//! the repository stays consistent, and the next backup resumes from what the
//! killed ones stored.

use std::io::Write;
use std::process::Stdio;

use vault_tests::{assert_success, random_like, text_like};

use super::harness;

#[test]
fn snapshot_killed_at_30_points_loses_nothing_and_the_retry_resumes() {
    let h = harness();
    h.init(&["--chunk-size", "64K", "--pack-size", "1M"]);
    // A committed snapshot that every kill must leave intact.
    let base = text_like(2 << 20, 1);
    let first = h.snapshot_stdin("base.sql", &base, &[]);
    let first = first["snapshot_id"].as_str().unwrap().to_owned();
    // The big input: incompressible, so it fills many packs.
    let input = random_like(256 << 20, 2);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut furthest = 0;
    for point in 0..30 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill after a random amount of input, 1..255 MiB.
        let cut = (1 << 20) + (rng % (254 << 20)) as usize;
        furthest = furthest.max(cut);
        let mut child = h
            .cmd()
            .args(["snapshot", "--stdin", "--stdin-name", "big.bin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&input[..cut]);
        child.kill().unwrap();
        child.wait().unwrap();
        drop(stdin);
        let out = h.run(&["check", "--read-data"]);
        assert_success(
            &out,
            &["check --read-data", &format!("after kill {point} at {cut}")],
        );
        assert!(h.dump(&first, "base.sql") == base, "kill {point}");
    }
    let snaps = h.snapshots();
    assert_eq!(snaps.len(), 1, "no killed backup committed anything");
    // The retry reuses every pack the killed runs stored (indexed, or
    // adopted from what they left unindexed): it uploads about what no
    // killed run got to, plus what the furthest one had read but not yet
    // packed and stored when it died.
    let stored_before = h.pack_bytes();
    let done = h.snapshot_stdin("big.bin", &input, &[]);
    let uploaded = h.pack_bytes() - stored_before;
    let added = done["bytes_added"].as_u64().unwrap();
    let full = input.len() as u64;
    eprintln!(
        "retry after 30 kills (furthest at {furthest} of {full} bytes): uploaded {uploaded} bytes ({:.1}% of the input), {added} bytes of new chunks",
        uploaded as f64 * 100.0 / full as f64
    );
    // In memory at a kill, never stored: the input batches being chunked and
    // sealed, and the open packs (a few tens of MiB).
    let bound = full - furthest as u64 + (48 << 20);
    assert!(
        uploaded <= bound,
        "the retry uploaded {uploaded} of {full} bytes; what no killed run reached plus in-flight packs is {bound}"
    );
    assert!(uploaded < full / 3, "uploaded {uploaded} of {full}");
    assert!(h.dump(done["snapshot_id"].as_str().unwrap(), "big.bin") == input);
    let out = h.run(&["check", "--read-data"]);
    assert_success(&out, &["check", "--read-data"]);
    // Prune removes what no snapshot uses (the killed runs' leftovers).
    h.ok(&["prune"]);
    let out = h.run(&["check", "--read-data", "--json"]);
    assert_success(&out, &["check"]);
    let report = vault_tests::last_json(&out.stdout);
    assert_eq!(
        report["report"]["info"].as_array().unwrap().len(),
        0,
        "{report}"
    );
}
