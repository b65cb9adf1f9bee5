//! Index objects: the in-repository record of packs and their blobs.
//!
//! Plaintext: `version (u8 = 2) || pack_count (u32)` then per pack
//! `pack_id (32) || entry_count (u32)` and entries of
//! `type (u8) || blob_id (32) || [base (32)] || offset (u32) || length (u32) || raw_length (u32)`
//! (the type byte's high bit marks a delta blob, whose base id follows),
//! then `superseded_count (u32)` and that many index ids (32 bytes each),
//! then `sketch_count (u32)` and that many `blob_id (32) || super_feature (u64) x 8`,
//! then `writer_len (u8)` and that many bytes of UTF-8: the identity of the
//! lease of the backup that wrote the object (empty when none).
//! Version 1 objects end after the superseded ids. All integers little-endian. The plaintext is zstd-compressed, then sealed
//! with associated data `"vault index v1"`. Decoding checks every count
//! against the bytes present before allocating, and rejects trailing bytes.

use crate::crypto::Keys;
use crate::delta::{Sketch, SUPER_FEATURES};
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::{parse_type_byte, type_byte, PackEntry};

const AD: &[u8] = b"vault index v1";
const VERSION: u8 = 2;
/// Bytes of an entry without a base.
const ENTRY_LEN: usize = 1 + 32 + 12;
const SKETCH_LEN: usize = 32 + 8 * SUPER_FEATURES;
/// Largest decompressed index object accepted.
const MAX_PLAIN: usize = 512 * 1024 * 1024;

/// The decoded content of one index object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Packs and the blobs each holds.
    pub packs: Vec<(PackId, Vec<PackEntry>)>,
    /// Older index objects this one replaces.
    pub supersedes: Vec<IndexId>,
    /// Resemblance sketches of whole data blobs (candidates for delta bases).
    pub sketches: Vec<(BlobId, Sketch)>,
    /// The lease identity ([`crate::lock::lease_key`]) of the backup that
    /// wrote this object: prune leaves its packs alone while that backup runs.
    pub writer: Option<String>,
}

