//! The local SQLite index cache ([`SqliteIndex`]) at repository scale.
//!
//! For each size (1M blob entries always; 10M only with `VAULT_BENCH_10M=1`,
//! because building it takes many minutes and several GB of disk writes) an
//! index file is built once in a temporary directory by ingesting index
//! objects of 10,000 entries each (40 blobs per pack, random 32-byte ids).
//! The build time and entries/s are printed on stderr: that is the cost of
//! rebuilding the cache of a repository of that size from scratch.
//!
//! Then, against that index:
//! - `index_lookup/get_hit/<size>`: [`SqliteIndex::get`] (blob row joined with
//!   its pack) of ids that are present, drawn at random from all entries.
//! - `index_lookup/contains_hit/<size>`: [`SqliteIndex::contains`] of present
//!   ids (the dedup check of a backup whose data is unchanged).
//! - `index_lookup/contains_miss/<size>`: `contains` of absent ids (the dedup
//!   check of new data).
//! - `index_lookup/similar_hot/<size>`: [`SqliteIndex::similar`] (the delta
//!   base search of a new chunk) for sketches whose first super-feature is
//!   shared by 1/16 of all blobs (a hot feature, as common page layouts
//!   make) and whose others match nothing: the newest candidates of the hot
//!   feature must come without sorting all of them.
//! - `index_ingest/10k/<size>`: one [`SqliteIndex::ingest`] transaction of
//!   10,000 new entries. Each iteration adds its entries for good, so this runs
//!   last and the index grows somewhat while it is measured.
//!
//! Lookups go through a pool of 100,000 random ids, 1,000 per iteration
//! (throughput is lookups), so SQLite's own page cache cannot keep them all.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use vault_benches::Rng;
use vault_core::blob::BlobType;
use vault_core::delta::Sketch;
use vault_core::index::{IndexFile, SqliteIndex};
use vault_core::pack::PackEntry;
use vault_core::{BlobId, IndexId, PackId};

const ENTRIES_PER_FILE: u64 = 10_000;
const ENTRIES_PER_PACK: u64 = 40;
const LOOKUPS_PER_ITER: usize = 1_000;
const POOL: usize = 100_000;

const HIT_SALT: u64 = 0x1111_0000_0000_0000;
const MISS_SALT: u64 = 0x2222_0000_0000_0000;
const PACK_SALT: u64 = 0x3333_0000_0000_0000;
const FILE_SALT: u64 = 0x4444_0000_0000_0000;
/// Values of the first super-feature, each shared by 1/16 of all blobs.
const HOT_FEATURES: [u64; 16] = [
    0x5151_0000,
    0x5151_0001,
    0x5151_0002,
    0x5151_0003,
    0x5151_0004,
    0x5151_0005,
    0x5151_0006,
    0x5151_0007,
    0x5151_0008,
    0x5151_0009,
    0x5151_000a,
    0x5151_000b,
    0x5151_000c,
    0x5151_000d,
    0x5151_000e,
    0x5151_000f,
];

/// The id of entry `i` (recomputable, so hits need not be stored).
fn present_id(i: u64) -> BlobId {
    BlobId(Rng::new(HIT_SALT ^ i).id32())
}

fn absent_id(i: u64) -> BlobId {
    BlobId(Rng::new(MISS_SALT ^ i).id32())
}

/// Index object number `n`: entries `n * 10_000 ..` in packs of 40.
fn index_file(n: u64) -> (IndexId, IndexFile) {
    let first = n * ENTRIES_PER_FILE;
    let packs: Vec<(PackId, Vec<PackEntry>)> = (first..first + ENTRIES_PER_FILE)
        .step_by(ENTRIES_PER_PACK as usize)
        .map(|start| {
            let pack = PackId(Rng::new(PACK_SALT ^ (start / ENTRIES_PER_PACK)).id32());
            let entries = (start..start + ENTRIES_PER_PACK)
                .enumerate()
                .map(|(k, i)| PackEntry {
                    kind: BlobType::Data,
                    id: present_id(i),
                    offset: k as u32 * 400_000,
                    length: 400_000,
                    raw_length: 1 << 20,
                    base: None,
                })
                .collect();
            (pack, entries)
        })
        .collect();
    // Every data blob carries its resemblance sketch, as backups write them.
    let sketches = packs
        .iter()
        .flat_map(|(_, entries)| entries)
        .map(|e| {
            let seed = u64::from_le_bytes(e.id.0[..8].try_into().unwrap());
            let mut r = Rng::new(seed);
            let mut sk = Sketch(std::array::from_fn(|_| r.next_u64()));
            sk.0[0] = HOT_FEATURES[(seed % 16) as usize];
            (e.id, sk)
        })
        .collect();
    let file = IndexFile {
        packs,
        supersedes: vec![],
        sketches,
        writer: None,
    };
    (IndexId(Rng::new(FILE_SALT ^ n).id32()), file)
}

