//! Private database servers for end-to-end tests: each listens on 127.0.0.1 on a free port, keeps its data in its own temporary directory, and is stopped (and its directory removed) on drop.
//!
//! PostgreSQL binaries are taken from `$TEST_PG_BINDIR` if set, else the highest
//! `/usr/lib/postgresql/<major>/bin` (Debian layout), else `pg_config --bindir`.
//! `redis-server` is taken from `PATH`. When the tests run as root, the PostgreSQL
//! server runs as the `postgres` system user (initdb and postgres refuse root);
//! clients (psql, pg_dump, pgbench) run as the current user over TCP.
//!
//! Servers are stopped by `Drop`: keep them in locals, not in `static`s (statics are
//! never dropped), and note that a test process killed by a signal leaks them.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The only address the servers listen on.
const HOST: &str = "127.0.0.1";
/// How long a server may take to accept connections after it was launched.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many fresh ports to try when the chosen one was taken in the meantime.
const START_ATTEMPTS: u32 = 5;
/// Deadline for quick administrative commands (initdb, pg_ctl, pg_isready, ...).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline for commands that move data (psql scripts, pg_dump, SAVE, ...).
const DATA_TIMEOUT: Duration = Duration::from_secs(600);
/// Unprivileged uid/gid used by [`unprivileged`] (`nobody`/`nogroup` on Debian).
const NOBODY: &str = "65534";

/// Returns a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, drop).
/// Another process may grab it before it is used; the servers retry with a new one.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local address of 127.0.0.1:0")
        .port()
}

/// Whether the current process runs with effective uid 0 (read from `/proc/self/status`,
/// falling back to `id -u`); cached after the first call.
pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| effective_uid() == 0)
}

fn effective_uid() -> u32 {
    let from_proc = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|euid| euid.parse().ok())
        });
    if let Some(uid) = from_proc {
        return uid;
    }
    let out = Command::new("id").arg("-u").output().expect("run `id -u`");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("unexpected `id -u` output {text:?}"))
}

