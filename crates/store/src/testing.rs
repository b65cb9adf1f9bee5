//! A conformance suite for [`Backend`] implementations.
//!
//! [`run_suite`] exercises the whole contract documented on [`Backend`] and
//! panics (through `assert!`) at the first violation. Every backend's tests
//! should run it on a fresh, empty instance:
//!
//! ```
//! vault_store::testing::run_suite(&vault_store::MemoryBackend::new());
//! ```

use std::collections::BTreeMap;
use std::sync::Barrier;

use bytes::Bytes;

use crate::backend::Backend;
use crate::error::{StoreError, StoreErrorKind};
use crate::handle::{FileType, Handle};

/// Run the conformance suite against an empty `backend`. Panics on a violation.
///
/// The backend is left empty again at the end (everything it created is deleted).
pub fn run_suite(backend: &dyn Backend) {
    layout_and_empty_listing(backend);
    missing_objects(backend);
    roundtrips(backend);
    create_only(backend);
    ranges(backend);
    listing(backend);
    deletion(backend);
    config(backend);
    racing_creates(backend);
    delete_everything(backend);
}

fn handle(kind: FileType, name: &str) -> Handle {
    Handle::new(kind, name).expect("valid test handle")
}

/// `len` deterministic pseudo-random bytes, different for each `seed`.
pub(crate) fn payload(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Assert that `result` failed with `kind` and that the message names the
/// object and the backend's location.
fn assert_error<T: std::fmt::Debug>(
    backend: &dyn Backend,
    result: Result<T, StoreError>,
    kind: StoreErrorKind,
    object: &Handle,
) {
    let err = result.expect_err(&format!("expected {kind:?} for {object}"));
    assert_eq!(err.kind(), kind, "wrong kind for {object}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&object.to_string()),
        "message does not name {object}: {msg}"
    );
    assert!(
        msg.contains(&backend.location()),
        "message does not name the location: {msg}"
    );
}

fn sorted(mut list: Vec<(String, u64)>) -> Vec<(String, u64)> {
    list.sort();
    list
}

fn layout_and_empty_listing(backend: &dyn Backend) {
    backend
        .init_layout()
        .expect("init_layout on an empty location");
    backend
        .init_layout()
        .expect("init_layout must be idempotent");
    for kind in FileType::ALL {
        let list = backend.list(kind).expect("list");
        assert!(
            list.is_empty(),
            "{kind} objects in an empty backend: {list:?}"
        );
    }
}

fn missing_objects(backend: &dyn Backend) {
    let missing = handle(FileType::Pack, "00missing");
    assert_error(
        backend,
        backend.read(&missing),
        StoreErrorKind::NotFound,
        &missing,
    );
    assert_error(
        backend,
        backend.size(&missing),
        StoreErrorKind::NotFound,
        &missing,
    );
    let range = backend.read_range(&missing, 0, 1);
    assert!(range
        .expect_err("read_range of a missing object")
        .is_not_found());
    assert!(backend.read(&Handle::config()).unwrap_err().is_not_found());
}

fn roundtrips(backend: &dyn Backend) {
    let cases = [
        (handle(FileType::Key, "empty"), Bytes::new()),
        (
            handle(FileType::Snapshot, "small"),
            Bytes::from_static(b"hello, vault"),
        ),
        (handle(FileType::Pack, "a1big"), payload(1, 1 << 20)),
    ];
    for (h, data) in cases {
        backend.create(&h, data.clone()).expect("create");
        assert_eq!(backend.read(&h).expect("read"), data, "roundtrip of {h}");
        assert_eq!(
            backend.size(&h).expect("size"),
            data.len() as u64,
            "size of {h}"
        );
        backend.delete(&h).expect("delete");
    }
}

fn create_only(backend: &dyn Backend) {
    let h = handle(FileType::Index, "once");
    let original = payload(2, 1000);
    backend.create(&h, original.clone()).expect("first create");
    let second = backend.create(&h, payload(3, 10));
    assert_error(backend, second, StoreErrorKind::AlreadyExists, &h);
    assert_eq!(
        backend.read(&h).unwrap(),
        original,
        "create replaced an existing object"
    );
    assert_eq!(backend.size(&h).unwrap(), 1000);
    backend.delete(&h).unwrap();
}

fn ranges(backend: &dyn Backend) {
    let h = handle(FileType::Pack, "ffrange");
    let data = payload(4, 4096);
    backend.create(&h, data.clone()).unwrap();
    let read = |offset: u64, length: u64| backend.read_range(&h, offset, length);

    assert_eq!(read(100, 1000).unwrap(), data.slice(100..1100), "middle");
    assert_eq!(read(4000, 96).unwrap(), data.slice(4000..), "up to the end");
    assert_eq!(read(0, 4096).unwrap(), data, "whole object");
    assert_eq!(read(0, 0).unwrap(), Bytes::new(), "zero length at start");
    assert_eq!(
        read(4096, 0).unwrap(),
        Bytes::new(),
        "zero length at the end"
    );
    for (offset, length) in [(4000, 97), (4096, 1), (5000, 0), (0, 4097), (1, u64::MAX)] {
        let result = read(offset, length);
        assert_error(backend, result, StoreErrorKind::Truncated, &h);
    }
    backend.delete(&h).unwrap();
}

fn listing(backend: &dyn Backend) {
    let mut expected: BTreeMap<FileType, Vec<(String, u64)>> = BTreeMap::new();
    let packs = ["00aa", "00ab", "0f12", "ab-c", "ff", "zz-top"];
    let mut objects: Vec<(FileType, &str)> = packs.iter().map(|n| (FileType::Pack, *n)).collect();
    objects.extend([
        (FileType::Key, "k1"),
        (FileType::Key, "k2"),
        (FileType::Index, "i1"),
        (FileType::Snapshot, "s1"),
    ]);
    for (i, (kind, name)) in objects.into_iter().enumerate() {
        let len = i * 10;
        backend
            .create(&handle(kind, name), payload(i as u64, len))
            .unwrap();
        expected
            .entry(kind)
            .or_default()
            .push((name.to_owned(), len as u64));
    }
    for kind in FileType::ALL {
        let want = sorted(expected.get(&kind).cloned().unwrap_or_default());
        assert_eq!(
            sorted(backend.list(kind).unwrap()),
            want,
            "list of {kind} objects"
        );
    }
}

fn deletion(backend: &dyn Backend) {
    let h = handle(FileType::Pack, "0f12");
    backend.delete(&h).expect("delete");
    assert_error(backend, backend.read(&h), StoreErrorKind::NotFound, &h);
    assert!(backend.size(&h).unwrap_err().is_not_found());
    backend.delete(&h).expect("deleting an absent object is Ok");
    let names: Vec<_> = backend
        .list(FileType::Pack)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !names.contains(&"0f12".to_owned()),
        "deleted pack still listed: {names:?}"
    );
    // The object can be created again after deletion.
    backend.create(&h, Bytes::from_static(b"again")).unwrap();
    assert_eq!(backend.read(&h).unwrap(), Bytes::from_static(b"again"));
}

