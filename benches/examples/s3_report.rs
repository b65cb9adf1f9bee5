//! Backup and restore MB/s and requests per GB, local directory vs the
//! loopback S3 server (moto), on the same input:
//! `VAULT_MOTO_SERVER=.venv-moto/bin/moto_server cargo run --release -p vault-benches --example s3_report [MB]`.

use std::sync::Arc;
use std::time::Instant;

use vault_core::{
    BackupOptions, InitOptions, KdfParams, NoProgress, OpenOptions, Repository, Source,
};
use vault_store::testing::S3Server;
use vault_store::{Backend, CountingBackend, LocalDir};

fn run(name: &str, backend: Arc<CountingBackend<Arc<dyn Backend>>>, data: &[u8]) {
    let init = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        ..Default::default()
    };
    Repository::init(backend.clone(), b"pw", &init).expect("init");
    let repo = Repository::open(backend.clone(), b"pw", &OpenOptions::default()).expect("open");
    let before = backend.requests();
    let t = Instant::now();
    let opts = BackupOptions {
        time: "2026-11-23T00:00:00Z".into(),
        upload_threads: 4,
        ..Default::default()
    };
    let done = repo
        .snapshot(
            Source::Stream {
                name: "db.sql".into(),
                reader: Box::new(data),
            },
            &opts,
            &NoProgress,
        )
        .expect("backup");
    let backup_s = t.elapsed().as_secs_f64();
    let after_backup = backend.requests();
    let t = Instant::now();
    let fresh = Repository::open(backend.clone(), b"pw", &OpenOptions::default()).expect("open");
    let mut sink = std::io::sink();
    fresh
        .dump(&done.snapshot, "db.sql", &mut sink, &NoProgress)
        .expect("restore");
    let restore_s = t.elapsed().as_secs_f64();
    let after = backend.requests();
    let gb = data.len() as f64 / 1e9;
    let mb = data.len() as f64 / 1e6;
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} |",
        mb / backup_s,
        mb / restore_s,
        (after_backup.puts - before.puts) as f64 / gb,
        (after_backup.gets - before.gets) as f64 / gb,
        (after_backup.lists - before.lists) as f64 / gb,
        (after.gets - after_backup.gets) as f64 / gb,
        (after.lists - after_backup.lists) as f64 / gb,
    );
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let data = vault_benches::sql_like(mb << 20, 7);
    println!("input: {mb} MiB SQL-like stream\n");
    println!("| store | backup MB/s | restore MB/s | backup PUT / GET / LIST per GB | restore GET / LIST per GB |");
    println!("|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("tempdir");
    let local: Arc<dyn Backend> = Arc::new(LocalDir::new(dir.path().join("repo")));
    run(
        "local directory",
        Arc::new(CountingBackend::new(local)),
        &data,
    );
    let server = S3Server::start("report");
    let s3: Arc<dyn Backend> = Arc::new(server.backend("repo"));
    run(
        "S3 (moto on 127.0.0.1)",
        Arc::new(CountingBackend::new(s3)),
        &data,
    );
}
