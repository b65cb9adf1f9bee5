//! Quick single-core speeds of pipeline stages on a file: `cargo run --release
//! -p vault-benches --example stage_speed FILE`.

use std::time::Instant;

use vault_core::blob::{seal_blob, BlobType, Compression};
use vault_core::chunker::{ChunkerParams, Cutter};
use vault_core::crypto::MasterKey;

fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let data = std::fs::read(&path).expect("read");
    let mb = data.len() as f64 / 1e6;
    let keys = MasterKey::generate().keys();
    let cutter = Cutter::new(ChunkerParams::default(), keys.chunker_seed);
    let t = Instant::now();
    let lens = cutter.lengths(&data);
    let s = t.elapsed().as_secs_f64();
    println!("chunk: {:.0} MB/s ({} chunks)", mb / s, lens.len());
    let t = Instant::now();
    let mut pos = 0;
    for l in &lens {
        std::hint::black_box(keys.blob_id(BlobType::Data, &data[pos..pos + l]));
        pos += l;
    }
    println!("keyed hash: {:.0} MB/s", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut h = keys.content_hasher();
    h.update(&data);
    std::hint::black_box(h.finalize());
    println!(
        "digest (update): {:.0} MB/s",
        mb / t.elapsed().as_secs_f64()
    );
    for level in [1, 3] {
        let t = Instant::now();
        let mut pos = 0;
        let mut out = 0;
        for l in &lens {
            let c = &data[pos..pos + l];
            let id = keys.blob_id(BlobType::Data, c);
            out += seal_blob(
                &keys,
                BlobType::Data,
                &id,
                c,
                Compression {
                    zstd_level: Some(level),
                },
            )
            .len();
            pos += l;
        }
        println!(
            "hash+zstd{level}+seal: {:.0} MB/s (ratio {:.2})",
            mb / t.elapsed().as_secs_f64(),
            data.len() as f64 / out as f64
        );
    }
}
