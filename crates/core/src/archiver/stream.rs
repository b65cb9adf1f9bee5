//! Saving one stream: chunk boundaries found sequentially, everything else in
//! parallel.
//!
//! A reader thread fills large buffers and cuts them into chunks (FastCDC is
//! fast enough to do that on one core); the calling thread takes each batch
//! and, in parallel over its chunks, hashes, deduplicates, compresses and
//! seals them, while the whole-content digest is computed over the batch with
//! BLAKE3's own parallelism. A queue of one batch keeps reading ahead while
//! memory stays at about three batches per stream.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::saver::Saver;
use crate::blob::BlobType;
use crate::chunker::{Batch, Chunker, Cutter};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::tree::ContentBuilder;

/// Bytes per batch: big enough to keep both cores busy, small enough to bound memory.
pub(crate) const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The saved content of one file or stream.
pub(crate) struct Content {
    pub ids: Vec<BlobId>,
    pub depth: u8,
    pub size: u64,
    pub digest: String,
}

pub(crate) struct StreamSaver<'s, 'r> {
    pub saver: &'s Saver<'r>,
    pub cutter: &'s Cutter,
    pub cancel: Option<&'s AtomicBool>,
}

impl StreamSaver<'_, '_> {
    fn cancelled(&self) -> Result<()> {
        match self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    /// Saves a stream with a reader thread feeding parallel workers.
    /// `read_err` turns a read failure into the caller's error.
    pub fn save_threaded<R: Read + Send>(
        &self,
        reader: R,
        on_bytes: &(dyn Fn(u64) + Sync),
        read_err: &(dyn Fn(std::io::Error) -> Error + Sync),
    ) -> Result<Content> {
        let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Batch>>(1);
        let cutter = self.cutter.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut chunker = Chunker::new(reader, cutter, BATCH_BYTES);
                loop {
                    match chunker.next_batch() {
                        Ok(Some(b)) => {
                            if tx.send(Ok(b)).is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            });
            let mut acc = Accumulator::new(self);
            let result = (|| {
                for batch in &rx {
                    let batch = batch.map_err(read_err)?;
                    self.cancelled()?;
                    on_bytes(batch.data.len() as u64);
                    acc.add(self, &batch, true)?;
                }
                acc.finish(self)
            })();
            drop(rx); // unblocks the reader if we stopped early
            result
        })
    }

    /// Saves a small stream on the calling thread (parallelism comes from
    /// processing several files at once).
    pub fn save_inline<R: Read>(
        &self,
        reader: R,
        size_hint: u64,
        on_bytes: &dyn Fn(u64),
        read_err: &dyn Fn(std::io::Error) -> Error,
    ) -> Result<Content> {
        let mut chunker =
            Chunker::new(reader, self.cutter.clone(), BATCH_BYTES).with_size_hint(size_hint);
        let mut acc = Accumulator::new(self);
        while let Some(batch) = chunker.next_batch().map_err(read_err)? {
            self.cancelled()?;
            on_bytes(batch.data.len() as u64);
            acc.add(self, &batch, false)?;
        }
        acc.finish(self)
    }
}

struct Accumulator {
    builder: ContentBuilder,
    hasher: blake3::Hasher,
    size: u64,
}

impl Accumulator {
    fn new(s: &StreamSaver<'_, '_>) -> Self {
        Accumulator {
            builder: ContentBuilder::default(),
            hasher: s.saver.repo_keys().content_hasher(),
            size: 0,
        }
    }

    fn add(&mut self, s: &StreamSaver<'_, '_>, batch: &Batch, parallel: bool) -> Result<()> {
        let save = |c: &bytes::Bytes| s.saver.save(BlobType::Data, c);
        let ids: Vec<BlobId> = if parallel {
            let (ids, ()) = rayon::join(
                || {
                    batch
                        .chunks
                        .par_iter()
                        .map(save)
                        .collect::<Result<Vec<_>>>()
                },
                || {
                    self.hasher.update_rayon(&batch.data);
                },
            );
            ids?
        } else {
            self.hasher.update(&batch.data);
            batch.chunks.iter().map(save).collect::<Result<_>>()?
        };
        self.size += batch.data.len() as u64;
        let mut save_list = |b: Vec<u8>| s.saver.save(BlobType::List, &b);
        for id in ids {
            self.builder.push(id, &mut save_list)?;
        }
        Ok(())
    }

    fn finish(self, s: &StreamSaver<'_, '_>) -> Result<Content> {
        let mut save_list = |b: Vec<u8>| s.saver.save(BlobType::List, &b);
        let (ids, depth) = self.builder.finish(&mut save_list)?;
        Ok(Content {
            ids,
            depth,
            size: self.size,
            digest: self.hasher.finalize().to_hex().to_string(),
        })
    }
}
