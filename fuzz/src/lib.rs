//! Fuzz target bodies for vault's decoders.
//!
//! Each `pub fn <target>(data: &[u8])` is the whole body of
//! `fuzz_targets/<target>.rs`, so the same property runs under libFuzzer
//! (`cargo fuzz run <target>`) and on stable in `tests/replay.rs`, which feeds
//! every file of `corpus/<target>/` through it. A property is asserted, never
//! just called: a panic is a finding.
//!
//! Sealing needs keys. `vault-core` has no public constructor of a
//! [`vault_core::crypto::MasterKey`] from bytes, so [`keys`] unlocks a key
//! object ([`fixed_key_file`]) that seals a fixed master key under a fixed
//! password with the cheap test KDF: the same keys in every process, so
//! committed seeds sealed under them (a pack, an index object) stay valid.

#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::sync::OnceLock;

use vault_core::blob::{open_blob, seal_blob, BlobType, Compression};
use vault_core::chunker::{Chunker, ChunkerParams, Cutter};
use vault_core::crypto::{self, KdfParams, Keys, MasterKey, SEAL_OVERHEAD};
use vault_core::id::{BlobId, IndexId, PackId};
use vault_core::index::IndexFile;
use vault_core::pack::{header_length, parse_header, parse_pack, PackWriter};
use vault_core::repository::KeyFile;
use vault_core::snapshot::{format_time, parse_time};
use vault_core::tree::{decode_list, encode_list, Tree, LIST_FANOUT};

pub mod seeds;

/// A target body.
pub type Target = fn(&[u8]);

/// Every target: its name (`fuzz_targets/<name>.rs`, `corpus/<name>/`) and body.
pub const TARGETS: &[(&str, Target)] = &[
    ("pack_header", pack_header),
    ("index_decode", index_decode),
    ("blob_open", blob_open),
    ("tree_decode", tree_decode),
    ("list_decode", list_decode),
    ("key_decode", key_decode),
    ("chunker", chunker),
    ("snapshot_time", snapshot_time),
    ("delta_decode", delta_decode),
];

// ---------------------------------------------------------------- fixed keys

/// The master key every fuzz process uses.
const FIXED_MASTER: [u8; 32] = *b"vault-fuzz fixed master key 2026";
/// Password of [`fixed_key_file`].
pub const FIXED_PASSWORD: &[u8] = b"vault-fuzz";
/// Associated data of key objects; must match `KEY_AD` in `repository.rs`.
const KEY_AD: &[u8] = b"vault key v1";

struct FixedKeys {
    keys: Keys,
    deterministic: bool,
}

fn fixed() -> &'static FixedKeys {
    static FIXED: OnceLock<FixedKeys> = OnceLock::new();
    FIXED.get_or_init(|| match fixed_key_file().unlock(FIXED_PASSWORD) {
        Some(master) => FixedKeys {
            keys: master.keys(),
            deterministic: true,
        },
        // The key object format changed: fuzzing still works (the targets
        // only need *some* keys), but sealed seeds no longer open.
        None => FixedKeys {
            keys: MasterKey::generate().keys(),
            deterministic: false,
        },
    })
}

/// The working keys of this process (the same in every process, see
/// [`keys_are_deterministic`]).
pub fn keys() -> &'static Keys {
    &fixed().keys
}

/// True when [`keys`] derive from the fixed master key (and sealed seeds open).
pub fn keys_are_deterministic() -> bool {
    fixed().deterministic
}