/// Runs `program` as an unprivileged user when the current process is root
/// (`setpriv --reuid=65534 --regid=65534 --clear-groups`), unchanged otherwise. Returns the
/// prepared command, to which the caller adds arguments. Used to test unreadable files
/// (root can read everything); the files' parent directories must be world-traversable.
pub fn unprivileged(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// A private PostgreSQL cluster (initdb'ed with trust authentication, superuser `postgres`)
/// listening on 127.0.0.1 and on a Unix socket in its own directory. Stopped on drop.
pub struct Postgres {
    port: u16,
    bin: PathBuf,
    /// Owned by the server user: holds `data/` and `sock/`.
    home: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// The postmaster, a direct child (not daemonized by `pg_ctl start`) so that it is
    /// reaped even where PID 1 does not reap orphans.
    server: ChildGuard,
    /// Removed after `Drop::drop` has stopped the server.
    _dir: TempDir,
}

impl Postgres {
    /// Runs initdb, then starts `postgres` as a child process with `listen_addresses =
    /// 127.0.0.1`, a private socket directory, `fsync = off` and `full_page_writes = off`,
    /// and waits up to 30 s until it accepts TCP connections (`pg_isready`). Panics with
    /// the server log on failure.
    pub fn start() -> Postgres {
        let bin = pg_bin_dir();
        let dir = world_traversable_tempdir("pg-test-");
        let home = dir.path().join("pg");
        let sock = home.join("sock");
        for path in [&home, &sock] {
            fs::create_dir(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            set_mode(path, 0o755);
        }
        if is_root() {
            let (uid, gid) = postgres_ids();
            for path in [&home, &sock] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
            }
        }
        let mut pg = Postgres {
            port: 0,
            data: home.join("data"),
            log: dir.path().join("server.log"),
            bin,
            home,
            server: ChildGuard(None),
            _dir: dir,
        };

        let mut initdb = pg.server_command("initdb");
        initdb.arg("-D").arg(&pg.data).args([
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run_ok(&mut initdb, ADMIN_TIMEOUT, "initdb");
        pg.write_config(&sock);

        for attempt in 1..=START_ATTEMPTS {
            pg.port = free_port();
            let log = File::options()
                .create(true)
                .append(true)
                .open(&pg.log)
                .unwrap_or_else(|e| panic!("open {}: {e}", pg.log.display()));
            let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
            let log_err = log.try_clone().expect("clone log file handle");
            let mut postgres = pg.server_command("postgres");
            postgres
                .arg("-D")
                .arg(&pg.data)
                .args(["-p", &pg.port.to_string()])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            let child = postgres
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(&postgres)));
            pg.server = ChildGuard(Some(child));
            match pg.wait_ready() {
                Ok(()) => return pg,
                Err(problem) => {
                    let new_log = read_lossy(&pg.log, log_offset);
                    if new_log.contains("Address already in use") && attempt < START_ATTEMPTS {
                        pg.server = ChildGuard(None);
                        continue;
                    }
                    panic!(
                        "PostgreSQL did not start on port {}: {problem}\n--- server log ---\n{new_log}",
                        pg.port
                    );
                }
            }
        }
        unreachable!("the last start attempt panics")
    }

    /// The TCP port the server listens on (address 127.0.0.1, superuser `postgres`, no password).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `db` and runs `pgbench -i -s SCALE` in it (scale 1 = 100k
    /// `pgbench_accounts` rows, about 10 MB of plain dump).
    pub fn pgbench_init(&self, db: &str, scale: u32) {
        self.psql("postgres", &format!("CREATE DATABASE {}", quote_ident(db)));
        let mut cmd = self.client_command("pgbench");
        cmd.args(["-i", "-q", "-s", &scale.to_string()]).arg(db);
        let timeout = ADMIN_TIMEOUT + Duration::from_secs(120) * scale;
        self.run_ok(&mut cmd, None, None, timeout, "pgbench -i");
    }

    /// Runs `sql` (one or more statements) through `psql -X -v ON_ERROR_STOP=1 -At` in
    /// database `db`; panics on failure, returns stdout (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.client_command("psql");
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "--no-password",
            "-d",
        ])
        .arg(db)
        .args(["-f", "-"]);
        let out = self.run_ok(
            &mut cmd,
            Some(sql.as_bytes().to_vec()),
            None,
            DATA_TIMEOUT,
            "psql",
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Updates about `percent`% of the `pgbench_accounts` rows, chosen at random positions
    /// (new `abalance` and `filler`), and appends `extra_history` rows to `pgbench_history`.
    /// Updated rows get new physical positions (at first the end of the table), so in the
    /// dump they leave their place and reappear at the end of the COPY block.
    pub fn change_rows(&self, db: &str, percent: f64, extra_history: u32) {
        assert!(
            (0.0..=100.0).contains(&percent),
            "percent must be within 0..=100, got {percent}"
        );
        let fraction = percent / 100.0;
        let sql = format!(
            "UPDATE pgbench_accounts SET abalance = abalance + 1, filler = md5(random()::text) \
               WHERE random() < {fraction};\n\
             INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
               SELECT 1 + floor(random() * s.n * 10)::int, 1 + floor(random() * s.n)::int, \
                      1 + floor(random() * s.n * 100000)::int, \
                      floor(random() * 10001)::int - 5000, clock_timestamp() \
               FROM generate_series(1, {extra_history}), \
                    (SELECT greatest(count(*), 1) AS n FROM pgbench_branches) AS s;\n"
        );
        self.psql(db, &sql);
    }

    /// Gives every account row a random 32-hex-digit filler (pgbench's own
    /// filler is blank, so its dumps compress 100:1, unlike real tables) and
    /// compacts the table so rows stay in key order.
    pub fn randomize_filler(&self, db: &str) {
        self.psql(
            db,
            "UPDATE pgbench_accounts SET filler = md5(aid::text || random()::text);\n\
             VACUUM FULL pgbench_accounts;\n",
        );
    }

    /// The command line (program + args) that writes a plain SQL `pg_dump` of `db` to
    /// stdout; the program is the absolute path of this server's `pg_dump`.
    pub fn pg_dump_command(&self, db: &str) -> Vec<String> {
        let port = self.port.to_string();
        let mut command = vec![self.bin.join("pg_dump").to_string_lossy().into_owned()];
        command.extend(
            [
                "-h",
                HOST,
                "-p",
                &port,
                "-U",
                "postgres",
                "--no-password",
                db,
            ]
            .map(String::from),
        );
        command
    }

    /// Runs [`Postgres::pg_dump_command`] and writes its output to `path`; panics on failure.
    pub fn dump_to(&self, db: &str, path: &Path) {
        let argv = self.pg_dump_command(db);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        clean_pg_env(&mut cmd);
        cmd.env("PGCONNECT_TIMEOUT", "10");
        let file = File::create(path)
            .unwrap_or_else(|e| panic!("create dump file {}: {e}", path.display()));
        self.run_ok(&mut cmd, None, Some(file), DATA_TIMEOUT, "pg_dump");
    }

    /// Polls `pg_isready` over TCP until the server accepts connections. Err if the server
    /// exits or 30 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.server.try_wait() {
                return Err(format!("postgres exited with {status}"));
            }
            let mut cmd = self.client_command("pg_isready");
            cmd.args(["-d", "postgres", "-t", "2"]);
            let run = run(&mut cmd, None, None, Duration::from_secs(10))
                .map_err(|e| format!("cannot run pg_isready: {e}"))?;
            if run.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not ready after {START_TIMEOUT:?}:\n{}",
                    run.report()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_config(&self, sock: &Path) {
        let conf = self.data.join("postgresql.conf");
        let settings = format!(
            "\n# private test server\n\
             listen_addresses = '{HOST}'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             full_page_writes = off\n\
             synchronous_commit = off\n\
             logging_collector = off\n",
            sock.to_string_lossy().replace('\'', "''")
        );
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .unwrap_or_else(|e| panic!("append settings to {}: {e}", conf.display()));
    }

    /// A server-side tool (initdb, pg_ctl), run as `postgres` when we are root.
    fn server_command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
            cmd
        } else {
            Command::new(program)
        };
        clean_pg_env(&mut cmd);
        cmd.current_dir(&self.home).env("HOME", &self.home);
        cmd
    }

    /// A client tool, run as the current user, pointed at this server over TCP.
    fn client_command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        clean_pg_env(&mut cmd);
        cmd.env("PGCONNECT_TIMEOUT", "10").args([
            "-h",
            HOST,
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        cmd
    }

    /// [`run`] against this server: panics with the command's output and the server log
    /// unless it succeeds; returns stdout.
    fn run_ok(
        &self,
        cmd: &mut Command,
        input: Option<Vec<u8>>,
        stdout: Option<File>,
        timeout: Duration,
        what: &str,
    ) -> Vec<u8> {
        let run =
            run(cmd, input, stdout, timeout).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if !run.success() {
            panic!(
                "{what} failed against PostgreSQL on port {}:\n{}\n{}",
                self.port,
                run.report(),
                self.log_excerpt()
            );
        }
        run.stdout
    }

    fn log_excerpt(&self) -> String {
        format!(
            "--- server log {} ---\n{}",
            self.log.display(),
            tail(&read_lossy(&self.log, 0), 8000)
        )
    }
}

