//! `vault copy` between local and S3 repositories.

use vault_tests::{assert_same_tree, assert_success, last_json, text_like, Harness, Store};

use super::{repo, repo_on};

fn copy(to: &Harness, from: &Harness, extra_env: &[(&'static str, String)]) -> serde_json::Value {
    let mut c = to.cmd();
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.env("VAULT_FROM_REPOSITORY", &from.repo)
        .env("VAULT_FROM_PASSWORD", &from.password);
    let out = c.args(["copy", "--json"]).output().unwrap();
    assert_success(&out, &["copy"]);
    last_json(&out.stdout)
}

#[test]
fn copy_local_to_s3_to_local_byte_exact_and_idempotent() {
    // The source has its own password and chunk size.
    let mut src = super::harness();
    src.password = "source password".into();
    src.init(&["--chunk-size", "64K"]);
    let tree = src.join("tree");
    for d in 0..5 {
        std::fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..20 {
            std::fs::write(
                tree.join(format!("d{d}/f{f}")),
                text_like(5_000 + f * 3_000, (d * 100 + f) as u64),
            )
            .unwrap();
        }
    }
    let stream = text_like(3 << 20, 9);
    src.snapshot(&[tree.to_str().unwrap(), "--tag", "config"]);
    src.snapshot_stdin("db.sql", &stream, &["--tag", "db"]);

    let s3 = repo_on(Store::S3, None);
    let first = copy(&s3, &src, &[]);
    assert_eq!(first["copied"].as_array().unwrap().len(), 2, "{first}");
    assert!(first["blobs_added"].as_u64().unwrap() > 100, "{first}");
    let again = copy(&s3, &src, &[]);
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2, "{again}");
    assert_eq!(
        again["blobs_read"], 0,
        "copying twice reads nothing: {again}"
    );
    assert_eq!(again["blobs_added"], 0);

    let back = repo(None);
    let third = copy(&back, &s3, &s3.s3_env());
    assert_eq!(third["copied"].as_array().unwrap().len(), 2, "{third}");
    let target = back.join("restored");
    back.ok(&[
        "restore",
        "latest",
        "--tag",
        "config",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_same_tree(&tree, &target.join(tree.strip_prefix("/").unwrap()));
    assert!(back.ok(&["dump", "latest", "db.sql", "--tag", "db"]) == stream);
    // The copies keep time, host, tags and paths.
    let (a, b) = (src.snapshots(), back.snapshots());
    for key in ["time", "hostname", "tags", "paths"] {
        let mut x: Vec<String> = a.iter().map(|s| s[key].to_string()).collect();
        let mut y: Vec<String> = b.iter().map(|s| s[key].to_string()).collect();
        x.sort();
        y.sort();
        assert_eq!(x, y, "{key}");
    }
}