impl IndexFile {
    /// Number of blob entries.
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|(_, e)| e.len()).sum()
    }

    /// Plaintext encoding (before compression and sealing).
    pub fn encode_plain(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.packs.len() * 36 + self.blob_count() * ENTRY_LEN);
        out.push(VERSION);
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, entries) in &self.packs {
            out.extend_from_slice(pack.as_bytes());
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                out.push(type_byte(e.kind, e.base.as_ref()));
                out.extend_from_slice(e.id.as_bytes());
                if let Some(base) = &e.base {
                    out.extend_from_slice(base.as_bytes());
                }
                for v in [e.offset, e.length, e.raw_length] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for id in &self.supersedes {
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&(self.sketches.len() as u32).to_le_bytes());
        for (id, sk) in &self.sketches {
            out.extend_from_slice(id.as_bytes());
            for f in sk.0 {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        let writer = self.writer.as_deref().unwrap_or("").as_bytes();
        let writer = &writer[..writer.len().min(255)];
        out.push(writer.len() as u8);
        out.extend_from_slice(writer);
        out
    }

    /// Decodes [`IndexFile::encode_plain`] output, rejecting anything malformed.
    pub fn decode_plain(what: &str, b: &[u8]) -> Result<IndexFile> {
        let mut r = Reader { b, what };
        let version = r.u8()?;
        if !(1..=VERSION).contains(&version) {
            return Err(Error::corrupt(what, "unknown index version"));
        }
        let npacks = r.count(36)?;
        let mut packs = Vec::with_capacity(npacks);
        for _ in 0..npacks {
            let pack = PackId(r.id()?);
            let n = r.count(ENTRY_LEN)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let t = r.u8()?;
                let (kind, delta) = parse_type_byte(t)
                    .ok_or_else(|| Error::corrupt(what, format!("unknown blob type {t}")))?;
                let id = BlobId(r.id()?);
                let base = if delta { Some(BlobId(r.id()?)) } else { None };
                let (offset, length, raw_length) = (r.u32()?, r.u32()?, r.u32()?);
                offset
                    .checked_add(length)
                    .ok_or_else(|| Error::corrupt(what, "entry range overflows"))?;
                entries.push(PackEntry {
                    kind,
                    id,
                    offset,
                    length,
                    raw_length,
                    base,
                });
            }
            packs.push((pack, entries));
        }
        let ns = r.count(32)?;
        let supersedes = (0..ns)
            .map(|_| r.id().map(IndexId))
            .collect::<Result<_>>()?;
        let mut sketches = Vec::new();
        if version >= 2 {
            let n = r.count(SKETCH_LEN)?;
            sketches.reserve_exact(n);
            for _ in 0..n {
                let id = BlobId(r.id()?);
                let mut sk = [0u64; SUPER_FEATURES];
                for f in &mut sk {
                    *f = r.u64()?;
                }
                sketches.push((id, Sketch(sk)));
            }
        }
        let mut writer = None;
        if version >= 2 {
            let n = usize::from(r.u8()?);
            let w = std::str::from_utf8(r.take(n)?)
                .map_err(|_| Error::corrupt(what, "writer is not UTF-8"))?;
            if !w.is_empty() {
                writer = Some(w.to_owned());
            }
        }
        if !r.b.is_empty() {
            return Err(Error::corrupt(
                what,
                format!("{} trailing bytes", r.b.len()),
            ));
        }
        Ok(IndexFile {
            packs,
            supersedes,
            sketches,
            writer,
        })
    }

    /// Compressed and sealed bytes, ready to store.
    pub fn seal(&self, keys: &Keys) -> Vec<u8> {
        let plain = self.encode_plain();
        let z = zstd::bulk::compress(&plain, 3).expect("in-memory zstd compression");
        keys.seal(AD, &z)
    }

    /// Opens sealed bytes of the index object `id`.
    pub fn open(keys: &Keys, id: &IndexId, sealed: &[u8]) -> Result<IndexFile> {
        let what = format!("index {}", id.to_hex());
        let z = keys
            .open(AD, sealed)
            .map_err(|e| Error::corrupt(&what, e.to_string()))?;
        let plain = zstd::bulk::decompress(&z, MAX_PLAIN)
            .map_err(|e| Error::corrupt(&what, format!("zstd: {e}")))?;
        Self::decode_plain(&what, &plain)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    what: &'a str,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() < n {
            return Err(Error::corrupt(self.what, "truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn id(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }
    /// A count of items of at least `item_len` bytes each, checked against the bytes left.
    fn count(&mut self, item_len: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_len) > self.b.len() {
            return Err(Error::corrupt(
                self.what,
                format!("count {n} exceeds the remaining bytes"),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::crypto::MasterKey;

    fn sample() -> IndexFile {
        let e = |i: u8| PackEntry {
            kind: if i.is_multiple_of(2) {
                BlobType::Data
            } else {
                BlobType::Tree
            },
            id: BlobId([i; 32]),
            offset: u32::from(i) * 100,
            length: 100,
            raw_length: 300,
            base: (i == 2).then_some(BlobId([7; 32])),
        };
        IndexFile {
            packs: vec![
                (PackId([1; 32]), vec![e(1), e(2)]),
                (PackId([2; 32]), vec![e(3)]),
            ],
            supersedes: vec![IndexId([9; 32])],
            sketches: vec![(BlobId([2; 32]), Sketch([1, u64::MAX, 3, 4, 5, 6, 7, 8]))],
            writer: Some("lease-00ff".into()),
        }
    }

    #[test]
    fn round_trip_sealed() {
        let k = MasterKey::generate().keys();
        let f = sample();
        let sealed = f.seal(&k);
        assert_eq!(IndexFile::open(&k, &IndexId([0; 32]), &sealed).unwrap(), f);
        assert_eq!(f.blob_count(), 3);
    }

    #[test]
    fn version_1_objects_still_decode() {
        let mut f = sample();
        f.sketches.clear();
        f.writer = None;
        for (_, entries) in &mut f.packs {
            for e in entries {
                e.base = None;
            }
        }
        let mut plain = f.encode_plain();
        plain[0] = 1;
        plain.truncate(plain.len() - 5); // no sketch or writer section
        assert_eq!(IndexFile::decode_plain("t", &plain).unwrap(), f);
    }

    #[test]
    fn malformed_plaintext_is_rejected() {
        let plain = sample().encode_plain();
        for cut in 0..plain.len() {
            assert!(
                IndexFile::decode_plain("t", &plain[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        let mut trailing = plain.clone();
        trailing.push(0);
        assert!(IndexFile::decode_plain("t", &trailing).is_err());
        let mut huge = plain;
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(IndexFile::decode_plain("t", &huge).is_err());
    }
}