impl Drop for Postgres {
    /// `pg_ctl -m immediate stop` (errors ignored), up to 10 s for the postmaster to exit,
    /// then SIGKILL; the temporary directory is removed afterwards.
    fn drop(&mut self) {
        if self.server.0.is_none() || self.server.try_wait().is_some() {
            return;
        }
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
        let _ = run(&mut cmd, None, None, Duration::from_secs(45));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.server.try_wait().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // ChildGuard's own drop kills and reaps the postmaster if it is still there.
    }
}

/// The directory holding initdb, pg_ctl, psql, pg_dump and pgbench.
fn pg_bin_dir() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TEST_PG_BINDIR") {
            return PathBuf::from(dir);
        }
        let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name
                    .split('.')
                    .map(str::parse)
                    .collect::<Result<Vec<u32>, _>>()
                    .ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return bin;
        }
        match Command::new("pg_config").arg("--bindir").output() {
            Ok(out) if out.status.success() => {
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
            _ => panic!(
                "no PostgreSQL server binaries: install postgresql \
                 (looked in /usr/lib/postgresql/*/bin, $TEST_PG_BINDIR and `pg_config --bindir`)"
            ),
        }
    })
    .clone()
}

/// Uid and gid of the `postgres` system user.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run `id`");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "running as root needs the `postgres` system user (from the postgresql \
                 package): `id {flag} postgres` said {:?}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    (id("-u"), id("-g"))
}

