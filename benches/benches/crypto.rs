//! Hashing and authenticated-encryption speed.
//!
//! - `crypto_blob_id`: the keyed BLAKE3 of one 1 MiB chunk ([`Keys::blob_id`]),
//!   computed for every chunk a backup reads (single-threaded per chunk; the
//!   archiver runs chunks in parallel).
//! - `crypto_content_digest/{update,update_rayon}`: the whole-file digest
//!   ([`Keys::content_hasher`]) over 64 MiB, on one thread and with BLAKE3's
//!   rayon parallelism (what the archiver uses per batch).
//! - `crypto_seal_open/{seal,open}`: XChaCha20-Poly1305 of 1 MiB
//!   ([`Keys::seal`] / [`Keys::open`]), allocation of the output included.
//!
//! [`Keys::blob_id`]: vault_core::crypto::Keys::blob_id
//! [`Keys::content_hasher`]: vault_core::crypto::Keys::content_hasher
//! [`Keys::seal`]: vault_core::crypto::Keys::seal
//! [`Keys::open`]: vault_core::crypto::Keys::open

use std::hint::black_box;

use criterion::{criterion_main, Criterion, Throughput};
use vault_benches::{sql_like, MIB};
use vault_core::blob::BlobType;
use vault_core::crypto::MasterKey;

const DIGEST_LEN: usize = 64 * MIB;

fn blob_id(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let chunk = sql_like(MIB, 1);
    let mut g = c.benchmark_group("crypto_blob_id");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("1MiB", |b| {
        b.iter(|| keys.blob_id(BlobType::Data, black_box(&chunk)))
    });
    g.finish();
}

fn content_digest(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let data = sql_like(DIGEST_LEN, 1);
    let mut g = c.benchmark_group("crypto_content_digest");
    g.throughput(Throughput::Bytes(DIGEST_LEN as u64));
    g.bench_function("update", |b| {
        b.iter(|| {
            let mut h = keys.content_hasher();
            h.update(black_box(&data));
            h.finalize()
        })
    });
    g.bench_function("update_rayon", |b| {
        b.iter(|| {
            let mut h = keys.content_hasher();
            h.update_rayon(black_box(&data));
            h.finalize()
        })
    });
    g.finish();
}

fn seal_open(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let plain = sql_like(MIB, 1);
    let ad = b"vault bench";
    let sealed = keys.seal(ad, &plain);
    let mut g = c.benchmark_group("crypto_seal_open");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("seal/1MiB", |b| b.iter(|| keys.seal(ad, black_box(&plain))));
    g.bench_function("open/1MiB", |b| {
        b.iter(|| keys.open(ad, black_box(&sealed)).expect("opens"))
    });
    g.finish();
}

/// `criterion_group!` makes a public function; a private module keeps it
/// out of the `missing_docs` lint.
mod harness {
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = vault_benches::criterion_config(3);
        targets = super::blob_id, super::content_digest, super::seal_open
    }
}
criterion_main!(harness::benches);
