//! Every backend passes the conformance suite; plus local-directory specifics.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use vault_store::testing::run_suite;
use vault_store::{
    open_url, Backend, FaultPlan, FaultyBackend, FileType, Handle, LocalDir, MemoryBackend,
    StoreErrorKind,
};

fn pack(name: &str) -> Handle {
    Handle::new(FileType::Pack, name).unwrap()
}

#[test]
fn memory_conforms() {
    run_suite(&MemoryBackend::new());
}

#[test]
fn local_conforms() {
    let dir = tempfile::tempdir().unwrap();
    run_suite(&LocalDir::new(dir.path().join("repo")));
}

#[test]
fn faulty_without_faults_conforms() {
    run_suite(&FaultyBackend::new(
        MemoryBackend::new(),
        FaultPlan::default(),
    ));
}

#[test]
fn wrappers_conform() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("repo").display());
    let arc: Arc<dyn Backend> = open_url(&url).unwrap();
    run_suite(&arc);
    let boxed: Box<dyn Backend> = Box::new(FaultyBackend::new(arc, FaultPlan::default()));
    run_suite(&boxed);
}

/// Every file name under `root`, recursively.
fn all_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(all_files(&entry.path()));
        } else {
            out.push(entry.file_name().into_string().unwrap());
        }
    }
    out
}

#[test]
fn local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend.init_layout().unwrap();
    for sub in [
        "keys",
        "index",
        "snapshots",
        "locks",
        "data/00",
        "data/7f",
        "data/ff",
    ] {
        assert!(dir.path().join(sub).is_dir(), "{sub}");
    }
    backend
        .create(&pack("3fa9"), Bytes::from_static(b"p"))
        .unwrap();
    backend
        .create(&Handle::config(), Bytes::from_static(b"c"))
        .unwrap();
    assert_eq!(fs::read(dir.path().join("data/3f/3fa9")).unwrap(), b"p");
    assert_eq!(fs::read(dir.path().join("config")).unwrap(), b"c");
    assert_eq!(backend.root(), dir.path());
}

#[test]
fn local_creates_kind_dirs_lazily_but_not_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend
        .create(&pack("abcd"), Bytes::from_static(b"x"))
        .unwrap();
    backend
        .create(&Handle::new(FileType::Lock, "l").unwrap(), Bytes::new())
        .unwrap();
    assert_eq!(
        backend.list(FileType::Pack).unwrap(),
        [("abcd".to_owned(), 1)]
    );

    let missing = LocalDir::new(dir.path().join("not-there"));
    let err = missing.create(&pack("abcd"), Bytes::new()).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!dir.path().join("not-there").exists());
    assert!(missing.list(FileType::Pack).unwrap().is_empty());
}

#[test]
fn local_never_lists_temp_or_stray_files() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend.init_layout().unwrap();
    backend
        .create(&pack("ab12"), Bytes::from_static(b"data"))
        .unwrap();
    fs::write(dir.path().join("data/ab/.tmp-0123abcd"), b"partial").unwrap();
    fs::write(dir.path().join("data/ab/cd99"), b"wrong prefix").unwrap();
    fs::write(dir.path().join("data/README"), b"stray").unwrap();
    fs::create_dir(dir.path().join("data/ab/sub")).unwrap();
    fs::write(dir.path().join("keys/.tmp-ff"), b"partial").unwrap();
    fs::write(dir.path().join("keys/Upper"), b"invalid name").unwrap();

    assert_eq!(
        backend.list(FileType::Pack).unwrap(),
        [("ab12".to_owned(), 4)]
    );
    assert!(backend.list(FileType::Key).unwrap().is_empty());
}

#[test]
fn local_create_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend.init_layout().unwrap();
    backend
        .create(&pack("ab12"), Bytes::from_static(b"one"))
        .unwrap();
    backend
        .create(&pack("ab12"), Bytes::from_static(b"two"))
        .unwrap_err();
    assert_eq!(all_files(dir.path()), ["ab12"]);
}

#[test]
fn local_does_not_overwrite_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend.init_layout().unwrap();
    fs::write(dir.path().join("keys/k1"), b"precious").unwrap();
    let key = Handle::new(FileType::Key, "k1").unwrap();
    let err = backend
        .create(&key, Bytes::from_static(b"new"))
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::AlreadyExists);
    assert_eq!(fs::read(dir.path().join("keys/k1")).unwrap(), b"precious");
}