/// Removes `PG*` variables (PGDATA, PGPORT, PGPASSWORD, ...) that would redirect the tools.
fn clean_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// A private `redis-server` child process listening on 127.0.0.1 only, with persistence
/// disabled except for explicit SAVEs into its own directory. Shut down on drop.
pub struct Redis {
    port: u16,
    server: ChildGuard,
    dir: TempDir,
}

impl Redis {
    /// Spawns `redis-server --bind 127.0.0.1 --port P --dir TMP --save "" --appendonly no
    /// --daemonize no` (plus `--enable-debug-command yes` on Redis >= 7) and waits up to 30 s
    /// for PING to answer. Panics with the server log on failure.
    pub fn start() -> Redis {
        let major = redis_major_version();
        for attempt in 1..=START_ATTEMPTS {
            let mut redis = Redis::spawn(free_port(), major);
            match redis.wait_ready() {
                Ok(()) => return redis,
                Err(log) if log.contains("Address already in use") && attempt < START_ATTEMPTS => {}
                Err(log) => panic!(
                    "Redis did not start on port {}:\n--- server log ---\n{log}",
                    redis.port
                ),
            }
        }
        unreachable!("the last start attempt panics")
    }

    /// The TCP port the server listens on (address 127.0.0.1, no password).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets keys `key:0` .. `key:{keys-1}` to deterministic pseudo-random printable values
    /// of `value_size` bytes derived from `seed`, pipelined in batches (100k keys take well
    /// under a second).
    pub fn populate(&self, keys: u64, value_size: usize, seed: u64) {
        self.set_keys((0..keys).map(|i| (i, value(seed, POPULATE_SALT, i, value_size))));
    }

    /// Overwrites about `percent`% of keys `key:0` .. `key:{keys-1}`, chosen independently
    /// at random (seeded) so they spread uniformly over the key space, with new values of
    /// `value_size` bytes (different from what [`Redis::populate`] wrote with the same seed).
    pub fn change_keys(&self, keys: u64, percent: f64, value_size: usize, seed: u64) {
        assert!(
            (0.0..=100.0).contains(&percent),
            "percent must be within 0..=100, got {percent}"
        );
        let fraction = percent / 100.0;
        self.set_keys(
            (0..keys)
                .filter(move |&i| unit(mix(seed, SELECT_SALT, i)) < fraction)
                .map(move |i| (i, value(seed, CHANGE_SALT, i, value_size))),
        );
    }

    /// Runs SAVE and returns the path of `dump.rdb` inside the server's directory (the next
    /// SAVE replaces it: copy it, e.g. with [`Redis::save_to`], to keep a version).
    pub fn save(&self) -> PathBuf {
        let mut conn = self.connect();
        match conn.command(&[b"SAVE"]) {
            Ok(Reply::Status(s)) if s == "OK" => {}
            Ok(other) => panic!("SAVE on Redis port {} answered {other}", self.port),
            Err(e) => panic!(
                "SAVE on Redis port {}: {e}\n{}",
                self.port,
                self.log_excerpt()
            ),
        }
        self.dir.path().join("dump.rdb")
    }

    /// SAVE, then copy `dump.rdb` to `path`.
    pub fn save_to(&self, path: &Path) {
        let dump = self.save();
        fs::copy(&dump, path)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", dump.display(), path.display()));
    }

    fn spawn(port: u16, major: u32) -> Redis {
        let dir = world_traversable_tempdir("redis-test-");
        let log_path = dir.path().join("redis.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone log file handle");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", HOST, "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args([
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
                "",
            ]);
        if major >= 7 {
            cmd.args(["--enable-debug-command", "yes"]);
        }
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server (install redis-server): {e}"));
        Redis {
            port,
            server: ChildGuard(Some(child)),
            dir,
        }
    }

