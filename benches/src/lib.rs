//! Shared helpers for vault's criterion benchmarks (the benchmarks themselves
//! live in `benches/`, see `README.md`).
//!
//! Every input is generated deterministically from a seed, so runs on
//! different machines (and before/after a change) measure the same bytes.

use std::fmt::Write as _;

/// One MiB.
pub const MIB: usize = 1024 * 1024;

/// Small, fast, deterministic pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// 32 random bytes (a blob, pack or index id).
    pub fn id32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for part in out.chunks_exact_mut(8) {
            part.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// `len` incompressible pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

const WORDS: &[&str] = &[
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "invoice",
    "payment",
    "refund",
    "order",
    "customer",
    "shipped",
    "pending",
    "cancelled",
    "warehouse",
    "berlin",
    "paris",
    "lisbon",
    "oslo",
    "vienna",
    "madrid",
    "dublin",
    "prague",
    "athens",
    "zurich",
    "rome",
    "express",
    "standard",
    "priority",
    "gift",
    "wrapped",
    "fragile",
    "returned",
    "damaged",
    "backorder",
    "discount",
    "coupon",
    "loyalty",
    "premium",
    "basic",
    "trial",
    "annual",
    "monthly",
    "weekly",
];

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const STATUSES: &[&str] = &[
    "new",
    "paid",
    "shipped",
    "delivered",
    "returned",
    "cancelled",
];

/// `len` bytes of text shaped like a `pg_dump --inserts` / `mysqldump` dump:
/// `INSERT` statements with pseudo-random ids, amounts, dates and words.
/// zstd compresses it about 3-4x (level 3), like a real database dump, and a
/// dump of the same seed is the same bytes.
pub fn sql_like(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(len + 512);
    out.push_str("-- vault benchmark dump\nBEGIN;\n");
    let mut id: u64 = 1_000_000;
    while out.len() < len {
        id += 1 + rng.below(3);
        let customer = rng.below(5_000_000);
        let cents = rng.below(10_000_000);
        let (month, day) = (1 + rng.below(12), 1 + rng.below(28));
        let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
        let status = STATUSES[rng.below(STATUSES.len() as u64) as usize];
        let _ = write!(
            out,
            "INSERT INTO public.orders (id, customer_id, amount, status, created_at, token, note) VALUES \
             ({id}, {customer}, {}.{:02}, '{status}', '2026-{month:02}-{day:02} {h:02}:{m:02}:{s:02}', '",
            cents / 100,
            cents % 100,
        );
        // An opaque base64 token (like a hash or session id): much of the
        // entropy, as in real tables.
        for _ in 0..3 {
            let mut t = rng.next_u64();
            for _ in 0..10 {
                out.push(B64[(t & 63) as usize] as char);
                t >>= 6;
            }
        }
        out.push_str("', '");
        let words = 2 + rng.below(6);
        for w in 0..words {
            if w > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        out.push_str("');\n");
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}

/// The criterion settings every bench group uses: 10 samples, 1 s warm-up,
/// `measure_secs` of measurement (kept short: the machines are small and shared).
pub fn criterion_config(measure_secs: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(measure_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_core::blob::{seal_blob, BlobType, Compression};
    use vault_core::crypto::MasterKey;

    fn ratio(data: &[u8]) -> f64 {
        let keys = MasterKey::generate().keys();
        let id = keys.blob_id(BlobType::Data, data);
        let sealed = seal_blob(&keys, BlobType::Data, &id, data, Compression::default());
        data.len() as f64 / sealed.len() as f64
    }

    #[test]
    fn generators_are_deterministic_and_sized() {
        assert_eq!(sql_like(100_000, 7), sql_like(100_000, 7));
        assert_ne!(sql_like(100_000, 7), sql_like(100_000, 8));
        assert_eq!(sql_like(12_345, 1).len(), 12_345);
        assert_eq!(random_bytes(12_345, 1).len(), 12_345);
    }

    #[test]
    fn sql_like_compresses_three_to_four_times_and_random_not_at_all() {
        let r = ratio(&sql_like(MIB, 1));
        assert!((3.0..=4.5).contains(&r), "SQL-like ratio {r:.2}");
        let r = ratio(&random_bytes(MIB, 1));
        assert!(r < 1.0, "random ratio {r:.2}");
    }
}
