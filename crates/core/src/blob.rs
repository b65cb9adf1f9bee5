//! Blobs: the unit of deduplication, stored sealed inside packs.
//!
//! A blob is a chunk of file data, a tree (directory listing) or a list of
//! chunk ids. Its id is the keyed hash of its plaintext. On disk it is
//! `seal(ad, encoding || payload)` where the associated data binds the blob
//! type and id, so a blob cannot be swapped for another or replayed under a
//! different id. The encoding byte is inside the ciphertext:
//!
//! | byte | meaning | payload |
//! |---|---|---|
//! | 0 | stored | the plaintext |
//! | 1 | zstd | a zstd frame of the plaintext |
//! | 2 | zstd delta | 32-byte base blob id, then a zstd frame using the base's plaintext as prefix |
//!
//! A delta blob ([`crate::delta`]) needs its base, which is always a whole
//! blob: [`open_body`] returns the frame, [`apply_delta`] finishes it.
//! Readers reject encodings they do not know.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::BlobId;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    /// File or stream content.
    Data,
    /// A directory listing ([`crate::tree::Tree`]).
    Tree,
    /// A list of chunk ids (for large files).
    List,
}

impl BlobType {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
            BlobType::List => 2,
        }
    }

    /// Parses the wire value.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => BlobType::Data,
            1 => BlobType::Tree,
            2 => BlobType::List,
            _ => return None,
        })
    }

    /// Lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
            BlobType::List => "list",
        }
    }
}

const ENC_STORED: u8 = 0;
const ENC_ZSTD: u8 = 1;
/// A zstd frame against a base blob (see module docs).
pub const ENC_ZSTD_DELTA: u8 = 2;

/// Largest plaintext a blob may have (bounds decompression; writers refuse larger).
pub const MAX_BLOB_SIZE: usize = 256 * 1024 * 1024;

fn associated_data(kind: BlobType, id: &BlobId) -> [u8; 46] {
    let mut ad = [0u8; 46];
    ad[..13].copy_from_slice(b"vault blob v1");
    ad[13] = kind.to_u8();
    ad[14..].copy_from_slice(id.as_bytes());
    ad
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(level: i32, data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        c.as_mut()?.1.compress(data).ok()
    })
}

fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        d.as_mut().expect("set above").decompress(data, capacity)
    })
}

/// True when a sample of `data` does not compress: skip zstd for it.
fn looks_incompressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 16 * 1024;
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let mid = data.len() / 2;
    let sample = &data[mid..mid + SAMPLE];
    match compress(1, sample) {
        Some(c) => c.len() * 100 > sample.len() * 97,
        None => false,
    }
}

/// Compression setting: `None` stores blobs as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// zstd level (negative levels are fast modes), or `None`.
    pub zstd_level: Option<i32>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            zstd_level: Some(3),
        }
    }
}

/// The plaintext body of a whole blob: the encoding byte, then the data
/// compressed when that helps.
pub fn encode_body(plain: &[u8], compression: Compression) -> Vec<u8> {
    let mut body = Vec::new();
    let compressed = match compression.zstd_level {
        Some(level) if !looks_incompressible(plain) => {
            compress(level, plain).filter(|c| c.len() < plain.len())
        }
        _ => None,
    };
    match compressed {
        Some(c) => {
            body.reserve_exact(c.len() + 1);
            body.push(ENC_ZSTD);
            body.extend_from_slice(&c);
        }
        None => {
            body.reserve_exact(plain.len() + 1);
            body.push(ENC_STORED);
            body.extend_from_slice(plain);
        }
    }
    body
}

/// The plaintext body of a delta blob against `base`.
pub fn delta_body(base: &BlobId, frame: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(33 + frame.len());
    body.push(ENC_ZSTD_DELTA);
    body.extend_from_slice(base.as_bytes());
    body.extend_from_slice(frame);
    body
}

/// Seals a body made by [`encode_body`] or [`delta_body`].
pub fn seal_body(keys: &Keys, kind: BlobType, id: &BlobId, body: &[u8]) -> Vec<u8> {
    keys.seal(&associated_data(kind, id), body)
}

/// Compresses (when it helps) and seals one whole blob.
pub fn seal_blob(
    keys: &Keys,
    kind: BlobType,
    id: &BlobId,
    plain: &[u8],
    compression: Compression,
) -> Vec<u8> {
    seal_body(keys, kind, id, &encode_body(plain, compression))
}