    /// Ok once PING answers; Err(server log) if the server exits or 30 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.server.try_wait() {
                return Err(format!("redis-server exited with {status}\n{}", self.log()));
            }
            if let Ok(mut conn) = Resp::connect(self.port, Duration::from_secs(2)) {
                if let Ok(Reply::Status(pong)) = conn.command(&[b"PING"]) {
                    if pong == "PONG" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no PONG after {START_TIMEOUT:?}\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn connect(&self) -> Resp {
        Resp::connect(self.port, DATA_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "connect to Redis on port {}: {e}\n{}",
                self.port,
                self.log_excerpt()
            )
        })
    }

    /// SETs `key:{i}` to each value, pipelined, checking every reply.
    fn set_keys(&self, entries: impl Iterator<Item = (u64, Vec<u8>)>) {
        const BATCH: usize = 1000;
        let mut conn = self.connect();
        let mut entries = entries.peekable();
        let mut request = Vec::new();
        while entries.peek().is_some() {
            request.clear();
            let mut count = 0;
            for (i, value) in entries.by_ref().take(BATCH) {
                encode_command(
                    &mut request,
                    &[b"SET", format!("key:{i}").as_bytes(), &value],
                );
                count += 1;
            }
            let replies = conn.pipeline(&request, count);
            match replies {
                Ok(replies) => {
                    if let Some(bad) = replies
                        .iter()
                        .find(|r| !matches!(r, Reply::Status(s) if s == "OK"))
                    {
                        panic!("SET on Redis port {} answered {bad}", self.port);
                    }
                }
                Err(e) => panic!(
                    "SET on Redis port {}: {e}\n{}",
                    self.port,
                    self.log_excerpt()
                ),
            }
        }
    }

    fn log(&self) -> String {
        read_lossy(&self.dir.path().join("redis.log"), 0)
    }

    fn log_excerpt(&self) -> String {
        format!("--- server log ---\n{}", tail(&self.log(), 8000))
    }
}

impl Drop for Redis {
    /// SHUTDOWN NOSAVE, wait up to 10 s for the process to exit, then kill and reap it;
    /// the temporary directory is removed afterwards.
    fn drop(&mut self) {
        if self.server.try_wait().is_some() {
            return;
        }
        if let Ok(mut conn) = Resp::connect(self.port, Duration::from_secs(5)) {
            let _ = conn.command(&[b"SHUTDOWN", b"NOSAVE"]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.server.try_wait().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // ChildGuard's own drop kills and reaps the process if it is still there.
    }
}

/// Major version of `redis-server` (from `redis-server --version`: "Redis server v=7.0.15 ..."),
/// 0 if it cannot be determined.
fn redis_major_version() -> u32 {
    let out = Command::new("redis-server")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-server (install redis-server): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

/// Kills and reaps the child process on drop.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Exit status if the process has exited, None while it runs.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.0
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A minimal blocking RESP2 client: enough for PING, SET, SAVE and SHUTDOWN.
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Status(status) => write!(f, "+{status}"),
            Reply::Error(error) => write!(f, "-{error}"),
            Reply::Integer(n) => write!(f, ":{n}"),
            Reply::Bulk(None) | Reply::Array(None) => f.write_str("(nil)"),
            Reply::Bulk(Some(data)) => write!(f, "{:?}", String::from_utf8_lossy(data)),
            Reply::Array(Some(items)) => {
                f.write_str("[")?;
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Resp {
    fn connect(port: u16, io_timeout: Duration) -> io::Result<Resp> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(io_timeout))?;
        stream.set_write_timeout(Some(io_timeout))?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn command(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut request = Vec::new();
        encode_command(&mut request, args);
        Ok(self.pipeline(&request, 1)?.remove(0))
    }

    /// Sends `count` already encoded commands and reads their `count` replies.
    fn pipeline(&mut self, request: &[u8], count: usize) -> io::Result<Vec<Reply>> {
        self.writer.write_all(request)?;
        (0..count).map(|_| self.read_reply()).collect()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let number = || {
            rest.parse::<i64>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad RESP line {line:?}"),
                )
            })
        };
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut data = vec![0; len + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(len);
                    Reply::Bulk(Some(data))
                }
            },
            "*" => match usize::try_from(number()?) {
                Err(_) => Reply::Array(None),
                Ok(len) => Reply::Array(Some(
                    (0..len)
                        .map(|_| self.read_reply())
                        .collect::<io::Result<_>>()?,
                )),
            },
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad RESP line {line:?}"),
                ))
            }
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by Redis",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "empty RESP line",
            ));
        }
        Ok(line.to_string())
    }
}