fn config(backend: &dyn Backend) {
    let h = Handle::config();
    let data = Bytes::from_static(b"{\"version\":1}");
    backend.create(&h, data.clone()).expect("create config");
    assert_eq!(backend.read(&h).unwrap(), data);
    assert_eq!(backend.read_range(&h, 1, 9).unwrap(), data.slice(1..10));
    assert_eq!(
        backend.list(FileType::Config).unwrap(),
        [("config".to_owned(), 13)]
    );
    assert_error(
        backend,
        backend.create(&h, Bytes::new()),
        StoreErrorKind::AlreadyExists,
        &h,
    );
    assert_eq!(backend.read(&h).unwrap(), data);
}

fn racing_creates(backend: &dyn Backend) {
    const THREADS: u64 = 8;
    let h = handle(FileType::Lock, "contended");
    let payloads: Vec<Bytes> = (0..THREADS).map(|i| payload(100 + i, 256 * 1024)).collect();
    let barrier = Barrier::new(THREADS as usize);
    let results: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = payloads
            .iter()
            .map(|data| {
                let (h, barrier) = (&h, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    backend.create(h, data.clone())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("create panicked"))
            .collect()
    });
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "racing creates: {results:?}");
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_error(backend, result, StoreErrorKind::AlreadyExists, &h);
    }
    let stored = backend.read(&h).unwrap();
    assert!(
        payloads.contains(&stored),
        "stored object is not one writer's whole payload"
    );
    assert_eq!(
        backend.list(FileType::Lock).unwrap(),
        [("contended".to_owned(), 256 * 1024)]
    );
}

