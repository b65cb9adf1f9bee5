//! Content-defined chunking (FastCDC) speed.
//!
//! - `chunker_lengths/<avg>`: [`Cutter::lengths`] over 64 MiB of SQL-like text
//!   at each average chunk size a repository can be created with (256 KiB to
//!   4 MiB), plus random bytes at the default 1 MiB. Larger averages skip more
//!   bytes (FastCDC does not hash the first `min = avg / 4` bytes of a chunk),
//!   so they should be faster.
//! - `chunker_stream/sql/1MiB`: the streaming [`Chunker`] over a `&[u8]` reader
//!   with the archiver's 16 MiB batches: cutting plus the buffer copies and
//!   batch bookkeeping a backup pays on top of the pure cutter.

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use vault_benches::{random_bytes, sql_like, MIB};
use vault_core::chunker::{Chunker, ChunkerParams, Cutter};

const LEN: usize = 64 * MIB;
/// A fixed gear seed (in a repository it comes from the master key).
const SEED: u64 = 0x5EED_CAFE_F00D_0001;
/// The archiver's batch size (`archiver::stream::BATCH_BYTES`, crate-private).
const BATCH_BYTES: usize = 16 * MIB;

fn cutter(avg: usize) -> Cutter {
    Cutter::new(
        ChunkerParams::from_average(avg as u32).expect("valid average"),
        SEED,
    )
}

fn label(avg: usize) -> String {
    if avg >= MIB {
        format!("{}MiB", avg / MIB)
    } else {
        format!("{}KiB", avg / 1024)
    }
}

fn lengths(c: &mut Criterion) {
    let sql = sql_like(LEN, 1);
    let mut g = c.benchmark_group("chunker_lengths");
    g.throughput(Throughput::Bytes(LEN as u64));
    for avg in [256 * 1024, 512 * 1024, MIB, 2 * MIB, 4 * MIB] {
        let cut = cutter(avg);
        g.bench_with_input(BenchmarkId::new("sql", label(avg)), &sql, |b, data| {
            b.iter(|| black_box(cut.lengths(black_box(data))).len())
        });
    }
    let random = random_bytes(LEN, 2);
    let cut = cutter(MIB);
    g.bench_with_input(
        BenchmarkId::new("random", label(MIB)),
        &random,
        |b, data| b.iter(|| black_box(cut.lengths(black_box(data))).len()),
    );
    g.finish();
}

fn stream(c: &mut Criterion) {
    let sql = sql_like(LEN, 1);
    let cut = cutter(MIB);
    let mut g = c.benchmark_group("chunker_stream");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_with_input(BenchmarkId::new("sql", label(MIB)), &sql, |b, data| {
        b.iter(|| {
            let mut chunker = Chunker::new(black_box(&data[..]), cut.clone(), BATCH_BYTES);
            let mut chunks = 0;
            while let Some(batch) = chunker.next_batch().expect("reading a slice") {
                chunks += black_box(batch).chunks.len();
            }
            chunks
        })
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
        targets = super::lengths, super::stream
    }
}
criterion_main!(harness::benches);