impl Drop for Resp {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

const POPULATE_SALT: u64 = 0x5eed_0001;
const SELECT_SALT: u64 = 0x5eed_0002;
const CHANGE_SALT: u64 = 0x5eed_0003;

/// SplitMix64 finalizer.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn mix(seed: u64, salt: u64, i: u64) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ salt) ^ i)
}

/// Maps a hash to [0, 1).
fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// `size` printable bytes (64-symbol alphabet, ~6 bits of entropy each) derived from the inputs.
fn value(seed: u64, salt: u64, i: u64, size: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = mix(seed, salt, i);
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        state = splitmix(state);
        let mut bits = state;
        for _ in 0..10 {
            if out.len() == size {
                break;
            }
            out.push(ALPHABET[(bits & 63) as usize]);
            bits >>= 6;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Helpers: temporary directories and commands with deadlines
// ---------------------------------------------------------------------------------------

/// A temporary directory with mode 0755, in `$TMPDIR` unless that is not traversable by
/// other users while we are root (the server user must reach it), in which case `/tmp`.
fn world_traversable_tempdir(prefix: &str) -> TempDir {
    let base = std::env::temp_dir();
    let base = if !is_root() || traversable_by_all(&base) {
        base
    } else {
        PathBuf::from("/tmp")
    };
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("create temporary directory in {}: {e}", base.display()));
    set_mode(dir.path(), 0o755);
    dir
}

fn traversable_by_all(path: &Path) -> bool {
    path.ancestors().all(|dir| {
        dir.as_os_str().is_empty()
            || fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn read_lossy(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last `max` bytes of `text` (at a char boundary), marked when cut.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[...]\n{}", &text[start..])
}

/// Result of a command run with a deadline.
struct Run {
    command: String,
    /// None when the deadline passed and the process was killed.
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    timeout: Duration,
}

impl Run {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn report(&self) -> String {
        let outcome = match self.status {
            Some(status) => format!("exited with {status}"),
            None => format!("killed after the {:?} deadline", self.timeout),
        };
        format!(
            "command: {}\n{outcome}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.command,
            tail(&String::from_utf8_lossy(&self.stderr), 8000),
            tail(&String::from_utf8_lossy(&self.stdout), 2000)
        )
    }
}

/// Runs `cmd` with `input` on stdin (else /dev/null) and stdout into `stdout` (else
/// captured), capturing stderr. Kills the process at the deadline. Err if it cannot start.
fn run(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    stdout: Option<File>,
    timeout: Duration,
) -> io::Result<Run> {
    let command = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(stdout.map_or_else(Stdio::piped, Stdio::from));
    let mut child = cmd.stderr(Stdio::piped()).spawn()?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Errors (the child exiting early) show up in its exit status and stderr.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    // A grandchild (e.g. a daemonized server) could keep a pipe open: do not wait forever.
    let collect_until = Instant::now() + Duration::from_secs(2);
    Ok(Run {
        command,
        status,
        stdout: collect(&stdout, collect_until),
        stderr: collect(&stderr, collect_until),
        timeout,
    })
}

/// Like [`run`] without input, but panics with the full report unless the command succeeds.
fn run_ok(cmd: &mut Command, timeout: Duration, what: &str) {
    let run = run(cmd, None, None, timeout).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if !run.success() {
        panic!("{what} failed:\n{}", run.report());
    }
}

/// Reads a pipe on a background thread, sending what it reads chunk by chunk; the channel
/// closes at end of file.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Everything [`drain`] reads until end of file, or what it has read by `deadline`.
fn collect(chunks: &mpsc::Receiver<Vec<u8>>, deadline: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(left) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(_) => return out,
        }
    }
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}
