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
    for point in 0..30 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill after a random amount of input, 1..255 MiB.
        let cut = (1 << 20) + (rng % (254 << 20)) as usize;
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
        let out = h.run(&["check"]);
        assert_success(&out, &["check", &format!("after kill {point} at {cut}")]);
        assert!(h.dump(&first, "base.sql") == base, "kill {point}");
    }
    let snaps = h.snapshots();
    assert_eq!(snaps.len(), 1, "no killed backup committed anything");
    // The retry reuses what the killed runs stored and indexed.
    let done = h.snapshot_stdin("big.bin", &input, &[]);
    let added = done["bytes_added"].as_u64().unwrap();
    eprintln!(
        "retry after 30 kills: {added} of {} bytes added",
        input.len()
    );
    assert!(
        added < input.len() as u64 / 2,
        "the retry stored {added} of {} bytes again",
        input.len()
    );
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
