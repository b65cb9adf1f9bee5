//! Pack assembly and parsing speed.
//!
//! Input: 16 incompressible 1 MiB chunks, each sealed with [`seal_blob`] (the
//! probe skips zstd, so each sealed blob is ~1 MiB and the pack ~16 MiB, the
//! default pack size).
//!
//! - `pack_write/16x1MiB`: [`PackWriter`] appending the 16 sealed blobs, then
//!   `finish`: seal the header, BLAKE3 the whole pack for its name, and parse
//!   the header back (verify-after-write). Throughput is pack bytes.
//! - `pack_parse/16x1MiB`: [`parse_pack`] of that pack (read the trailer,
//!   open and decode the sealed header). Throughput is blob entries.
//! - `pack_read_all/16x1MiB`: `parse_pack`, then [`open_blob`] of every blob
//!   in it, as restore does with a whole pack. Throughput is pack bytes.

use std::hint::black_box;
use std::ops::Deref;

use criterion::{criterion_main, Criterion, Throughput};
use vault_benches::{random_bytes, MIB};
use vault_core::blob::{open_blob, seal_blob, BlobType, Compression};
use vault_core::crypto::{Keys, MasterKey};
use vault_core::pack::{parse_pack, PackWriter};
use vault_core::{BlobId, PackId};

const BLOBS: usize = 16;

struct Sealed {
    id: BlobId,
    bytes: Vec<u8>,
    raw_len: u32,
}

fn sealed_blobs(keys: &Keys) -> Vec<Sealed> {
    (0..BLOBS)
        .map(|i| {
            let data = random_bytes(MIB, 100 + i as u64);
            let id = keys.blob_id(BlobType::Data, &data);
            let bytes = seal_blob(keys, BlobType::Data, &id, &data, Compression::default());
            Sealed {
                id,
                bytes,
                raw_len: data.len() as u32,
            }
        })
        .collect()
}

fn write_pack(keys: &Keys, blobs: &[Sealed]) -> (PackId, impl Deref<Target = [u8]>) {
    let total: usize = blobs.iter().map(|b| b.bytes.len()).sum();
    let mut w = PackWriter::with_capacity(total + 4096);
    for b in blobs {
        w.add(BlobType::Data, b.id, black_box(&b.bytes), b.raw_len, None);
    }
    let (id, bytes, _entries) = w.finish(keys).expect("pack verifies");
    (id, bytes)
}

fn pack(c: &mut Criterion) {
    let keys = MasterKey::generate().keys();
    let blobs = sealed_blobs(&keys);
    let (id, bytes) = write_pack(&keys, &blobs);
    let pack_len = bytes.len() as u64;

    let mut g = c.benchmark_group("pack_write");
    g.throughput(Throughput::Bytes(pack_len));
    g.bench_function("16x1MiB", |b| b.iter(|| write_pack(&keys, &blobs)));
    g.finish();

    let mut g = c.benchmark_group("pack_parse");
    g.throughput(Throughput::Elements(BLOBS as u64));
    g.bench_function("16x1MiB", |b| {
        b.iter(|| parse_pack(&keys, &id, black_box(&bytes)).expect("parses"))
    });
    g.finish();

    let mut g = c.benchmark_group("pack_read_all");
    g.throughput(Throughput::Bytes(pack_len));
    g.bench_function("16x1MiB", |b| {
        b.iter(|| {
            let entries = parse_pack(&keys, &id, black_box(&bytes)).expect("parses");
            let mut plain = 0;
            for e in &entries {
                let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                plain += open_blob(&keys, e.kind, &e.id, sealed, e.raw_length)
                    .expect("opens")
                    .len();
            }
            plain
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
        targets = super::pack
    }
}
criterion_main!(harness::benches);
