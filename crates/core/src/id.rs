//! Typed 32-byte identifiers.
//!
//! Blob ids are keyed BLAKE3 hashes of plaintext (so the storage cannot confirm
//! a guessed plaintext); object ids (packs, index objects, snapshots, keys) are
//! plain BLAKE3 hashes of the stored bytes, so anyone can verify an object
//! against its name without the key. The newtypes keep one from being passed
//! where another is expected. `Display` shows the first 8 hex digits; use
//! `to_hex` for the full id.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Length of an id in bytes.
            pub const LEN: usize = 32;

            /// Full lowercase hex form (64 digits), as used in object names.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses the full 64-digit hex form.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }

            /// Raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Reads an id from the first 32 bytes of `b` (`None` if shorter).
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                b.get(..32)?.try_into().ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex()[..8])
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
            }
        }
    };
}

define_id!(
    /// A chunk or tree blob: keyed BLAKE3 of its plaintext.
    BlobId
);
define_id!(
    /// A pack file: BLAKE3 of its bytes.
    PackId
);
define_id!(
    /// A snapshot object: BLAKE3 of its sealed bytes.
    SnapshotId
);
define_id!(
    /// An index object: BLAKE3 of its sealed bytes.
    IndexId
);
define_id!(
    /// A key object: BLAKE3 of its bytes.
    KeyId
);

/// Plain BLAKE3 of stored bytes: the name of a content-addressed object.
pub(crate) fn object_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_display() {
        let id = BlobId([0xab; 32]);
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.to_string(), "abababab");
        assert_eq!(BlobId::from_hex("abc"), None);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<BlobId>(&json).unwrap(), id);
    }
}