#[test]
fn local_error_messages_name_object_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::new(dir.path());
    backend.init_layout().unwrap();
    let location = dir.path().display().to_string();
    let h = pack("3fa9");
    let err = backend.read(&h).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_not_found());
    assert!(
        msg.contains("read") && msg.contains("pack 3fa9") && msg.contains(&location),
        "{msg}"
    );

    backend.create(&h, Bytes::from_static(b"abc")).unwrap();
    let err = backend.create(&h, Bytes::new()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("create pack 3fa9 in") && msg.contains(&location),
        "{msg}"
    );

    let err = backend.read_range(&h, 2, 2).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Truncated);
    assert!(err.to_string().contains(&location), "{err}");
}

#[cfg(unix)]
#[test]
fn local_reads_work_in_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;

    fn chmod_tree(root: &Path, mode: u32) {
        for entry in fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                chmod_tree(&path, mode);
            }
        }
        fs::set_permissions(root, fs::Permissions::from_mode(mode)).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let backend = LocalDir::new(&root);
    backend.init_layout().unwrap();
    let snap = Handle::new(FileType::Snapshot, "s1").unwrap();
    backend
        .create(&pack("ab12"), Bytes::from_static(b"pack data"))
        .unwrap();
    backend
        .create(&snap, Bytes::from_static(b"snapshot"))
        .unwrap();
    backend
        .create(&Handle::config(), Bytes::from_static(b"cfg"))
        .unwrap();

    chmod_tree(&root, 0o555);
    let checks = std::panic::catch_unwind(|| {
        assert_eq!(
            backend.read(&snap).unwrap(),
            Bytes::from_static(b"snapshot")
        );
        assert_eq!(
            backend.read_range(&pack("ab12"), 5, 4).unwrap(),
            Bytes::from_static(b"data")
        );
        assert_eq!(backend.size(&Handle::config()).unwrap(), 3);
        assert_eq!(
            backend.list(FileType::Pack).unwrap(),
            [("ab12".to_owned(), 9)]
        );
        assert_eq!(
            backend.list(FileType::Config).unwrap(),
            [("config".to_owned(), 3)]
        );
        assert_eq!(
            backend.list(FileType::Snapshot).unwrap(),
            [("s1".to_owned(), 8)]
        );
    });
    // Restore permissions so the temporary directory can be removed.
    chmod_tree(&root, 0o755);
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn s3_conforms() {
    let server = vault_store::testing::S3Server::start("conformance");
    let backend = server.backend("repo/one");
    vault_store::testing::run_suite(&backend);
    // A second prefix in the same bucket is a separate repository.
    let other = server.backend("repo/two");
    assert!(other.list(FileType::Snapshot).unwrap().is_empty());
}

#[test]
fn s3_missing_bucket_is_not_found_and_bad_endpoint_is_named() {
    let server = vault_store::testing::S3Server::start("exists");
    let settings = server.settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let missing =
        vault_store::CloudBackend::from_url_with("s3://no-such-bucket/x", &pairs).unwrap();
    let err = missing.read(&Handle::config()).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // Nothing listens on this port: the error names the endpoint after retries.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead_port}");
    let mut pairs2: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| *k != "aws_endpoint")
        .copied()
        .collect();
    pairs2.push(("aws_endpoint", &dead));
    pairs2.push(("vault_max_retries", "2"));
    let unreachable = vault_store::CloudBackend::from_url_with("s3://exists/x", &pairs2).unwrap();
    let err = unreachable.read(&Handle::config()).unwrap_err();
    assert!(!err.is_not_found());
    assert!(err.to_string().contains("s3://exists/x"), "{err}");
    assert!(
        err.to_string().contains(&dead),
        "the endpoint is named: {err}"
    );
}

#[test]
fn s3_large_objects_go_in_parts_and_stay_create_only() {
    let server = vault_store::testing::S3Server::start("multipart");
    let backend = server.backend("big");
    let h = Handle::new(FileType::Pack, "aa00").unwrap();
    let data: Bytes = (0..(vault_store::cloud::MULTIPART_THRESHOLD + 3 * 1024 * 1024))
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    backend.create(&h, data.clone()).unwrap();
    assert_eq!(backend.size(&h).unwrap(), data.len() as u64);
    assert_eq!(backend.read(&h).unwrap(), data);
    let again = backend.create(&h, data.slice(..10)).unwrap_err();
    assert_eq!(again.kind(), StoreErrorKind::AlreadyExists);
    assert_eq!(backend.read_range(&h, 5, 10).unwrap(), data.slice(5..15));
}

#[test]
fn s3_rejected_credentials_are_named_in_one_line() {
    let server = vault_store::testing::S3Server::start_with("locked", true);
    let backend = server.backend("repo");
    let err = backend.read(&Handle::config()).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::PermissionDenied, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("credentials"), "{msg}");
    assert!(msg.contains("InvalidAccessKeyId"), "{msg}");
    assert!(
        !msg.contains('\n') && !msg.contains("<?xml"),
        "one line: {msg}"
    );
}