/// Fields drop in order: the index closes before its directory is removed.
struct Built {
    index: SqliteIndex,
    _dir: tempfile::TempDir,
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn build(entries: u64) -> Built {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("index.sqlite");
    let index = SqliteIndex::open(Some(&path)).expect("open index");
    let started = Instant::now();
    for n in 0..entries / ENTRIES_PER_FILE {
        let (id, file) = index_file(n);
        index.ingest(&id, &file).expect("ingest");
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(index.len().expect("count"), entries);
    let wal = dir.path().join("index.sqlite-wal");
    eprintln!(
        "index: built {entries} entries in {secs:.1} s ({:.0} entries/s); database {:.0} MB + WAL {:.0} MB",
        entries as f64 / secs,
        file_size(&path) as f64 / 1e6,
        file_size(&wal) as f64 / 1e6,
    );
    Built { index, _dir: dir }
}

fn sizes() -> Vec<(u64, &'static str)> {
    let mut sizes = vec![(1_000_000, "1M")];
    if std::env::var("VAULT_BENCH_10M").is_ok_and(|v| v == "1") {
        sizes.push((10_000_000, "10M"));
    }
    sizes
}

/// Runs `lookup` on the next `LOOKUPS_PER_ITER` ids of `pool` each iteration.
fn bench_lookups(
    b: &mut criterion::Bencher<'_>,
    pool: &[BlobId],
    lookup: impl Fn(&BlobId) -> bool,
) {
    let mut pos = 0;
    b.iter(|| {
        let batch = &pool[pos..pos + LOOKUPS_PER_ITER];
        pos = (pos + LOOKUPS_PER_ITER) % pool.len();
        let mut found = 0;
        for id in batch {
            found += usize::from(lookup(black_box(id)));
        }
        found
    });
}

fn index(c: &mut Criterion) {
    for (entries, label) in sizes() {
        let built = build(entries);
        let index = &built.index;
        let mut rng = Rng::new(entries);
        let hits: Vec<BlobId> = (0..POOL).map(|_| present_id(rng.below(entries))).collect();
        let misses: Vec<BlobId> = (0..POOL as u64).map(absent_id).collect();

        let mut g = c.benchmark_group("index_lookup");
        g.throughput(Throughput::Elements(LOOKUPS_PER_ITER as u64));
        g.bench_function(BenchmarkId::new("get_hit", label), |b| {
            bench_lookups(b, &hits, |id| {
                index.get(id).expect("get").expect("present").length > 0
            })
        });
        g.bench_function(BenchmarkId::new("contains_hit", label), |b| {
            bench_lookups(b, &hits, |id| {
                let found = index.contains(id).expect("contains");
                assert!(found);
                found
            })
        });
        let hot: Vec<Sketch> = (0..POOL as u64)
            .map(|i| {
                let mut r = Rng::new(MISS_SALT ^ i);
                let mut sk = Sketch(std::array::from_fn(|_| r.next_u64()));
                sk.0[0] = HOT_FEATURES[(i % 16) as usize];
                sk
            })
            .collect();
        g.bench_function(BenchmarkId::new("similar_hot", label), |b| {
            let mut pos = 0;
            b.iter(|| {
                let batch = &hot[pos..pos + LOOKUPS_PER_ITER];
                pos = (pos + LOOKUPS_PER_ITER) % hot.len();
                batch
                    .iter()
                    .filter(|sk| index.similar(black_box(sk)).expect("similar").is_some())
                    .count()
            })
        });
        g.bench_function(BenchmarkId::new("contains_miss", label), |b| {
            bench_lookups(b, &misses, |id| {
                let found = index.contains(id).expect("contains");
                assert!(!found);
                found
            })
        });
        g.finish();

        let mut g = c.benchmark_group("index_ingest");
        g.throughput(Throughput::Elements(ENTRIES_PER_FILE));
        g.sampling_mode(SamplingMode::Flat);
        let mut next = entries / ENTRIES_PER_FILE;
        g.bench_function(BenchmarkId::new("10k", label), |b| {
            b.iter_batched(
                || {
                    next += 1;
                    index_file(next - 1)
                },
                |(id, file)| {
                    index.ingest(&id, &file).expect("ingest");
                    file // dropped outside the timing
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

/// `criterion_group!` makes a public function; a private module keeps it
/// out of the `missing_docs` lint.
mod harness {
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = vault_benches::criterion_config(3);
        targets = super::index
    }
}
criterion_main!(harness::benches);
