//! Content-defined chunking with FastCDC (v2020), keyed by the repository.
//!
//! Boundaries depend only on the bytes and the repository's gear seed, never
//! on how the input was read, so the same content always yields the same
//! chunks (and dedups) whether it arrives from a file, a pipe or a socket.
//! The seed comes from the master key, so chunk sizes do not reveal content to
//! someone without it.
//!
//! The chunker reads into large buffers and hands out *batches* of chunks that
//! share one allocation, so the expensive per-chunk work (hashing, compression,
//! sealing) can run in parallel over a batch while the next one is read.

use std::borrow::Cow;
use std::io::{self, Read};

use bytes::Bytes;
use fastcdc::v2020::{cut_gear, get_gear_with_seed, select_masks, Normalization};
use serde::{Deserialize, Serialize};

/// Smallest average chunk size accepted.
pub const MIN_AVERAGE: u32 = 16 * 1024;
/// Largest average chunk size accepted (FastCDC's limit).
pub const MAX_AVERAGE: u32 = 4 * 1024 * 1024;
/// Default average chunk size.
pub const DEFAULT_AVERAGE: u32 = 1024 * 1024;

/// Chunk size bounds, fixed at `init` and stored in the sealed config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No chunk is smaller (except the last of a stream).
    pub min_size: u32,
    /// Target average.
    pub avg_size: u32,
    /// No chunk is larger.
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        Self::from_average(DEFAULT_AVERAGE).expect("default is valid")
    }
}

impl ChunkerParams {
    /// Min is a quarter of the average, max four times it. The average must be
    /// a power of two between 16 KiB and 4 MiB.
    pub fn from_average(avg: u32) -> Result<Self, String> {
        if !(MIN_AVERAGE..=MAX_AVERAGE).contains(&avg) || !avg.is_power_of_two() {
            return Err(format!(
                "chunk size {avg} must be a power of two between {} KiB and {} MiB",
                MIN_AVERAGE / 1024,
                MAX_AVERAGE / 1024 / 1024
            ));
        }
        Ok(ChunkerParams {
            min_size: avg / 4,
            avg_size: avg,
            max_size: avg * 4,
        })
    }

    /// Checks values read from a config object.
    pub fn validate(&self) -> Result<(), String> {
        let expected = Self::from_average(self.avg_size)?;
        if *self != expected {
            return Err(format!("inconsistent chunker parameters {self:?}"));
        }
        Ok(())
    }
}

/// Consecutive chunks of a stream sharing one buffer.
#[derive(Debug, Clone)]
pub struct Batch {
    /// All bytes of the batch, in stream order.
    pub data: Bytes,
    /// The chunks, slices of `data`, in order.
    pub chunks: Vec<Bytes>,
}

/// Cuts one stream into chunks, a batch at a time.
pub struct Chunker<R> {
    reader: R,
    /// Read but not yet cut: the tail of the previous batch, then new data.
    buf: Vec<u8>,
    eof: bool,
    batch_bytes: usize,
    size_hint: Option<u64>,
    cutter: Cutter,
}

/// The pure cut-point finder (no I/O), reusable over many buffers.
#[derive(Clone)]
pub struct Cutter {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Cutter {
    /// A cutter for these parameters and gear seed.
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Cutter {
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            masks: select_masks(params.avg_size as usize, Normalization::Level1),
            gear,
            gear_ls,
        }
    }

    /// Length of the next chunk at the start of `data`. When `data` is not the
    /// end of the stream, the answer is final only if it is shorter than
    /// `data` or equals the maximum chunk size.
    pub fn next_len(&self, data: &[u8]) -> usize {
        let (s, l) = self.masks;
        cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            s,
            l,
            s << 1,
            l << 1,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }

    /// Chunk lengths of a complete in-memory stream.
    pub fn lengths(&self, data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = self.next_len(&data[pos..]);
            out.push(n);
            pos += n;
        }
        out
    }

    /// Largest chunk this cutter produces.
    pub fn max_size(&self) -> usize {
        self.max
    }
}

impl<R: Read> Chunker<R> {
    /// Chunks `reader`, handing out batches of about `batch_bytes` (at least
    /// one maximum chunk).
    pub fn new(reader: R, cutter: Cutter, batch_bytes: usize) -> Self {
        let batch_bytes = batch_bytes.max(cutter.max * 2);
        Chunker {
            reader,
            buf: Vec::new(),
            eof: false,
            batch_bytes,
            size_hint: None,
            cutter,
        }
    }

