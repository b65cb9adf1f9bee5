//! Whole backup and restore of a 256 MiB database dump, end to end.
//!
//! The dump is SQL-like text (~3-4x compressible), fed as
//! [`Source::Stream`] from memory. The repository is a [`LocalDir`] in a
//! temporary directory with the default settings (1 MiB average chunks,
//! zstd 3, 16 MiB packs) and the local SQLite index cache on disk next to it;
//! stored objects are `fsync`ed, as in real use. Two upload threads, as the
//! CLI uses.
//!
//! - `backup/first/256MiB`: [`Repository::snapshot`] into a fresh, empty
//!   repository (chunk, hash, compress, seal, pack, store, index). Creating
//!   and opening the repository is not timed.
//! - `backup/unchanged/256MiB`: the same dump again into a repository that
//!   already holds it: every chunk dedups, so this is reading, chunking,
//!   hashing and index lookups only. Each iteration adds one (small) snapshot.
//! - `restore/dump/256MiB`: [`Repository::dump`] of the stream into
//!   [`std::io::sink`]: read packs, open, decompress and verify every blob.
//!
//! The whole dump (and a repository of ~70 MB) is held in memory or in the
//! temporary directory; each case runs 10 times.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use tempfile::TempDir;
use vault_benches::{sql_like, MIB};
use vault_core::vault_store::LocalDir;
use vault_core::{
    BackupOptions, BackupResult, InitOptions, KdfParams, NoProgress, OpenOptions, Repository,
    Source,
};

const LEN: usize = 256 * MIB;
const LABEL: &str = "256MiB";
const NAME: &str = "db.sql";
const PASSWORD: &[u8] = b"vault bench";

/// Fields drop in order: the repository closes before its directory is removed.
struct Repo {
    repo: Repository,
    _dir: TempDir,
}

fn fresh_repo() -> Repo {
    let dir = tempfile::tempdir().expect("temporary directory");
    let backend = Arc::new(LocalDir::new(dir.path().join("repo")));
    let init = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        time: "2026-11-23T00:00:00Z".into(),
        ..Default::default()
    };
    Repository::init(backend.clone(), PASSWORD, &init).expect("init");
    let open = OpenOptions {
        cache_dir: Some(dir.path().join("cache")),
        ..Default::default()
    };
    let repo = Repository::open(backend, PASSWORD, &open).expect("open");
    Repo { repo, _dir: dir }
}

fn backup_options() -> BackupOptions {
    BackupOptions {
        time: "2026-11-23T00:00:00Z".into(),
        hostname: "bench".into(),
        upload_threads: 2,
        ..Default::default()
    }
}

fn backup(repo: &Repository, data: &[u8], opts: &BackupOptions) -> BackupResult {
    let source = Source::Stream {
        name: NAME.into(),
        reader: Box::new(data),
    };
    repo.snapshot(source, opts, &NoProgress).expect("backup")
}

fn benches(c: &mut Criterion) {
    let data = sql_like(LEN, 1);
    let opts = backup_options();

    let mut g = c.benchmark_group("backup");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(BenchmarkId::new("first", LABEL), |b| {
        b.iter_batched(
            fresh_repo,
            |r| {
                let done = backup(&r.repo, &data, &opts);
                (r, done) // the repository is deleted outside the timing
            },
            BatchSize::PerIteration,
        )
    });

    // One repository holding the dump, for the unchanged backup and restore.
    let r = fresh_repo();
    let first = backup(&r.repo, &data, &opts);
    let s = &first.snapshot.summary;
    eprintln!(
        "backup: {} bytes read, {} blobs added, {} bytes stored (ratio {:.2})",
        s.bytes_read,
        s.blobs_added,
        s.bytes_stored,
        s.bytes_read as f64 / s.bytes_stored.max(1) as f64
    );
    g.bench_function(BenchmarkId::new("unchanged", LABEL), |b| {
        b.iter(|| {
            let done = backup(&r.repo, &data, &opts);
            assert_eq!(done.snapshot.summary.bytes_added, 0, "all chunks dedup");
            done
        })
    });
    g.finish();

    let mut g = c.benchmark_group("restore");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(BenchmarkId::new("dump", LABEL), |b| {
        b.iter(|| {
            let n = r
                .repo
                .dump(&first.snapshot, NAME, &mut std::io::sink(), &NoProgress)
                .expect("dump");
            assert_eq!(n, LEN as u64);
            black_box(n)
        })
    });
    g.finish();
}

/// `criterion_group!` makes a public function; a private module keeps it
/// out of the `missing_docs` lint.
mod harness {
    use criterion::criterion_group;

    criterion_group! {
        name = backup_restore;
        config = vault_benches::criterion_config(10);
        targets = super::benches
    }
}
criterion_main!(harness::backup_restore);
