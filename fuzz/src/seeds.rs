//! Seed inputs for every target: valid encodings (built with the real
//! encoders and the fixed keys) and a few near misses.
//!
//! `cargo run --example gen_corpus` writes them to `corpus/<target>/seed-<name>`;
//! `tests/replay.rs` also runs them in memory. Sealed seeds (a pack, an index
//! object, a key) contain random nonces, so regenerating changes their bytes
//! but not what they decode to.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use vault_core::blob::{seal_blob, BlobType, Compression};
use vault_core::delta::Sketch;
use vault_core::id::{BlobId, IndexId, PackId};
use vault_core::index::IndexFile;
use vault_core::pack::{PackEntry, PackWriter};
use vault_core::tree::{encode_list, Node, NodeKind, Tree};

use crate::{fixed_key_file, keys};

/// One seed: target, file name (without the `seed-` prefix), bytes.
pub type Seed = (&'static str, &'static str, Vec<u8>);

/// All seeds of all targets.
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    pack(&mut out);
    index(&mut out);
    blob(&mut out);
    tree(&mut out);
    list(&mut out);
    key(&mut out);
    chunker(&mut out);
    time(&mut out);
    delta(&mut out);
    out
}

/// A valid pack of three small blobs under the fixed keys.
pub fn valid_pack() -> Vec<u8> {
    let k = keys();
    let mut w = PackWriter::default();
    let blobs: [(BlobType, &[u8]); 3] = [
        (
            BlobType::Data,
            b"COPY accounts (id, balance) FROM stdin;\n1\t100\n",
        ),
        (BlobType::Tree, b"{\"nodes\":[]}"),
        (BlobType::List, &[7; 64]),
    ];
    for (kind, plain) in blobs {
        let id = k.blob_id(kind, plain);
        let sealed = seal_blob(k, kind, &id, plain, Compression { zstd_level: None });
        w.add(kind, id, &sealed, plain.len() as u32, None);
    }
    w.finish(k).expect("a new pack reads back").1.to_vec()
}

fn pack(out: &mut Vec<Seed>) {
    let valid = valid_pack();
    let truncated = valid[..valid.len() - 1].to_vec();
    let empty = PackWriter::default()
        .finish(crate::keys())
        .expect("an empty pack reads back")
        .1
        .to_vec();
    out.push(("pack_header", "valid-3-blobs", valid));
    out.push(("pack_header", "valid-empty", empty));
    out.push(("pack_header", "truncated", truncated));
    // Blob specs for the PackWriter half: 3 blobs (type/compression byte, u16 size).
    out.push((
        "pack_header",
        "spec-3-blobs",
        vec![3, 0, 100, 0, 5, 0, 16, 2, 1, 0, b'x', b'y'],
    ));
}

fn sample_index() -> IndexFile {
    let e = |i: u8, kind| PackEntry {
        kind,
        id: BlobId([i; 32]),
        offset: u32::from(i) * 100,
        length: 100,
        raw_length: 300,
        base: (i == 0).then_some(BlobId([5; 32])),
    };
    IndexFile {
        packs: vec![
            (
                PackId([1; 32]),
                vec![e(0, BlobType::Data), e(1, BlobType::Tree)],
            ),
            (PackId([2; 32]), vec![e(2, BlobType::List)]),
        ],
        supersedes: vec![IndexId([9; 32])],
        sketches: vec![(BlobId([1; 32]), Sketch([1, 2, 3, 4, 5, 6, 7, 8]))],
        writer: Some("lease-0123456789abcdef0123456789abcdef".into()),
    }
}

fn index(out: &mut Vec<Seed>) {
    let f = sample_index();
    out.push(("index_decode", "plain-2-packs", f.encode_plain()));
    out.push((
        "index_decode",
        "plain-empty",
        IndexFile::default().encode_plain(),
    ));
    out.push(("index_decode", "sealed-2-packs", f.seal(keys())));
}

fn blob(out: &mut Vec<Seed>) {
    // flags byte (type, compression, bit to flip), then the plaintext.
    out.push(("blob_open", "stored-data", b"\x00hello, vault".to_vec()));
    let mut text = vec![0b0000_1001u8];
    text.extend(b"INSERT INTO t VALUES (1, 'abc');\n".repeat(20));
    out.push(("blob_open", "zstd-tree", text));
    out.push((
        "blob_open",
        "list-ids",
        [&[0b1110_0010u8][..], &[0xab; 64]].concat(),
    ));
}

