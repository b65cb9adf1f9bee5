//! Blob sealing and opening speed: the per-chunk CPU work of backup and restore.
//!
//! - `blob_seal/<data>/<level>`: [`seal_blob`] of a 1 MiB chunk: the
//!   incompressibility probe (zstd level 1 on a 16 KiB sample), zstd at the
//!   level, then XChaCha20-Poly1305. `none` only copies and seals.
//! - `blob_open/<data>/<level>`: [`open_blob`] of what `blob_seal` produced:
//!   open, decompress, and re-hash (keyed BLAKE3) to verify the id.
//!
//! `<data>` is `sql` (SQL-like text, ~3-4x compressible) or `random`
//! (incompressible: the probe skips zstd, so every level costs about the same).
//! Throughput is plaintext bytes. The compression ratio of each case is
//! printed once on stderr.

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use vault_benches::{random_bytes, sql_like, MIB};
use vault_core::blob::{open_blob, seal_blob, BlobType, Compression};
use vault_core::crypto::MasterKey;

const LEVELS: [Option<i32>; 4] = [Some(-3), Some(1), Some(3), None];

fn level_name(level: Option<i32>) -> String {
    match level {
        Some(l) => format!("zstd{l}"),
        None => "none".to_owned(),
    }
}

fn inputs() -> [(&'static str, Vec<u8>); 2] {
    [("sql", sql_like(MIB, 1)), ("random", random_bytes(MIB, 2))]
}

fn seal(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let mut g = c.benchmark_group("blob_seal");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, data) in inputs() {
        let id = keys.blob_id(BlobType::Data, &data);
        for level in LEVELS {
            let compression = Compression { zstd_level: level };
            let sealed = seal_blob(&keys, BlobType::Data, &id, &data, compression);
            eprintln!(
                "blob_seal/{name}/{}: ratio {:.2} ({} -> {} bytes)",
                level_name(level),
                data.len() as f64 / sealed.len() as f64,
                data.len(),
                sealed.len()
            );
            g.bench_function(BenchmarkId::new(name, level_name(level)), |b| {
                b.iter(|| seal_blob(&keys, BlobType::Data, &id, black_box(&data), compression))
            });
        }
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let mut g = c.benchmark_group("blob_open");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, data) in inputs() {
        let id = keys.blob_id(BlobType::Data, &data);
        for level in LEVELS {
            let compression = Compression { zstd_level: level };
            let sealed = seal_blob(&keys, BlobType::Data, &id, &data, compression);
            let raw_len = data.len() as u32;
            g.bench_function(BenchmarkId::new(name, level_name(level)), |b| {
                b.iter(|| {
                    open_blob(&keys, BlobType::Data, &id, black_box(&sealed), raw_len)
                        .expect("opens")
                })
            });
        }
    }
    g.finish();
}

/// `criterion_group!` makes a public function; a private module keeps it
/// out of the `missing_docs` lint.
mod harness {
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = vault_benches::criterion_config(2);
        targets = super::seal, super::open
    }
}
criterion_main!(harness::benches);
