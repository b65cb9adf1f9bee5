//! Resuming interrupted backups: a backup killed part-way leaves packs it
//! stored but had not indexed yet (it indexes every few packs). The next
//! backup *adopts* them: it reads their headers and indexes them under its
//! own lease, so their chunks deduplicate instead of being uploaded again.
//!
//! Adopting must never make a backup rely on a pack a prune is about to
//! delete. Packs outside the index are either such leftovers, or packs a
//! prune dropped from the index (recorded in its pending deletion, or about
//! to be deleted by a prune running now). So adoption happens only after this
//! backup's lease is visible and no live prune lock exists: any prune that
//! starts later sees the lease first, so it neither deletes unreferenced
//! packs nor deletes dropped ones before this backup ends; and packs of
//! pending deletions are left out.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::error::Result;
use crate::id::PackId;
use crate::index::IndexFile;
use crate::lock::Held;
use crate::repository::Repository;

/// Index objects written for adopted packs hold at most this many blobs.
const ENTRIES_PER_INDEX: usize = 50_000;

impl Repository {
    /// Adopts the packs interrupted backups left unindexed (see the module
    /// docs); returns how many. Best effort: a pack whose header cannot be
    /// read is left for prune.
    pub(crate) fn adopt_orphans(&self, lease: &Held<'_>) -> Result<u64> {
        // A prune may be running, or it cannot be told: adopt nothing (the
        // backup then simply stores what it needs).
        let prune_running = self.locks().map_or(true, |locks| {
            locks.iter().any(|(name, info)| {
                name.starts_with("prune") && info.as_ref().map_or(true, |i| !i.is_stale())
            })
        });
        if prune_running {
            return Ok(0);
        }
        // Without knowing every pending deletion, adopt nothing (the backup
        // then simply stores what it needs).
        let Ok(pending) = self.pending_packs() else {
            return Ok(0);
        };
        let pending: HashSet<PackId> = pending.into_iter().collect();
        let orphans: Vec<(PackId, u64)> = self
            .unindexed_packs()?
            .into_iter()
            .filter(|(p, _)| !pending.contains(p))
            .collect();
        if orphans.is_empty() {
            return Ok(0);
        }
        let headers: Vec<_> = orphans
            .par_iter()
            .filter_map(|(p, size)| self.pack_header(p, *size).ok().map(|e| (*p, e)))
            .filter(|(_, e)| !e.is_empty())
            .collect();
        let adopted = headers.len() as u64;
        let mut file = IndexFile {
            writer: Some(lease.key().to_owned()),
            ..Default::default()
        };
        for (pack, entries) in headers {
            if file.blob_count() + entries.len() > ENTRIES_PER_INDEX && !file.packs.is_empty() {
                self.save_index(&std::mem::take(&mut file))?;
                file.writer = Some(lease.key().to_owned());
            }
            file.packs.push((pack, entries));
        }
        if !file.packs.is_empty() {
            self.save_index(&file)?;
        }
        Ok(adopted)
    }
}