fn sample_tree() -> Vec<u8> {
    let mut file = Node::new(OsStr::new("db.sql"), NodeKind::File);
    file.mode = 0o644;
    file.mtime_ns = 1_795_000_000_000_000_000;
    file.size = 46;
    file.content = vec![BlobId([3; 32]), BlobId([4; 32])];
    file.digest = Some("ab".repeat(32));
    let mut dir = Node::new(OsStr::from_bytes(b"caf\xe9"), NodeKind::Dir);
    dir.mode = 0o755;
    dir.subtree = Some(BlobId([5; 32]));
    let mut link = Node::new(OsStr::new("latest"), NodeKind::Symlink);
    link.mode = 0o777;
    link.target = Some("db.sql".into());
    Tree {
        nodes: vec![file, dir, link],
    }
    .encode()
}

fn tree(out: &mut Vec<Seed>) {
    out.push(("tree_decode", "three-nodes", sample_tree()));
    out.push(("tree_decode", "empty", Tree::default().encode()));
    out.push(("tree_decode", "bad-type", b"{\"nodes\": 5}".to_vec()));
}

fn list(out: &mut Vec<Seed>) {
    out.push((
        "list_decode",
        "three-ids",
        encode_list(&[BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32])]),
    ));
    out.push(("list_decode", "ragged", vec![0xcd; 33]));
}

fn key(out: &mut Vec<Seed>) {
    let key = fixed_key_file();
    out.push((
        "key_decode",
        "fixed",
        serde_json::to_vec_pretty(&key).expect("a key serializes"),
    ));
    let mut hostile = serde_json::to_value(&key).expect("a key serializes");
    hostile["kdf_params"]["memory_kib"] = u32::MAX.into();
    out.push((
        "key_decode",
        "hostile-memory",
        serde_json::to_vec(&hostile).expect("json serializes"),
    ));
    let mut v2 = serde_json::to_value(&key).expect("a key serializes");
    v2["version"] = 2.into();
    out.push((
        "key_decode",
        "version-2",
        serde_json::to_vec(&v2).expect("json serializes"),
    ));
}

/// A chunker input: header (see [`crate::chunker`]) then body.
fn chunker_input(
    seed: u64,
    len: u32,
    mode: u8,
    batch: u16,
    hint: u32,
    steps: &[u16],
    body: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&seed.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.push(mode);
    v.extend_from_slice(&batch.to_le_bytes());
    v.extend_from_slice(&hint.to_le_bytes());
    v.push((steps.len() - 1) as u8);
    for s in steps {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.extend_from_slice(body);
    v
}

fn chunker(out: &mut Vec<Seed>) {
    let text = b"COPY accounts (id, balance) FROM stdin;\n1\t100\n2\t250\n";
    out.push((
        "chunker",
        "noise-250k",
        chunker_input(42, 250_000, 1, 0, 0, &[4096, 1, 65535], text),
    ));
    out.push((
        "chunker",
        "zeros-200k-exact-hint-interrupted",
        chunker_input(0, 200_000, 0x80 | 0x40, 20_000, 200_000, &[7000], b""),
    ));
    out.push((
        "chunker",
        "text-then-zeros-short-hint",
        chunker_input(7, 150_000, 2 | 0x40, 0, 90_000, &[100, 30_000], text),
    ));
    out.push((
        "chunker",
        "tiny",
        chunker_input(1, 3, 0x40, 0, 3, &[1], b"abc"),
    ));
}

fn time(out: &mut Vec<Seed>) {
    out.push(("snapshot_time", "utc", b"2026-11-23T03:00:00Z".to_vec()));
    out.push((
        "snapshot_time",
        "offset",
        b"2026-03-29T01:30:00+02:00".to_vec(),
    ));
    out.push((
        "snapshot_time",
        "fraction",
        b"2026-01-01T00:00:00.123456789-05:30".to_vec(),
    ));
    out.push(("snapshot_time", "words", b"yesterday".to_vec()));
}

fn delta(out: &mut Vec<Seed>) {
    // u16 split point, then base || frame.
    let base = b"INSERT INTO t VALUES (1, 'abc');\n".repeat(40);
    let mut edited = base.clone();
    edited[77] = b'Z';
    let frame = vault_core::delta::encode(&base, &edited, vault_core::delta::DELTA_LEVEL)
        .expect("in-memory delta encoding");
    let mut valid = (base.len() as u16).to_le_bytes().to_vec();
    valid.extend_from_slice(&base);
    valid.extend_from_slice(&frame);
    out.push(("delta_decode", "valid-frame", valid));
    out.push((
        "delta_decode",
        "no-base",
        [&[0u8, 0][..], &frame[..]].concat(),
    ));
}