/// An opened blob: whole (decompressed and verified) or a delta frame that
/// still needs its base.
#[derive(Debug)]
pub enum Body {
    /// The verified plaintext.
    Whole(Vec<u8>),
    /// A delta: the base's id and the zstd frame (see [`apply_delta`]).
    Delta {
        /// The whole blob the frame refers to.
        base: BlobId,
        /// The zstd frame.
        frame: Vec<u8>,
    },
}

fn what(kind: BlobType, id: &BlobId) -> String {
    format!("{} blob {}", kind.name(), id.to_hex())
}

fn check_raw_len(kind: BlobType, id: &BlobId, raw_len: u32) -> Result<usize> {
    let raw_len = raw_len as usize;
    if raw_len > MAX_BLOB_SIZE {
        return Err(Error::corrupt(
            what(kind, id),
            format!("recorded size {raw_len} exceeds the maximum"),
        ));
    }
    Ok(raw_len)
}

fn verify(
    keys: &Keys,
    kind: BlobType,
    id: &BlobId,
    plain: Vec<u8>,
    raw_len: usize,
) -> Result<Vec<u8>> {
    if plain.len() != raw_len {
        return Err(Error::corrupt(
            what(kind, id),
            format!("size {} differs from the recorded {raw_len}", plain.len()),
        ));
    }
    if keys.blob_id(kind, &plain) != *id {
        return Err(Error::corrupt(
            what(kind, id),
            "content does not match its id",
        ));
    }
    Ok(plain)
}

/// Opens one blob. A whole blob is decompressed and verified against `id`
/// (`raw_len`, from the index, bounds decompression); a delta blob is
/// returned as its frame.
pub fn open_body(
    keys: &Keys,
    kind: BlobType,
    id: &BlobId,
    sealed: &[u8],
    raw_len: u32,
) -> Result<Body> {
    let body = keys
        .open(&associated_data(kind, id), sealed)
        .map_err(|e| Error::corrupt(what(kind, id), e.to_string()))?;
    let (&enc, payload) = body
        .split_first()
        .ok_or_else(|| Error::corrupt(what(kind, id), "empty body"))?;
    let raw_len = check_raw_len(kind, id, raw_len)?;
    let plain = match enc {
        ENC_STORED => payload.to_vec(),
        ENC_ZSTD => decompress(payload, raw_len)
            .map_err(|e| Error::corrupt(what(kind, id), format!("zstd: {e}")))?,
        ENC_ZSTD_DELTA if kind == BlobType::Data && payload.len() >= 32 => {
            let base = BlobId::from_slice(&payload[..32]).expect("32 bytes");
            return Ok(Body::Delta {
                base,
                frame: payload[32..].to_vec(),
            });
        }
        other => {
            return Err(Error::corrupt(
                what(kind, id),
                format!("unknown encoding {other}"),
            ))
        }
    };
    verify(keys, kind, id, plain, raw_len).map(Body::Whole)
}

/// Finishes a delta blob: rebuilds it from its frame and its base's
/// plaintext, and verifies it against `id`.
pub fn apply_delta(
    keys: &Keys,
    kind: BlobType,
    id: &BlobId,
    base: &[u8],
    frame: &[u8],
    raw_len: u32,
) -> Result<Vec<u8>> {
    let raw_len = check_raw_len(kind, id, raw_len)?;
    let plain = crate::delta::decode(&what(kind, id), base, frame, raw_len)?;
    verify(keys, kind, id, plain, raw_len)
}

