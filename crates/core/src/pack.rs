//! Packs: many sealed blobs in one stored object.
//!
//! Layout: `blob_1 || blob_2 || ... || blob_n || sealed_header || header_len`
//! where `header_len` is the sealed header's length as a little-endian u32.
//! The header plaintext is `version (u8 = 1) || count (u32 LE)` followed by
//! `count` entries of `type (u8) || id (32) || [base (32)] || length (u32 LE) || raw_length (u32 LE)`;
//! the type byte's high bit ([`DELTA_FLAG`]) marks a delta blob, whose base
//! id follows its own. Offsets follow from the lengths in order. The header is sealed with
//! associated data `"vault pack header v1"`, so sizes of individual blobs are
//! encrypted too. A pack's name is the BLAKE3 of all its bytes.
//!
//! [`PackWriter`] and [`parse_header`] do no I/O: they are the unit for tests
//! and fuzzing.

use bytes::Bytes;

use crate::blob::BlobType;
use crate::crypto::{Keys, SEAL_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{object_hash, BlobId, PackId};

const HEADER_AD: &[u8] = b"vault pack header v1";
const HEADER_VERSION: u8 = 1;
/// Bytes of a header entry without a base.
const ENTRY_LEN: usize = 1 + 32 + 4 + 4;
/// High bit of an entry's type byte: the blob is a delta and its base id follows.
pub const DELTA_FLAG: u8 = 0x80;

/// The type byte of an entry: the blob type, flagged when it has a base.
pub(crate) fn type_byte(kind: BlobType, base: Option<&BlobId>) -> u8 {
    kind.to_u8() | if base.is_some() { DELTA_FLAG } else { 0 }
}

/// Splits a type byte into the blob type and whether a base id follows.
pub(crate) fn parse_type_byte(b: u8) -> Option<(BlobType, bool)> {
    let kind = BlobType::from_u8(b & !DELTA_FLAG)?;
    let delta = b & DELTA_FLAG != 0;
    // Only data blobs are ever delta-encoded.
    (!delta || kind == BlobType::Data).then_some((kind, delta))
}

/// Where one blob sits inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Blob type.
    pub kind: BlobType,
    /// Blob id.
    pub id: BlobId,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
    /// For a delta blob, the (whole) blob it is encoded against.
    pub base: Option<BlobId>,
}

/// Assembles a pack in memory.
#[derive(Default)]
pub struct PackWriter {
    data: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    /// An empty pack with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        PackWriter {
            data: Vec::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    /// Appends a sealed blob (`base`: the base of a delta blob).
    pub fn add(
        &mut self,
        kind: BlobType,
        id: BlobId,
        sealed: &[u8],
        raw_length: u32,
        base: Option<BlobId>,
    ) {
        let offset = u32::try_from(self.data.len()).expect("packs stay below 4 GiB");
        self.data.extend_from_slice(sealed);
        self.entries.push(PackEntry {
            kind,
            id,
            offset,
            length: sealed.len() as u32,
            raw_length,
            base,
        });
    }

    /// Bytes of blob data so far.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Number of blobs so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals the header, appends it, and returns the pack's id, bytes and entries.
    /// The header is opened again before returning (verify-after-write).
    pub fn finish(mut self, keys: &Keys) -> Result<(PackId, Bytes, Vec<PackEntry>)> {
        let mut header = Vec::with_capacity(5 + self.entries.len() * ENTRY_LEN);
        header.push(HEADER_VERSION);
        header.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            header.push(type_byte(e.kind, e.base.as_ref()));
            header.extend_from_slice(e.id.as_bytes());
            if let Some(base) = &e.base {
                header.extend_from_slice(base.as_bytes());
            }
            header.extend_from_slice(&e.length.to_le_bytes());
            header.extend_from_slice(&e.raw_length.to_le_bytes());
        }
        let sealed = keys.seal(HEADER_AD, &header);
        self.data.extend_from_slice(&sealed);
        self.data
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let bytes = Bytes::from(self.data);
        let id = PackId(object_hash(&bytes));
        let check = parse_pack(keys, &id, &bytes)?;
        if check != self.entries {
            return Err(Error::corrupt(
                format!("new pack {}", id.to_hex()),
                "header did not read back as written",
            ));
        }
        Ok((id, bytes, self.entries))
    }
}

/// Length of the sealed header, from a pack's last four bytes.
pub fn header_length(pack_id: &PackId, trailer: &[u8], pack_len: u64) -> Result<u32> {
    let what = || format!("pack {}", pack_id.to_hex());
    let t: [u8; 4] = trailer
        .try_into()
        .map_err(|_| Error::corrupt(what(), "trailer is not 4 bytes"))?;
    let len = u32::from_le_bytes(t);
    if (len as usize) < SEAL_OVERHEAD + 5 || u64::from(len) + 4 > pack_len {
        return Err(Error::corrupt(
            what(),
            format!("header length {len} does not fit a pack of {pack_len} bytes"),
        ));
    }
    Ok(len)
}