fn delete_everything(backend: &dyn Backend) {
    for kind in FileType::ALL {
        for (name, _) in backend.list(kind).unwrap() {
            backend.delete(&handle(kind, &name)).unwrap();
        }
        assert!(
            backend.list(kind).unwrap().is_empty(),
            "{kind} objects left after delete"
        );
    }
}

/// A private S3-compatible server (moto's server mode) on 127.0.0.1 for
/// tests, with one bucket; stopped on drop.
///
/// The program is `$VAULT_MOTO_SERVER`, else `moto_server` on the `PATH`
/// (`scripts/install-test-deps.sh` installs it in a virtualenv). Tests that
/// need it fail when it is missing: they are never silently skipped.
pub struct S3Server {
    child: std::process::Child,
    port: u16,
    bucket: String,
}

impl S3Server {
    /// Starts the server on a free port and creates bucket `bucket`.
    pub fn start(bucket: &str) -> S3Server {
        Self::start_with(bucket, false)
    }

    /// As [`S3Server::start`]; with `check_credentials`, every request after
    /// the bucket's creation must carry credentials the server knows (none
    /// are known, so every request is refused as unauthenticated).
    pub fn start_with(bucket: &str, check_credentials: bool) -> S3Server {
        let program = std::env::var("VAULT_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut cmd = std::process::Command::new(&program);
        if check_credentials {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
        }
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the S3 test server `{program}`: {e} (run scripts/install-test-deps.sh, or set VAULT_MOTO_SERVER)")
            });
        let server = S3Server {
            child,
            port,
            bucket: bucket.to_owned(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(status) = server.http("PUT", &format!("/{bucket}")) {
                assert!(
                    status == 200,
                    "creating bucket {bucket} answered HTTP {status}"
                );
                return server;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the S3 test server did not answer within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// A bare HTTP request without a body; returns the status code.
    fn http(&self, method: &str, path: &str) -> std::io::Result<u16> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `object_store` settings to reach this server (for [`crate::CloudBackend::from_url_with`]).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "vault-test".into()),
            ("aws_secret_access_key", "vault-test-secret".into()),
            ("aws_region", "us-east-1".into()),
        ]
    }

    /// The same as environment variables, for driving the CLI.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "vault-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "vault-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A backend for `s3://BUCKET/prefix` on this server.
    #[cfg(feature = "cloud")]
    pub fn backend(&self, prefix: &str) -> crate::CloudBackend {
        let settings = self.settings();
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::CloudBackend::from_url_with(&format!("s3://{}/{prefix}", self.bucket), &pairs)
            .expect("S3 backend")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::MemoryBackend;

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        assert_eq!(payload(1, 64), payload(1, 64));
        assert_ne!(payload(1, 64), payload(2, 64));
        assert_eq!(payload(7, 0).len(), 0);
    }

    /// A broken backend: `create` replaces existing objects and short ranges
    /// are returned instead of `Truncated`.
    #[derive(Debug, Default)]
    struct Sloppy {
        inner: MemoryBackend,
        overwrite: bool,
    }

    impl Backend for Sloppy {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn init_layout(&self) -> Result<()> {
            self.inner.init_layout()
        }
        fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
            if self.overwrite {
                self.inner.delete(handle)?;
            }
            self.inner.create(handle, data)
        }
        fn read(&self, handle: &Handle) -> Result<Bytes> {
            self.inner.read(handle)
        }
        fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
            let data = self.inner.read(handle)?;
            let start = (offset as usize).min(data.len());
            let end = offset.saturating_add(length).min(data.len() as u64) as usize;
            Ok(data.slice(start..end))
        }
        fn size(&self, handle: &Handle) -> Result<u64> {
            self.inner.size(handle)
        }
        fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
            self.inner.list(kind)
        }
        fn delete(&self, handle: &Handle) -> Result<()> {
            self.inner.delete(handle)
        }
    }

    #[test]
    #[should_panic(expected = "expected AlreadyExists for index once")]
    fn suite_catches_overwriting_create() {
        run_suite(&Sloppy {
            overwrite: true,
            ..Sloppy::default()
        });
    }

    #[test]
    #[should_panic(expected = "expected Truncated for pack ffrange")]
    fn suite_catches_short_ranges() {
        run_suite(&Sloppy::default());
    }
}
