//! `vault stats`, `diff`, `cat`, `completions` and `man`.

use vault_tests::{last_json, text_like};

use super::repo;

#[test]
fn stats_diff_cat_completions_and_man() {
    let h = repo(Some("64K"));
    let tree = h.join("app");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.conf"), text_like(50_000, 1)).unwrap();
    std::fs::write(tree.join("b.conf"), text_like(80_000, 2)).unwrap();
    let s1 = h.snapshot(&[tree.to_str().unwrap()]);
    std::fs::remove_file(tree.join("a.conf")).unwrap();
    std::fs::write(tree.join("b.conf"), text_like(90_000, 3)).unwrap();
    std::fs::write(tree.join("c.conf"), text_like(70_000, 4)).unwrap();
    let s2 = h.snapshot(&[tree.to_str().unwrap()]);
    let (id1, id2) = (
        s1["snapshot_id"].as_str().unwrap(),
        s2["snapshot_id"].as_str().unwrap(),
    );

    let d = last_json(&h.ok(&["diff", id1, id2, "--json"]));
    let paths = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(paths("added"), ["c.conf"], "{d}");
    assert_eq!(paths("removed"), ["a.conf"], "{d}");
    assert_eq!(paths("changed"), ["b.conf"], "{d}");
    assert_eq!(d["changed"][0]["new_size"], 90_000);

    let r = last_json(&h.ok(&["stats", "--json"]));
    assert_eq!(r["repository"]["snapshots"], 2, "{r}");
    assert!(r["repository"]["stored_bytes"].as_u64().unwrap() > 0);
    assert!(
        r["repository"]["compression_ratio"].as_f64().unwrap() > 1.5,
        "{r}"
    );
    let s = last_json(&h.ok(&["stats", id2, "--json"]));
    assert_eq!(s["snapshot"]["files"], 2, "{s}");
    assert_eq!(s["snapshot"]["logical_bytes"], 160_000);
    let unique = s["snapshot"]["unique_bytes"].as_u64().unwrap();
    assert!(
        (160_000..170_000).contains(&unique),
        "b and c are its own: {s}"
    );

    let cfg: serde_json::Value = serde_json::from_slice(&h.ok(&["cat", "config"])).unwrap();
    assert_eq!(cfg["chunker"]["avg_size"], 65_536);
    let snap: serde_json::Value =
        serde_json::from_slice(&h.ok(&["cat", "snapshot", "latest"])).unwrap();
    assert_eq!(snap["id"], id2);
    let backend = h.backend();
    let first = |kind| backend.list(kind).unwrap()[0].0.clone();
    let idx: serde_json::Value =
        serde_json::from_slice(&h.ok(&["cat", "index", &first(vault_store::FileType::Index)[..8]]))
            .unwrap();
    assert!(!idx["packs"].as_array().unwrap().is_empty(), "{idx}");
    let key: serde_json::Value =
        serde_json::from_slice(&h.ok(&["cat", "key", &first(vault_store::FileType::Key)[..8]]))
            .unwrap();
    assert_eq!(key["key"]["kdf"], "argon2id");
    let pack: serde_json::Value =
        serde_json::from_slice(&h.ok(&["cat", "pack", &first(vault_store::FileType::Pack)[..8]]))
            .unwrap();
    assert!(!pack["blobs"].as_array().unwrap().is_empty());
    assert_eq!(h.run(&["cat", "index"]).status.code(), Some(2));

    let bash = String::from_utf8(h.ok(&["completions", "bash"])).unwrap();
    assert!(
        bash.contains("vault") && bash.contains("snapshot"),
        "{bash}"
    );
    let man = String::from_utf8(h.ok(&["man"])).unwrap();
    assert!(man.contains(".TH") && man.contains("snapshot"));
}

#[test]
fn json_progress_lines_come_before_the_final_object() {
    use std::io::Write;
    let h = repo(None);
    let mut child = h
        .cmd()
        .args(["snapshot", "--stdin", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..4 {
        stdin.write_all(&text_like(1 << 20, i)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, status) = lines.split_last().unwrap();
    assert_eq!(last["message_type"], "summary");
    assert!(!status.is_empty(), "no status line in {lines:?}");
    for s in status {
        assert_eq!(s["message_type"], "status");
        assert_eq!(s["operation"], "snapshot");
        assert!(s["bytes_done"].as_u64().unwrap() > 0);
    }
    // Unlock reports in JSON too.
    let u = last_json(&h.ok(&["unlock", "--json"]));
    assert_eq!(u["message_type"], "unlock");
    assert_eq!(u["removed"].as_array().unwrap().len(), 0);
}

#[test]
fn ls_restore_prune_and_metrics_speak_json() {
    let h = repo(Some("64K"));
    let data = text_like(300_000, 5);
    h.snapshot_stdin("db.sql", &data, &[]);
    let ls: Vec<serde_json::Value> =
        serde_json::from_slice(&h.ok(&["ls", "latest", "--json"])).unwrap();
    let file = ls.iter().find(|e| e["path"] == "/db.sql").unwrap();
    assert_eq!(file["type"], "file");
    assert_eq!(file["size"], 300_000);
    let target = h.join("out");
    let r = last_json(&h.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        (
            r["message_type"].as_str(),
            r["files"].as_u64(),
            r["bytes"].as_u64()
        ),
        (Some("summary"), Some(1), Some(300_000))
    );
    let p = last_json(&h.ok(&["prune", "--json"]));
    assert_eq!(p["message_type"], "prune");
    assert!(p["report"]["packs"].as_u64().unwrap() >= 1, "{p}");
    let m = last_json(&h.ok(&["metrics", "--json"]));
    let rows = m["metrics"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["name"] == "vault_snapshots" && r["value"] == 1.0),
        "{m}"
    );
}