/// Opens, decompresses and verifies one whole blob; a delta blob is an error
/// here (its base is needed: see [`open_body`]).
pub fn open_blob(
    keys: &Keys,
    kind: BlobType,
    id: &BlobId,
    sealed: &[u8],
    raw_len: u32,
) -> Result<Vec<u8>> {
    match open_body(keys, kind, id, sealed, raw_len)? {
        Body::Whole(plain) => Ok(plain),
        Body::Delta { base, .. } => Err(Error::corrupt(
            what(kind, id),
            format!(
                "is a delta against {} where a whole blob was expected",
                base.to_hex()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    #[test]
    fn round_trip_compressible_and_random() {
        let k = MasterKey::generate().keys();
        let text = b"INSERT INTO t VALUES (1, 'abc');\n".repeat(4000);
        let random: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for data in [&text[..], &random[..], b"", b"x"] {
            let id = k.blob_id(BlobType::Data, data);
            let sealed = seal_blob(&k, BlobType::Data, &id, data, Compression::default());
            assert_eq!(
                open_blob(&k, BlobType::Data, &id, &sealed, data.len() as u32).unwrap(),
                data
            );
            assert!(open_blob(&k, BlobType::Tree, &id, &sealed, data.len() as u32).is_err());
        }
        let id = k.blob_id(BlobType::Data, &text);
        let sealed = seal_blob(&k, BlobType::Data, &id, &text, Compression::default());
        assert!(sealed.len() < text.len() / 10);
        assert!(
            open_blob(&k, BlobType::Data, &id, &sealed, 10).is_err(),
            "size bound enforced"
        );
    }

    #[test]
    fn wrong_id_is_rejected() {
        let k = MasterKey::generate().keys();
        let wrong = k.blob_id(BlobType::Data, b"other");
        let sealed = seal_blob(&k, BlobType::Data, &wrong, b"data", Compression::default());
        let err = open_blob(&k, BlobType::Data, &wrong, &sealed, 4).unwrap_err();
        assert!(err.to_string().contains("does not match its id"), "{err}");
    }

    #[test]
    fn delta_blob_round_trip() {
        let k = MasterKey::generate().keys();
        let base = b"SELECT 1; -- a row of a dump\n".repeat(500);
        let mut data = base.clone();
        data[100] = b'X';
        let (bid, id) = (
            k.blob_id(BlobType::Data, &base),
            k.blob_id(BlobType::Data, &data),
        );
        let frame = crate::delta::encode(&base, &data, 3).unwrap();
        let sealed = seal_body(&k, BlobType::Data, &id, &delta_body(&bid, &frame));
        let n = data.len() as u32;
        let Body::Delta { base: b, frame: f } =
            open_body(&k, BlobType::Data, &id, &sealed, n).unwrap()
        else {
            panic!("a delta opens as a delta");
        };
        assert_eq!(b, bid);
        assert_eq!(
            apply_delta(&k, BlobType::Data, &id, &base, &f, n).unwrap(),
            data
        );
        let other = vec![b'#'; base.len()];
        let err = apply_delta(&k, BlobType::Data, &id, &other, &f, n).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(
            open_blob(&k, BlobType::Data, &id, &sealed, n).is_err(),
            "needs its base"
        );
        // Only data blobs may be deltas.
        let tree = seal_body(&k, BlobType::Tree, &id, &delta_body(&bid, &frame));
        assert!(open_body(&k, BlobType::Tree, &id, &tree, n).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sealed_deltas_open_and_rebuild_only_from_their_base(
            base in proptest::collection::vec(0u8..8, 1..20_000),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..40),
            flip in any::<prop::sample::Index>(),
        ) {
            let k = MasterKey::from_bytes([5; 32]).keys();
            let mut data = base.clone();
            for (i, b) in &edits {
                let at = i.index(data.len());
                data[at] = *b;
            }
            let (bid, id) = (k.blob_id(BlobType::Data, &base), k.blob_id(BlobType::Data, &data));
            let frame = crate::delta::encode(&base, &data, crate::delta::DELTA_LEVEL).unwrap();
            let mut sealed = seal_body(&k, BlobType::Data, &id, &delta_body(&bid, &frame));
            let n = data.len() as u32;
            match open_body(&k, BlobType::Data, &id, &sealed, n).unwrap() {
                Body::Delta { base: b, frame: f } => {
                    prop_assert_eq!(b, bid);
                    prop_assert_eq!(apply_delta(&k, BlobType::Data, &id, &base, &f, n).unwrap(), data.clone());
                }
                Body::Whole(_) => prop_assert!(false, "a delta opens as a delta"),
            }
            // Any flipped byte of the sealed delta is found.
            let i = flip.index(sealed.len());
            sealed[i] ^= 0x10;
            prop_assert!(open_body(&k, BlobType::Data, &id, &sealed, n).is_err());
        }

        #[test]
        fn any_changed_byte_fails(data in proptest::collection::vec(0u8..4, 1..3000), pos in any::<prop::sample::Index>()) {
            let k = MasterKey::from_bytes([3; 32]).keys();
            let id = k.blob_id(BlobType::Data, &data);
            let mut sealed = seal_blob(&k, BlobType::Data, &id, &data, Compression::default());
            let i = pos.index(sealed.len());
            sealed[i] ^= 0x40;
            prop_assert!(open_blob(&k, BlobType::Data, &id, &sealed, data.len() as u32).is_err());
        }
    }
}