/// A key object sealing the fixed master key under [`FIXED_PASSWORD`] with the
/// cheap test KDF. The seal's nonce is random; what it unlocks is not.
pub fn fixed_key_file() -> KeyFile {
    let kdf = KdfParams::insecure_for_tests();
    let salt = [0x5a; 16];
    let kek = kdf
        .derive(FIXED_PASSWORD, &salt)
        .expect("the test KDF parameters are valid");
    KeyFile {
        version: 1,
        created: "2026-11-23T00:00:00Z".into(),
        hostname: "fuzz".into(),
        username: "fuzz".into(),
        kdf: "argon2id".into(),
        kdf_params: kdf,
        salt: to_hex(&salt),
        sealed_master: to_hex(&crypto::seal(&kek, KEY_AD, &FIXED_MASTER)),
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ------------------------------------------------------------------ helpers

/// Reads structure from the front of fuzz input; past the end it yields zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// `len` bytes cycled from `pattern` (zeros when it is empty), each XOR'd with `salt`.
fn cycle(pattern: &[u8], len: usize, salt: u8) -> Vec<u8> {
    if pattern.is_empty() {
        return vec![salt; len];
    }
    pattern.iter().cycle().take(len).map(|b| b ^ salt).collect()
}

const ALL_KINDS: [BlobType; 3] = [BlobType::Data, BlobType::Tree, BlobType::List];

fn kind_of(b: u8) -> BlobType {
    ALL_KINDS[usize::from(b % 3)]
}

// ------------------------------------------------------------------ targets

/// `parse_pack`, `header_length` and `parse_header` on arbitrary bytes never
/// panic, agree with each other, and accept only layouts that add up; a pack
/// written by `PackWriter` from fuzzer-chosen blobs parses back to exactly the
/// entries written, and every blob in it opens.
pub fn pack_header(data: &[u8]) {
    let k = keys();
    let id = PackId([0; 32]);

    // The input as a whole pack.
    let parsed = parse_pack(k, &id, data);
    let n = data.len();
    match (n >= 4).then(|| header_length(&id, &data[n - 4..], n as u64)) {
        Some(Ok(hlen)) => {
            let hlen = hlen as usize;
            assert!(
                hlen >= SEAL_OVERHEAD + 5 && hlen + 4 <= n,
                "header_length {hlen} accepted for {n} bytes"
            );
            let direct = parse_header(k, &id, &data[n - 4 - hlen..n - 4], n as u64);
            assert_eq!(
                direct.as_ref().ok(),
                parsed.as_ref().ok(),
                "parse_pack and parse_header disagree"
            );
            if let Ok(entries) = &parsed {
                let mut end = 0u64;
                for e in entries {
                    assert_eq!(u64::from(e.offset), end, "entries are not contiguous");
                    end += u64::from(e.length);
                }
                assert_eq!(
                    end + hlen as u64 + 4,
                    n as u64,
                    "entries do not fill the pack"
                );
            }
        }
        _ => assert!(parsed.is_err(), "a pack without a valid trailer parsed"),
    }

    // header_length and parse_header on arbitrary pieces and claimed lengths.
    let mut inp = Input(data);
    let pack_len = inp.u64();
    let rest = inp.rest();
    if let Ok(len) = header_length(&id, rest.get(..4).unwrap_or(rest), pack_len) {
        assert!(len as usize >= SEAL_OVERHEAD + 5 && u64::from(len) + 4 <= pack_len);
    }
    if let Ok(entries) = parse_header(k, &id, rest, pack_len) {
        let covered: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
        assert_eq!(Some(covered), pack_len.checked_sub(rest.len() as u64 + 4));
    }

    // A valid pack from fuzzer-chosen blobs: count, then (type/compression, size) each.
    let mut inp = Input(data);
    let count = inp.u8() % 9;
    let mut writer = PackWriter::default();
    let mut written = Vec::new();
    for i in 0..count {
        let spec = inp.u8();
        let size = usize::from(inp.u16()) % 8193;
        let kind = kind_of(spec);
        let compression = Compression {
            zstd_level: (spec & 4 != 0).then_some(1),
        };
        let plain = cycle(data, size, i);
        let bid = k.blob_id(kind, &plain);
        let sealed = seal_blob(k, kind, &bid, &plain, compression);
        // Data blobs may be recorded as deltas (the header then carries a base).
        let base = (kind == BlobType::Data && spec & 8 != 0).then_some(BlobId([spec; 32]));
        writer.add(kind, bid, &sealed, plain.len() as u32, base);
        written.push((kind, bid, sealed.len() as u32, plain, base));
    }
    assert_eq!(writer.len(), written.len());
    let (pid, bytes, entries) = writer.finish(k).expect("a freshly written pack reads back");
    assert_eq!(entries.len(), written.len());
    let mut offset = 0u32;
    for (e, (kind, bid, sealed_len, plain, base)) in entries.iter().zip(&written) {
        assert_eq!(
            (e.kind, e.id, e.offset, e.length, e.raw_length, e.base),
            (*kind, *bid, offset, *sealed_len, plain.len() as u32, *base)
        );
        let sealed = &bytes[e.offset as usize..][..e.length as usize];
        let opened =
            open_blob(k, e.kind, &e.id, sealed, e.raw_length).expect("a written blob opens");
        assert_eq!(&opened, plain);
        offset += e.length;
    }
    assert_eq!(
        parse_pack(k, &pid, &bytes).expect("a written pack parses"),
        entries
    );
    let mut shifted = Vec::with_capacity(bytes.len() + 1);
    shifted.push(0);
    shifted.extend_from_slice(&bytes);
    assert!(
        parse_pack(k, &pid, &shifted).is_err(),
        "a pack with a leading byte parsed"
    );
    assert!(
        parse_pack(k, &pid, &bytes[1..]).is_err(),
        "a pack missing its first byte parsed"
    );
    assert!(
        parse_pack(k, &pid, &bytes[..bytes.len() - 1]).is_err(),
        "a truncated pack parsed"
    );
}

/// `IndexFile::decode_plain` never panics and accepts only canonical
/// encodings (`encode_plain(decode_plain(b)) == b`); whatever it accepts
/// survives seal → `IndexFile::open`; `IndexFile::open` on arbitrary bytes
/// never panics.
pub fn index_decode(data: &[u8]) {
    let k = keys();
    let id = IndexId([0; 32]);
    if let Ok(file) = IndexFile::decode_plain("fuzz input", data) {
        if data[0] == 1 {
            // An older version decodes; it is written back as the current one.
            assert_eq!(
                IndexFile::decode_plain("re-encoded", &file.encode_plain())
                    .expect("re-encoded index decodes"),
                file
            );
        } else {
            assert_eq!(
                file.encode_plain(),
                data,
                "decode_plain accepted a non-canonical encoding"
            );
        }
        let sealed = file.seal(k);
        assert_eq!(
            IndexFile::open(k, &id, &sealed).expect("a sealed index opens"),
            file
        );
    }
    // Only a seed sealed under the fixed keys gets past authentication.
    if let Ok(file) = IndexFile::open(k, &id, data) {
        let plain = file.encode_plain();
        assert_eq!(
            IndexFile::decode_plain("re-encoded", &plain).expect("re-encoded index decodes"),
            file
        );
    }
}

/// `open_blob` on arbitrary bytes is an error (never a panic, never Ok), and
/// `seal_blob` → `open_blob` round-trips fuzzer data under every type and
/// compression, while the wrong type, size, id or a flipped bit fail.
pub fn blob_open(data: &[u8]) {
    let k = keys();

    // Arbitrary ciphertext.
    let raw_len = Input(data).u32();
    let claimed = BlobId::from_slice(data).unwrap_or(BlobId([0; 32]));
    for kind in ALL_KINDS {
        let own = k.blob_id(kind, data);
        assert!(
            open_blob(k, kind, &claimed, data, raw_len).is_err(),
            "random bytes opened as a blob"
        );
        assert!(
            open_blob(k, kind, &own, data, data.len() as u32).is_err(),
            "random bytes opened as a blob"
        );
    }

    // Round trip: flags byte (type, compression, bit to flip), then the plaintext.
    let (flags, plain) = match data.split_first() {
        Some((f, p)) => (*f, p),
        None => (0, &[][..]),
    };
    let kind = kind_of(flags);
    let zstd_level = match (flags >> 2) & 3 {
        0 => None,
        1 => Some(-3),
        2 => Some(1),
        _ => Some(3),
    };
    let bid = k.blob_id(kind, plain);
    let raw = plain.len() as u32;
    let sealed = seal_blob(k, kind, &bid, plain, Compression { zstd_level });
    assert_eq!(
        open_blob(k, kind, &bid, &sealed, raw).expect("a sealed blob opens"),
        plain
    );
    assert!(
        open_blob(k, kind_of(flags % 3 + 1), &bid, &sealed, raw).is_err(),
        "opened as the wrong type"
    );
    assert!(
        open_blob(k, kind, &bid, &sealed, raw + 1).is_err(),
        "opened with a larger size"
    );
    if raw > 0 {
        assert!(
            open_blob(k, kind, &bid, &sealed, raw - 1).is_err(),
            "opened with a smaller size"
        );
    }
    let wrong = k.blob_id(kind, &[plain, b"!"].concat());
    assert!(
        open_blob(k, kind, &wrong, &sealed, raw).is_err(),
        "opened under another id"
    );
    let mut flipped = sealed.clone();
    let pos = (usize::from(flags) * 7919 + plain.len()) % flipped.len();
    flipped[pos] ^= 1 << (flags >> 5);
    assert!(
        open_blob(k, kind, &bid, &flipped, raw).is_err(),
        "opened with byte {pos} altered"
    );
}

/// `Tree::decode` never panics; a decoded tree encodes canonically:
/// `decode(encode(t)) == t` with nodes sorted by name, and encoding that again
/// gives the same bytes.
pub fn tree_decode(data: &[u8]) {
    let id = BlobId([0; 32]);
    let Ok(tree) = Tree::decode(&id, data) else {
        return;
    };
    let encoded = tree.clone().encode();
    let back = Tree::decode(&id, &encoded).expect("an encoded tree decodes");
    let mut sorted = tree;
    sorted.nodes.sort_by_key(|n| n.name_os());
    assert_eq!(back, sorted, "decode(encode(t)) is not t sorted");
    for node in &back.nodes {
        let name = node.name_os();
        assert!(back.find(&name).is_some(), "find misses {name:?}");
        let _ = node.target_os();
    }
    assert_eq!(back.encode(), encoded, "tree encoding is not canonical");
}

/// `decode_list` never panics, accepts exactly the whole-id lengths up to
/// `LIST_FANOUT` ids, and `encode_list` gives the input back.
pub fn list_decode(data: &[u8]) {
    let well_formed = data.len().is_multiple_of(32) && data.len() / 32 <= LIST_FANOUT;
    match decode_list(&BlobId([0; 32]), data) {
        Ok(ids) => {
            assert!(well_formed, "accepted a list of {} bytes", data.len());
            assert_eq!(ids.len(), data.len() / 32);
            assert_eq!(encode_list(&ids), data, "list does not round-trip");
        }
        Err(_) => assert!(
            !well_formed,
            "rejected a well-formed list of {} bytes",
            data.len()
        ),
    }
}

/// `KeyFile::decode` never panics and accepts only version 1, argon2id and
/// argon2 parameters within `KdfParams::validate`'s bounds; an accepted key
/// re-encodes to an equal, valid key. Unlocking (argon2) runs only when the
/// parameters are cheap.
pub fn key_decode(data: &[u8]) {
    let Ok(key) = KeyFile::decode("fuzz input", data) else {
        return;
    };
    assert_eq!(key.version, 1);
    assert_eq!(key.kdf, "argon2id");
    let p = key.kdf_params;
    assert!(
        p.validate().is_ok(),
        "decode accepted invalid parameters {p:?}"
    );
    // Whatever validate's current bounds are, never anything near these.
    assert!(
        p.memory_kib <= 4 * 1024 * 1024 && p.iterations <= 100 && p.parallelism <= 64,
        "decode accepted huge parameters {p:?}"
    );
    let json = serde_json::to_vec(&key).expect("a key serializes");
    let again = KeyFile::decode("re-encoded", &json).expect("a re-encoded key decodes");
    assert_eq!(
        serde_json::to_value(&again).expect("a key serializes"),
        serde_json::to_value(&key).expect("a key serializes")
    );
    if u64::from(p.memory_kib) * u64::from(p.iterations) <= 1024 {
        // Malformed hex, short salts and wrong lengths must come back as None.
        let _ = key.unlock(FIXED_PASSWORD);
    }
}

/// A reader that returns fuzzer-chosen read sizes, optionally interrupted
/// before every read.
struct Script<'a> {
    data: &'a [u8],
    steps: &'a [usize],
    next: usize,
    interrupt: bool,
    interrupted: bool,
}

impl Read for Script<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.interrupt && !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let step = self.steps[self.next % self.steps.len()];
        self.next += 1;
        let n = step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A stream built from fuzzer data is cut identically by `Cutter::lengths` on
/// the whole and by `Chunker` over a reader with fuzzer-chosen read sizes and
/// batch size; lengths sum to the stream length; every chunk but the last lies
/// within min..=max; the chunks carry the stream's bytes in order.
///
/// Input: gear seed (u64), stream length (u32, mod 256 KiB + 1), mode (u8:
/// `mode % 3` picks how the body fills the stream, bit 6 passes the size hint,
/// bit 7 interrupts reads), batch size (u16 × 8), size hint (u32, mod 320 KiB),
/// read-size count (u8 mod 16, + 1) and sizes (u16 each), then the body.
pub fn chunker(data: &[u8]) {
    let params = ChunkerParams::from_average(16 * 1024).expect("16 KiB is a valid average");
    let (min, max) = (params.min_size as usize, params.max_size as usize);

    let mut inp = Input(data);
    let seed = inp.u64();
    let len = inp.u32() as usize % (256 * 1024 + 1);
    let mode = inp.u8();
    let batch = usize::from(inp.u16()) * 8;
    let hint = u64::from(inp.u32()) % (320 * 1024);
    let nsteps = usize::from(inp.u8() % 16) + 1;
    let steps: Vec<usize> = (0..nsteps).map(|_| usize::from(inp.u16()).max(1)).collect();
    let body = inp.rest();
    let stream = match mode % 3 {
        0 => cycle(body, len, 0),
        1 => {
            // The body XOR'd with xorshift noise: content-defined cuts everywhere.
            let mut x = seed | 1;
            let mut s = cycle(body, len, 0);
            for b in &mut s {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b ^= (x >> 24) as u8;
            }
            s
        }
        _ => {
            let mut s = body[..body.len().min(len)].to_vec();
            s.resize(len, 0);
            s
        }
    };

    let cutter = Cutter::new(params, seed);
    assert_eq!(cutter.max_size(), max);
    let lens = cutter.lengths(&stream);
    assert_eq!(
        lens.iter().sum::<usize>(),
        stream.len(),
        "lengths do not sum to the input"
    );
    if let Some((last, rest)) = lens.split_last() {
        assert!((1..=max).contains(last), "last chunk of {last} bytes");
        for l in rest {
            assert!(
                (min..=max).contains(l),
                "chunk of {l} bytes outside {min}..={max}"
            );
        }
    }

    let reader = Script {
        data: &stream,
        steps: &steps,
        next: 0,
        interrupt: mode & 0x80 != 0,
        interrupted: false,
    };
    let mut chunker = Chunker::new(reader, cutter, batch);
    if mode & 0x40 != 0 {
        // A size hint that may be short, exact or long.
        chunker = chunker.with_size_hint(hint);
    }
    let mut via_reader = Vec::with_capacity(lens.len());
    let mut pos = 0;
    while let Some(b) = chunker.next_batch().expect("in-memory reads do not fail") {
        assert!(!b.chunks.is_empty(), "empty batch at offset {pos}");
        assert_eq!(
            b.chunks.iter().map(|c| c.len()).sum::<usize>(),
            b.data.len(),
            "chunks do not tile the batch"
        );
        for c in &b.chunks {
            assert_eq!(
                &c[..],
                &stream[pos..pos + c.len()],
                "chunk bytes differ at offset {pos}"
            );
            pos += c.len();
            via_reader.push(c.len());
        }
    }
    assert_eq!(via_reader, lens, "boundaries depend on read sizes");
}

/// `parse_time` never panics, and what it accepts survives `format_time` →
/// `parse_time` with the same instant and offset.
pub fn snapshot_time(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Ok((ts, offset)) = parse_time(&s) else {
        return;
    };
    let text = format_time(ts, offset);
    let again = parse_time(&text).unwrap_or_else(|e| {
        panic!("format_time gave {text:?} for {s:?}, which does not parse: {e}")
    });
    assert_eq!(again, (ts, offset), "{s:?} → {text:?} changed");
}

/// Delta frames: decoding arbitrary frames against arbitrary bases is an
/// error or bytes of the recorded length (never a panic), and encoding a
/// fuzzer-edited copy of a base decodes back to it.
pub fn delta_decode(data: &[u8]) {
    let mut inp = Input(data);
    let split = usize::from(inp.u16());
    let rest = inp.0;
    let (base, frame) = rest.split_at(split.min(rest.len()));
    let raw_len = frame.len().wrapping_mul(3) % 65_536;
    if let Ok(out) = vault_core::delta::decode("fuzz", base, frame, raw_len) {
        assert_eq!(out.len(), raw_len);
    }
    let mut edited = base.to_vec();
    for (i, b) in frame.iter().enumerate().take(64) {
        if !edited.is_empty() {
            let at = (usize::from(*b) * 257 + i) % edited.len();
            edited[at] ^= b | 1;
        }
    }
    edited.extend_from_slice(frame);
    let f = vault_core::delta::encode(base, &edited, vault_core::delta::DELTA_LEVEL)
        .expect("in-memory delta encoding");
    assert_eq!(
        vault_core::delta::decode("fuzz", base, &f, edited.len()).expect("own delta decodes"),
        edited
    );
}
