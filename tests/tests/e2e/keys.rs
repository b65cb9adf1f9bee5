//! `vault key`: several passwords, removal rules, password change.

use vault_tests::last_json;

use super::repo;

fn keys(h: &vault_tests::Harness) -> Vec<serde_json::Value> {
    let out = h.ok(&["key", "list", "--json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&out).unwrap()
}

#[test]
fn keys_can_be_added_removed_and_changed_without_touching_data() {
    let mut h = repo(None);
    h.snapshot_stdin("db.sql", b"precious", &[]);
    let first = keys(&h);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["current"], true);
    let first_id = first[0]["id"].as_str().unwrap().to_owned();

    let pwfile = h.join("second");
    std::fs::write(&pwfile, "second password\n").unwrap();
    let out = h.ok(&[
        "key",
        "add",
        "--new-password-file",
        pwfile.to_str().unwrap(),
        "--json",
    ]);
    let second_id = last_json(&out)["key_id"].as_str().unwrap().to_owned();
    assert_eq!(keys(&h).len(), 2);

    // The key in use cannot be removed.
    let out = h.run(&["key", "remove", &first_id[..8]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));

    // With the second password, remove the first key: the old password stops working.
    let first_pw = std::mem::replace(&mut h.password, "second password".into());
    let removed = last_json(&h.ok(&["key", "remove", &first_id[..8], "--json"]));
    assert_eq!(
        (removed["message_type"].as_str(), removed["key_id"].as_str()),
        (Some("key_removed"), Some(first_id.as_str()))
    );
    let listed = keys(&h);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], second_id);
    assert!(h.dump("latest", "db.sql") == b"precious");
    let old = h
        .cmd()
        .env("VAULT_PASSWORD", &first_pw)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(
        old.status.code(),
        Some(12),
        "the removed password no longer opens it"
    );

    // The last key is never removed; passwd replaces it.
    let out = h.run(&["key", "remove", &second_id[..8], "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["message_type"], "error");
    assert!(
        err["message"].as_str().unwrap().contains("last key"),
        "{err}"
    );
    assert_eq!(keys(&h).len(), 1);
    let out = h
        .cmd()
        .env("VAULT_NEW_PASSWORD", "third password")
        .args(["key", "passwd", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third_id = last_json(&out.stdout)["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(third_id, second_id);
    assert_eq!(
        h.run(&["snapshots"]).status.code(),
        Some(12),
        "second password is gone"
    );
    h.password = "third password".into();
    assert_eq!(keys(&h).len(), 1);
    assert!(h.dump("latest", "db.sql") == b"precious");
}