    /// The next batch of chunks (sharing one buffer), or `None` at the end.
    pub fn next_batch(&mut self) -> io::Result<Option<Batch>> {
        self.fill()?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut lens = Vec::new();
        let mut pos = 0;
        let len = self.buf.len();
        while pos < len {
            let rest = &self.buf[pos..];
            let n = self.cutter.next_len(rest);
            if n == rest.len() && !self.eof && rest.len() < self.cutter.max {
                break; // the boundary may lie beyond what has been read
            }
            lens.push(n);
            pos += n;
        }
        // The tail (at most one maximum chunk) starts the next buffer.
        let mut next = Vec::with_capacity(if self.eof { len - pos } else { self.capacity() });
        next.extend_from_slice(&self.buf[pos..]);
        self.buf.truncate(pos);
        let head = Bytes::from(std::mem::replace(&mut self.buf, next));
        let mut off = 0;
        let chunks = lens
            .into_iter()
            .map(|n| {
                let c = head.slice(off..off + n);
                off += n;
                c
            })
            .collect();
        Ok(Some(Batch { data: head, chunks }))
    }

    /// Tells the chunker how long the stream probably is, so small files do
    /// not get batch-sized buffers.
    pub fn with_size_hint(mut self, len: u64) -> Self {
        self.size_hint = Some(len);
        self
    }

    fn capacity(&self) -> usize {
        let full = self.batch_bytes + self.cutter.max;
        match self.size_hint {
            // One byte more than expected, to see the end without another allocation.
            Some(h) => full.min(h.saturating_add(1).try_into().unwrap_or(usize::MAX)),
            None => full,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let target = self.batch_bytes;
        let cap = self.capacity();
        if self.buf.capacity() < cap {
            self.buf.reserve_exact(cap - self.buf.len());
        }
        while !self.eof && self.buf.len() < target {
            // read_to_end fills spare capacity without zeroing it first.
            let want = (target - self.buf.len()) as u64;
            match (&mut self.reader).take(want).read_to_end(&mut self.buf) {
                Ok(n) if (n as u64) < want => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reader that returns at most `step` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn small() -> ChunkerParams {
        ChunkerParams::from_average(16 * 1024).unwrap()
    }

    fn lengths_via_reader(
        data: &[u8],
        step: usize,
        batch: usize,
        seed: u64,
        hint: Option<u64>,
    ) -> Vec<usize> {
        let mut c = Chunker::new(Trickle { data, step }, Cutter::new(small(), seed), batch);
        if let Some(h) = hint {
            c = c.with_size_hint(h);
        }
        let mut out = Vec::new();
        while let Some(b) = c.next_batch().unwrap() {
            out.extend(b.chunks.iter().map(|c| c.len()));
        }
        out
    }

    #[test]
    fn params_derive_min_and_max() {
        let p = ChunkerParams::from_average(1 << 20).unwrap();
        assert_eq!((p.min_size, p.max_size), (256 << 10, 4 << 20));
        assert!(ChunkerParams::from_average(3000).is_err());
        assert!(ChunkerParams::from_average(8 << 20).is_err());
        assert!(p.validate().is_ok());
        assert!(ChunkerParams { max_size: 5, ..p }.validate().is_err());
    }

    #[test]
    fn sizes_respect_bounds() {
        let data = pseudo_random(3 << 20, 3);
        let lens = Cutter::new(small(), 0).lengths(&data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        for l in &lens[..lens.len() - 1] {
            assert!((4096..=65536).contains(l), "{l}");
        }
        let avg = data.len() / lens.len();
        assert!((8 << 10..=40 << 10).contains(&avg), "average {avg}");
    }

    #[test]
    fn zeros_cut_at_max() {
        let data = vec![0u8; 200_000];
        let lens = Cutter::new(small(), 0).lengths(&data);
        assert_eq!(lens[0], 65536);
    }

    #[test]
    fn seed_changes_boundaries() {
        let data = pseudo_random(1 << 20, 5);
        assert_ne!(
            Cutter::new(small(), 1).lengths(&data),
            Cutter::new(small(), 2).lengths(&data)
        );
    }

    #[test]
    fn local_change_keeps_distant_chunks() {
        let a = pseudo_random(2 << 20, 9);
        let mut b = a.clone();
        b[1 << 20] ^= 0xff;
        let cut = Cutter::new(small(), 4);
        let chunks = |d: &[u8]| {
            let mut pos = 0;
            cut.lengths(d)
                .into_iter()
                .map(|n| {
                    pos += n;
                    d[pos - n..pos].to_vec()
                })
                .collect::<std::collections::HashSet<_>>()
        };
        let (ca, cb) = (chunks(&a), chunks(&b));
        let changed = cb.difference(&ca).count();
        assert!(changed <= 3, "{changed} chunks changed for one byte");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn boundaries_independent_of_read_sizes(len in 0usize..600_000, seed in any::<u64>(), step in 1usize..100_000, batch in 1usize..400_000, hint in proptest::option::of(0u64..700_000)) {
            let data = pseudo_random(len, seed);
            let whole = Cutter::new(small(), seed).lengths(&data);
            prop_assert_eq!(lengths_via_reader(&data, step, batch, seed, hint), whole.clone());
            prop_assert_eq!(whole.iter().sum::<usize>(), len);
        }
    }
}
