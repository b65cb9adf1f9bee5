//! Keys, key derivation and authenticated encryption.
//!
//! A repository has one random 32-byte [`MasterKey`]. It is stored in one or
//! more key objects, each sealed under a key-encryption key that argon2id
//! derives from a password (parameters and salt stored with the key object),
//! so several passwords can open one repository. From the master key, BLAKE3's
//! key derivation gives independent subkeys ([`Keys`]): one for sealing, one
//! for chunk ids (one per blob type) and the chunker's gear seed. Whole-file
//! digests are plain BLAKE3: they are only ever stored inside sealed trees, and
//! being key-independent lets `copy` move files between repositories without
//! reading them again.
//!
//! Sealing is XChaCha20-Poly1305 with a random 192-bit nonce generated inside
//! [`seal`] (random nonces are safe at this size), and associated data that
//! binds each sealed object to its kind and id, so swapping two objects or
//! truncating one fails to open instead of yielding garbage.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::blob::BlobType;
use crate::id::BlobId;

/// Bytes a sealed object adds to its plaintext: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The repository's root secret. Cannot be printed; zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

impl MasterKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        MasterKey(k)
    }

    pub(crate) fn from_bytes(b: [u8; 32]) -> Self {
        MasterKey(b)
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives the working subkeys.
    pub fn keys(&self) -> Keys {
        let sub = |ctx: &str| blake3::derive_key(ctx, &self.0);
        let seed = sub("vault 2026-11 chunker gear seed");
        Keys {
            seal: sub("vault 2026-11 seal key"),
            id: [
                sub("vault 2026-11 blob id key: data"),
                sub("vault 2026-11 blob id key: tree"),
                sub("vault 2026-11 blob id key: list"),
            ],
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
            sketch: sub("vault 2026-11 sketch key"),
        }
    }
}

/// Subkeys derived from the master key. Cannot be printed; zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    seal: [u8; 32],
    /// One id key per blob type, so a file whose bytes equal a tree's never
    /// shares its id.
    id: [[u8; 32]; 3],
    /// Seed XOR'd into FastCDC's gear table, so chunk boundaries depend on the key.
    pub chunker_seed: u64,
    /// Keys the resemblance sketches of chunks ([`crate::delta`]).
    sketch: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<secret>)")
    }
}

impl Keys {
    /// Keyed BLAKE3 of a blob's plaintext, keyed per blob type: its id.
    pub fn blob_id(&self, kind: BlobType, data: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id[usize::from(kind.to_u8())], data).as_bytes())
    }

    /// The resemblance sketch of a data chunk ([`crate::delta::sketch`]).
    pub fn sketch(&self, data: &[u8]) -> Option<crate::delta::Sketch> {
        crate::delta::sketch(&self.sketch, data)
    }

    /// A hasher for the whole-content digest recorded in file nodes (plain
    /// BLAKE3; see the module docs).
    pub fn content_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new()
    }

    /// Seals `plaintext` with associated data `ad` under the seal key.
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.seal, ad, plaintext)
    }

    /// Opens what [`Keys::seal`] produced with the same `ad`.
    pub fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        open(&self.seal, ad, sealed)
    }
}

/// A sealed object failed to authenticate: wrong key, tampered, truncated, or
/// not the object the associated data names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("authentication failed (wrong key, or the bytes were altered, truncated or swapped)")]
pub struct OpenError;

/// `nonce || ciphertext || tag` with a fresh random nonce.
pub fn seal(key: &[u8; 32], ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Inverse of [`seal`].
pub fn open(key: &[u8; 32], ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenError);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .map_err(|_| OpenError)
}

/// argon2id cost parameters, stored with each key object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// RFC 9106's second recommended setting: 64 MiB, 3 passes, 4 lanes.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 4,
        }
    }
}

impl KdfParams {
    /// Cheap parameters for tests only (256 KiB, 1 pass): never use for real data.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Rejects values a hostile key object could use to exhaust memory or time.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_kib > 1024 * 1024 || self.iterations > 20 || self.parallelism > 16 {
            return Err(format!("argon2id parameters out of range: {self:?}"));
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map(|_| ())
            .map_err(|e| format!("invalid argon2id parameters {self:?}: {e}"))
    }

    /// Derives a 32-byte key-encryption key from `password` and `salt`.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<[u8; 32], String> {
        self.validate()?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| e.to_string())?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Random bytes from the OS generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keys {
        MasterKey::from_bytes([7; 32]).keys()
    }

    #[test]
    fn subkeys_differ_and_ids_are_keyed() {
        let k = keys();
        assert_ne!(k.seal, k.id[0]);
        assert_ne!(k.id[0], k.id[1]);
        assert_ne!(
            k.blob_id(BlobType::Data, b"x").0,
            *blake3::hash(b"x").as_bytes()
        );
        assert_ne!(
            k.blob_id(BlobType::Data, b"{}"),
            k.blob_id(BlobType::Tree, b"{}")
        );
        let other = MasterKey::from_bytes([8; 32]).keys();
        assert_ne!(
            k.blob_id(BlobType::Data, b"x"),
            other.blob_id(BlobType::Data, b"x")
        );
        assert_ne!(k.chunker_seed, other.chunker_seed);
    }

    #[test]
    fn wrong_ad_or_key_fails() {
        let k = keys();
        let s = k.seal(b"snapshot", b"hello");
        assert_eq!(k.open(b"snapshot", &s).unwrap(), b"hello");
        assert_eq!(k.open(b"index", &s), Err(OpenError));
        assert_eq!(
            MasterKey::from_bytes([9; 32]).keys().open(b"snapshot", &s),
            Err(OpenError)
        );
        assert_eq!(k.open(b"snapshot", &s[..s.len() - 1]), Err(OpenError));
        assert_eq!(k.open(b"snapshot", &[]), Err(OpenError));
    }

    #[test]
    fn secrets_do_not_print() {
        let m = MasterKey::from_bytes([1; 32]);
        assert_eq!(format!("{m:?}"), "MasterKey(<secret>)");
        assert_eq!(format!("{:?}", m.keys()), "Keys(<secret>)");
    }

    #[test]
    fn kdf_is_deterministic_and_validated() {
        let p = KdfParams::insecure_for_tests();
        assert_eq!(
            p.derive(b"pw", b"saltsalt").unwrap(),
            p.derive(b"pw", b"saltsalt").unwrap()
        );
        assert_ne!(
            p.derive(b"pw", b"saltsalt").unwrap(),
            p.derive(b"pw2", b"saltsalt").unwrap()
        );
        let hostile = KdfParams {
            memory_kib: u32::MAX,
            ..p
        };
        assert!(hostile.validate().is_err());
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), ad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let k = keys();
            let s = k.seal(&ad, &data);
            prop_assert_eq!(s.len(), data.len() + SEAL_OVERHEAD);
            prop_assert_eq!(k.open(&ad, &s).unwrap(), data);
        }

        #[test]
        fn any_flipped_byte_fails(data in proptest::collection::vec(any::<u8>(), 0..512), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = keys();
            let mut s = k.seal(b"ad", &data);
            let i = pos.index(s.len());
            s[i] ^= 1 << bit;
            prop_assert_eq!(k.open(b"ad", &s), Err(OpenError));
        }
    }
}