/// Opens and decodes a sealed header of a pack of `pack_len` bytes, checking
/// that its blobs exactly fill the space before it.
pub fn parse_header(
    keys: &Keys,
    pack_id: &PackId,
    sealed: &[u8],
    pack_len: u64,
) -> Result<Vec<PackEntry>> {
    let what = || format!("pack {} header", pack_id.to_hex());
    let plain = keys
        .open(HEADER_AD, sealed)
        .map_err(|e| Error::corrupt(what(), e.to_string()))?;
    if plain.len() < 5 || plain[0] != HEADER_VERSION {
        return Err(Error::corrupt(what(), "unknown header version"));
    }
    let count = u32::from_le_bytes(plain[1..5].try_into().expect("4 bytes")) as usize;
    let mut body = &plain[5..];
    if count.saturating_mul(ENTRY_LEN) > body.len() {
        return Err(Error::corrupt(
            what(),
            format!("{} bytes for {count} entries", body.len()),
        ));
    }
    let mut entries = Vec::with_capacity(count);
    let mut offset: u64 = 0;
    for _ in 0..count {
        let (kind, delta) = parse_type_byte(body[0])
            .ok_or_else(|| Error::corrupt(what(), format!("unknown blob type {}", body[0])))?;
        let len = ENTRY_LEN + if delta { 32 } else { 0 };
        if body.len() < len {
            return Err(Error::corrupt(what(), "entries are truncated"));
        }
        let (e, rest) = body.split_at(len);
        body = rest;
        let id = BlobId::from_slice(&e[1..33]).expect("32 bytes");
        let base = delta.then(|| BlobId::from_slice(&e[33..65]).expect("32 bytes"));
        let n = len - 8;
        let length = u32::from_le_bytes(e[n..n + 4].try_into().expect("4 bytes"));
        let raw_length = u32::from_le_bytes(e[n + 4..n + 8].try_into().expect("4 bytes"));
        entries.push(PackEntry {
            kind,
            id,
            offset: offset as u32,
            length,
            raw_length,
            base,
        });
        offset += u64::from(length);
    }
    if !body.is_empty() {
        return Err(Error::corrupt(
            what(),
            format!("{} bytes after {count} entries", body.len()),
        ));
    }
    let data_len = pack_len.checked_sub(sealed.len() as u64 + 4);
    if data_len != Some(offset) {
        return Err(Error::corrupt(
            what(),
            format!("entries cover {offset} bytes, pack holds {data_len:?}"),
        ));
    }
    Ok(entries)
}

/// Decodes the header of a complete pack held in memory.
pub fn parse_pack(keys: &Keys, pack_id: &PackId, pack: &[u8]) -> Result<Vec<PackEntry>> {
    let n = pack.len();
    if n < 4 {
        return Err(Error::corrupt(
            format!("pack {}", pack_id.to_hex()),
            "shorter than its trailer",
        ));
    }
    let hlen = header_length(pack_id, &pack[n - 4..], n as u64)? as usize;
    parse_header(keys, pack_id, &pack[n - 4 - hlen..n - 4], n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{open_blob, seal_blob, Compression};
    use crate::crypto::MasterKey;

    #[test]
    fn write_then_read_every_blob() {
        let k = MasterKey::generate().keys();
        let mut w = PackWriter::default();
        let blobs: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 1000 * i]).collect();
        for b in &blobs {
            let id = k.blob_id(BlobType::Data, b);
            w.add(
                BlobType::Data,
                id,
                &seal_blob(&k, BlobType::Data, &id, b, Compression::default()),
                b.len() as u32,
                None,
            );
        }
        let (id, bytes, entries) = w.finish(&k).unwrap();
        assert_eq!(id, PackId(object_hash(&bytes)));
        let parsed = parse_pack(&k, &id, &bytes).unwrap();
        assert_eq!(parsed, entries);
        for (e, b) in parsed.iter().zip(&blobs) {
            let s = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(&open_blob(&k, e.kind, &e.id, s, e.raw_length).unwrap(), b);
        }
    }

    #[test]
    fn damaged_packs_are_rejected() {
        let k = MasterKey::generate().keys();
        let mut w = PackWriter::default();
        w.add(BlobType::Tree, BlobId([1; 32]), &[9; 100], 50, None);
        w.add(
            BlobType::Data,
            BlobId([2; 32]),
            &[8; 10],
            50,
            Some(BlobId([3; 32])),
        );
        let (id, bytes, entries) = w.finish(&k).unwrap();
        assert_eq!(entries[1].base, Some(BlobId([3; 32])));
        assert_eq!(parse_pack(&k, &id, &bytes).unwrap(), entries);
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert!(
                parse_pack(&k, &id, &bytes[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        let mut flipped = bytes.to_vec();
        let n = flipped.len();
        flipped[n - 10] ^= 1;
        assert!(parse_pack(&k, &id, &flipped).is_err());
        let mut extra = bytes.to_vec();
        extra.splice(0..0, [0u8; 7]);
        assert!(
            parse_pack(&k, &id, &extra).is_err(),
            "leading garbage shifts the data"
        );
    }
}
