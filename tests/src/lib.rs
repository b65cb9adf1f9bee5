//! Support for vault's end-to-end tests: a harness that drives the real
//! binary against a repository in a temporary directory, data generators,
//! and private database servers ([`servers`]).

pub mod servers;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where a test's repository lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A directory in the scratch area.
    Local,
    /// A bucket prefix on a private S3 server (moto) on 127.0.0.1.
    S3,
}

/// A scratch area with a repository location, a cache and a password, and
/// the path of the `vault` binary under test.
pub struct Harness {
    bin: PathBuf,
    dir: tempfile::TempDir,
    s3: Option<vault_store::testing::S3Server>,
    /// Repository URL handed to `--repo`.
    pub repo: String,
    /// Cache directory.
    pub cache: PathBuf,
    /// Password.
    pub password: String,
}

impl Harness {
    /// A fresh scratch area for the binary at `bin` (not yet initialised).
    pub fn new(bin: &str) -> Harness {
        Self::with_store(bin, Store::Local)
    }

    /// A fresh scratch area whose repository lives in `store`.
    pub fn with_store(bin: &str, store: Store) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix("vault-e2e-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let (repo, s3) = match store {
            Store::Local => (dir.path().join("repo").to_string_lossy().into_owned(), None),
            Store::S3 => {
                let server = vault_store::testing::S3Server::start("vault-e2e");
                (format!("s3://{}/repos/one", server.bucket()), Some(server))
            }
        };
        let cache = dir.path().join("cache");
        Harness {
            bin: PathBuf::from(bin),
            dir,
            s3,
            repo,
            cache,
            password: "correct horse battery staple".into(),
        }
    }

    /// The scratch directory (world-writable, for unprivileged runs).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the scratch directory.
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The binary under test.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A command for the binary with repository, cache and password set
    /// through the environment, as a cron job would.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        self.configure(&mut c);
        c
    }

    /// Applies this harness's environment to any command (e.g. one wrapped in setpriv).
    pub fn configure(&self, c: &mut Command) {
        for v in [
            "VAULT_PASSWORD_FILE",
            "VAULT_PASSWORD_COMMAND",
            "VAULT_REPOSITORY",
            "VAULT_CACHE_DIR",
        ] {
            c.env_remove(v);
        }
        for (k, v) in self.s3.iter().flat_map(|s| s.env()) {
            c.env(k, v);
        }
        c.env("VAULT_REPOSITORY", &self.repo)
            .env("VAULT_PASSWORD", &self.password)
            .env("VAULT_CACHE_DIR", &self.cache)
            .env("VAULT_INSECURE_TEST_KDF", "1")
            .stdin(Stdio::null());
    }

    /// Runs `vault ARGS` and returns its output (any exit status).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run vault")
    }

    /// Runs `vault ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vault");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait vault");
        writer.join().expect("writer");
        out
    }

    /// Runs `vault ARGS`, asserting exit status 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert_success(&out, args);
        out.stdout
    }

    /// `vault init` with a small chunk size when given.
    pub fn init(&self, extra: &[&str]) {
        let mut args = vec!["init"];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `vault snapshot --json ARGS` → the summary object.
    pub fn snapshot(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["snapshot", "--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        last_json(&out)
    }

    /// `vault snapshot --json --stdin --stdin-name NAME` of `data` → summary.
    pub fn snapshot_stdin(&self, name: &str, data: &[u8], extra: &[&str]) -> serde_json::Value {
        let mut a = vec!["snapshot", "--json", "--stdin", "--stdin-name", name];
        a.extend_from_slice(extra);
        let out = self.run_stdin(&a, data);
        assert_success(&out, &a);
        last_json(&out.stdout)
    }

    /// `vault snapshots --json`.
    pub fn snapshots(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["snapshots", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out)
            .expect("snapshots json")
            .as_array()
            .expect("array")
            .clone()
    }

    /// `vault dump SNAP PATH` → bytes.
    pub fn dump(&self, snap: &str, path: &str) -> Vec<u8> {
        self.ok(&["dump", snap, path])
    }

    /// Environment that reaches this harness's S3 server (empty when local).
    pub fn s3_env(&self) -> Vec<(&'static str, String)> {
        self.s3.iter().flat_map(|s| s.env()).collect()
    }

    /// Which store the repository is in.
    pub fn store(&self) -> Store {
        if self.s3.is_some() {
            Store::S3
        } else {
            Store::Local
        }
    }

    /// The repository as a backend, to inspect or damage it from a test.
    pub fn backend(&self) -> std::sync::Arc<dyn vault_store::Backend> {
        match &self.s3 {
            Some(s) => std::sync::Arc::new(
                s.backend(
                    self.repo
                        .trim_start_matches(&format!("s3://{}/", s.bucket())),
                ),
            ),
            None => vault_store::open_url(&self.repo).expect("local repository"),
        }
    }

    /// Total bytes of all objects of the repository.
    pub fn repo_bytes(&self) -> u64 {
        let b = self.backend();
        vault_store::FileType::ALL
            .iter()
            .filter(|k| **k != vault_store::FileType::Config)
            .flat_map(|k| b.list(*k).unwrap_or_default())
            .map(|(_, size)| size)
            .sum()
    }

    /// Bytes in packs.
    /// Files of the packs of a local repository.
    pub fn repo_pack_paths(&self) -> Vec<PathBuf> {
        self.backend()
            .list(vault_store::FileType::Pack)
            .expect("list packs")
            .into_iter()
            .map(|(n, _)| Path::new(&self.repo).join("data").join(&n[..2]).join(&n))
            .collect()
    }

    /// Bytes of all packs.
    pub fn pack_bytes(&self) -> u64 {
        self.backend()
            .list(vault_store::FileType::Pack)
            .expect("list packs")
            .iter()
            .map(|(_, s)| s)
            .sum()
    }
}

/// Panics with stdout and stderr unless the command succeeded.
pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "vault {args:?} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The last JSON line of a command's stdout.
pub fn last_json(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {text}"));
    serde_json::from_str(line).expect("json line")
}

/// Sum of file sizes under `p`.
pub fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().expect("metadata");
            total += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

/// Deterministic data that compresses like text (about 3:1 with zstd).
pub fn text_like(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"INSERT ",
        b"INTO ",
        b"accounts ",
        b"VALUES ",
        b"(",
        b"), ",
        b"'alpha' ",
        b"'beta' ",
        b"42 ",
        b"1337 ",
        b"NULL ",
        b"\n",
        b"\t",
        b"2026-11-23 ",
        b"true ",
        b"false ",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x & 15) as usize]);
        if x & 0x300 == 0 {
            out.extend_from_slice(format!("{}", x >> 40).as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// `data` with about `percent` % of its lines rewritten, at random positions
/// (a database dump a day later, with rows updated everywhere).
pub fn mutate_lines(data: &[u8], percent: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(data.len() + data.len() / 50);
    for line in data.split_inclusive(|&b| b == b'\n') {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 100 < percent {
            out.extend_from_slice(format!("UPDATE {} SET v = {}\n", x >> 48, x >> 20).as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Deterministic incompressible bytes.
pub fn random_like(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts that `restored` mirrors `original`: same entries, kinds, content,
/// permission bits, mtimes and link targets.
pub fn assert_same_tree(original: &Path, restored: &Path) {
    let mut a = list_tree(original);
    let mut b = list_tree(restored);
    a.sort();
    b.sort();
    let names_a: Vec<_> = a.iter().map(|e| &e.0).collect();
    let names_b: Vec<_> = b.iter().map(|e| &e.0).collect();
    let rel = |p: &PathBuf| p.display().to_string();
    assert_eq!(
        names_a,
        names_b,
        "entries differ between {} and {}",
        original.display(),
        restored.display()
    );
    for ((relp, _), (_, _)) in a.iter().zip(&b) {
        let (pa, pb) = (original.join(relp), restored.join(relp));
        let rel = rel(relp);
        let (ma, mb) = (
            std::fs::symlink_metadata(&pa).unwrap(),
            std::fs::symlink_metadata(&pb).unwrap(),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "{rel}");
        if ma.is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap(),
                "{rel}"
            );
            continue;
        }
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "mode of {rel}");
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "mtime of {rel}"
        );
        if ma.is_file() {
            assert_eq!(
                std::fs::read(&pa).unwrap(),
                std::fs::read(&pb).unwrap(),
                "content of {rel}"
            );
        }
    }
}

fn list_tree(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, bool)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let is_dir = e.file_type().unwrap().is_dir();
            out.push((rel, is_dir));
            if is_dir {
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Lock objects staged the way another process would leave them.
pub mod locks {
    use std::time::Duration;

    use vault_core::lock::LockInfo;
    use vault_core::Repository;

    fn fresh_key(kind: &str) -> String {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!(
            "{kind}-{:016x}{:08x}{:08x}",
            t as u64,
            std::process::id(),
            n as u32
        )
    }

    /// A lease of a backup running on `host` (15 minutes left); returns its name.
    pub fn lease(repo: &Repository, host: &str) -> String {
        let name = format!("{}-0", fresh_key("lease"));
        let info = LockInfo::new("lease", host, Duration::from_secs(15 * 60));
        repo.write_lock(&name, &info).unwrap();
        name
    }

    /// The refresh of lease `name`: the next object, then the old one deleted.
    pub fn refresh(repo: &Repository, name: &str, host: &str) -> String {
        let key = vault_core::lock::lock_key(name);
        let n: u64 = name[key.len() + 1..].parse().unwrap();
        let new = format!("{key}-{}", n + 1);
        let info = LockInfo::new("lease", host, Duration::from_secs(15 * 60));
        repo.write_lock(&new, &info).unwrap();
        repo.release(name).unwrap();
        new
    }

    /// A prune lock as given; returns its name.
    pub fn prune_lock(repo: &Repository, info: &LockInfo) -> String {
        let name = format!("{}-0", fresh_key("prune"));
        repo.write_lock(&name, info).unwrap();
        name
    }

    /// Removes every prune lock (as `vault unlock --remove-all` would).
    pub fn remove_prune_locks(repo: &Repository) {
        for (name, _) in repo.locks().unwrap() {
            if name.starts_with("prune") {
                repo.release(&name).unwrap();
            }
        }
    }
}

/// The engine driven directly, on an in-memory store with small chunks and
/// packs (so a few megabytes make many of each).
pub mod library {
    use std::sync::Arc;

    use vault_core::{
        BackupOptions, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, SnapshotId,
        Source,
    };
    use vault_store::{Backend, MemoryBackend};

    /// The password of every repository made here.
    pub const PW: &[u8] = b"pw";

    /// A new repository: 64 KiB chunks, 1 MiB packs.
    pub fn new_repo() -> Arc<MemoryBackend> {
        let mem = Arc::new(MemoryBackend::new());
        let opts = InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            chunker: vault_core::ChunkerParams::from_average(64 << 10).unwrap(),
            pack_size: 1 << 20,
            ..Default::default()
        };
        Repository::init(mem.clone(), PW, &opts).unwrap();
        mem
    }

    /// Opens it with default options.
    pub fn open(b: Arc<dyn Backend>) -> Repository {
        Repository::open(b, PW, &OpenOptions::default()).unwrap()
    }

    /// Backs up `data` as the stream `db.sql` of host db1 on November `day`.
    pub fn backup(repo: &Repository, day: u32, data: &[u8]) -> SnapshotId {
        let opts = BackupOptions {
            time: format!("2026-11-{day:02}T03:00:00Z"),
            hostname: "db1".into(),
            ..Default::default()
        };
        let src = Source::Stream {
            name: "db.sql".into(),
            reader: Box::new(std::io::Cursor::new(data.to_vec())),
        };
        repo.snapshot(src, &opts, &NoProgress).unwrap().id
    }

    /// The stream `db.sql` holding `data`, which at its first read (when the
    /// backup has taken its lease and read the index) signals `ready` and
    /// waits for `go`: a backup held at that point while others run.
    pub fn gated_stream(
        data: Vec<u8>,
    ) -> (
        Source<'static>,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        struct Gate {
            data: std::io::Cursor<Vec<u8>>,
            ready: Option<std::sync::mpsc::Sender<()>>,
            go: std::sync::mpsc::Receiver<()>,
        }
        impl std::io::Read for Gate {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if let Some(r) = self.ready.take() {
                    let _ = r.send(());
                    let _ = self.go.recv();
                }
                self.data.read(buf)
            }
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let src = Source::Stream {
            name: "db.sql".into(),
            reader: Box::new(Gate {
                data: std::io::Cursor::new(data),
                ready: Some(ready_tx),
                go: go_rx,
            }),
        };
        (src, ready_rx, go_tx)
    }

    /// The stream `db.sql` of a snapshot.
    pub fn dump(repo: &Repository, id: &SnapshotId) -> Vec<u8> {
        let s = repo.load_snapshot(id).unwrap();
        let mut out = Vec::new();
        repo.dump(&s, "db.sql", &mut out, &NoProgress).unwrap();
        out
    }
}

impl Harness {
    /// Runs the shell `script` (with `set -eu`) in a mount namespace of its
    /// own, so it can mount a small tmpfs or a read-only bind mount that
    /// vanishes with it: as root `unshare -m`, else in a user namespace
    /// (`unshare -Urm`). `$VAULT` is the binary; the harness's environment
    /// applies, then `env`. Returns the script's output (any status).
    pub fn in_mount_namespace(&self, script: &str, env: &[(&str, &Path)]) -> Output {
        let mut c = Command::new("unshare");
        c.args(if servers::is_root() {
            &["-m"][..]
        } else {
            &["-U", "-r", "-m"][..]
        });
        c.args(["sh", "-euc", script]);
        self.configure(&mut c);
        c.env("VAULT", &self.bin);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run unshare (util-linux)")
    }
}

/// A store that lets a test step in at every create: `before` may fail it
/// (nothing is stored), `after` runs once it landed (to stage what another
/// process does at that moment).
pub struct Intercept {
    inner: std::sync::Arc<vault_store::MemoryBackend>,
    before: Before,
    after: Box<dyn Fn(&vault_store::Handle) + Send + Sync>,
}

/// Intercept's hook ahead of a create: an error fails it.
type Before = Box<dyn Fn(&vault_store::Handle) -> Option<vault_store::StoreError> + Send + Sync>;

impl Intercept {
    /// Wraps `inner` with the two hooks.
    pub fn new(
        inner: std::sync::Arc<vault_store::MemoryBackend>,
        before: impl Fn(&vault_store::Handle) -> Option<vault_store::StoreError> + Send + Sync + 'static,
        after: impl Fn(&vault_store::Handle) + Send + Sync + 'static,
    ) -> Intercept {
        Intercept {
            inner,
            before: Box::new(before),
            after: Box::new(after),
        }
    }
}

impl std::fmt::Debug for Intercept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercept").finish_non_exhaustive()
    }
}

impl vault_store::Backend for Intercept {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn init_layout(&self) -> vault_store::Result<()> {
        self.inner.init_layout()
    }
    fn create(&self, h: &vault_store::Handle, data: bytes::Bytes) -> vault_store::Result<()> {
        if let Some(e) = (self.before)(h) {
            return Err(e);
        }
        self.inner.create(h, data)?;
        (self.after)(h);
        Ok(())
    }
    fn read(&self, h: &vault_store::Handle) -> vault_store::Result<bytes::Bytes> {
        self.inner.read(h)
    }
    fn read_range(
        &self,
        h: &vault_store::Handle,
        offset: u64,
        length: u64,
    ) -> vault_store::Result<bytes::Bytes> {
        self.inner.read_range(h, offset, length)
    }
    fn size(&self, h: &vault_store::Handle) -> vault_store::Result<u64> {
        self.inner.size(h)
    }
    fn list(&self, kind: vault_store::FileType) -> vault_store::Result<Vec<(String, u64)>> {
        self.inner.list(kind)
    }
    fn delete(&self, h: &vault_store::Handle) -> vault_store::Result<()> {
        self.inner.delete(h)
    }
}
