//! Check: verify that every snapshot can be restored, without restoring it.
//!
//! Structure (always): snapshot, index and pack objects open and
//! authenticate; every index entry lies within an existing pack and agrees
//! with that pack's own header; every tree of every snapshot opens, and every
//! chunk a file needs is indexed. Data (`--read-data`, or a subset): packs are
//! downloaded, checked against their content-derived names, and every blob is
//! opened, decompressed and re-hashed; a delta blob is rebuilt from its base
//! first. A chunk whose delta base is missing or damaged is as lost as the
//! chunk itself, and the files that need it are named. Each problem names what it affects;
//! unreferenced data is information, not damage.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use vault_store::{FileType, Handle};

use crate::blob::{apply_delta, open_body, BlobType, Body};
use crate::error::Result;
use crate::id::{object_hash, BlobId, IndexId, PackId, SnapshotId};
use crate::pack::{header_length, parse_header, parse_pack, PackEntry};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::tree::NodeKind;

/// Which packs `check` downloads and verifies in full.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReadData {
    /// None: structure only.
    #[default]
    None,
    /// Every pack.
    All,
    /// Slice `n` of `m` (1-based) of the packs, by id: `1/4` .. `4/4` cover all.
    Slice(u32, u32),
    /// About this percentage of the packs, chosen at random.
    Percent(f64),
}

impl ReadData {
    /// Parses `n/m` or `P%`.
    pub fn parse_subset(s: &str) -> Result<ReadData> {
        let bad = || {
            crate::Error::Invalid(format!(
                "--read-data-subset `{s}`: use n/m (e.g. 2/7) or a percentage (e.g. 10%)"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            return Ok(ReadData::Percent(p));
        }
        let (n, m) = s.split_once('/').ok_or_else(bad)?;
        let (n, m): (u32, u32) = (
            n.trim().parse().map_err(|_| bad())?,
            m.trim().parse().map_err(|_| bad())?,
        );
        if m == 0 || n == 0 || n > m {
            return Err(bad());
        }
        Ok(ReadData::Slice(n, m))
    }

    fn selects(&self, pack: &PackId) -> bool {
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            // Pack ids are uniform hashes: slices by id are even and stable.
            ReadData::Slice(n, m) => {
                u32::from_be_bytes([pack.0[0], pack.0[1], pack.0[2], pack.0[3]]) % m == n - 1
            }
            ReadData::Percent(p) => rand::random::<f64>() * 100.0 < p,
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The damaged object (`pack 3fa9...`, `snapshot 1a2b...`, `blob ...`).
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// Snapshots and files affected (`1a2b3c4d:/srv/db.sql`).
    pub affects: Vec<String>,
}

/// Result of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Damage: anything here means some snapshot may not restore.
    pub problems: Vec<Problem>,
    /// Harmless findings (unreferenced packs, ...).
    pub info: Vec<String>,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Packs known to the index.
    pub packs: u64,
    /// Packs downloaded and verified.
    pub packs_read: u64,
    /// Bytes downloaded.
    pub bytes_read: u64,
}

impl CheckReport {
    /// True when nothing is damaged.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What one pack's check found: a problem with the pack itself, delta blobs
/// in it that cannot be rebuilt, packs read, bytes read.
type PackFindings = (Option<Problem>, Vec<(BlobId, Problem)>, u64, u64);

/// The state of the walk over every snapshot's trees.
struct TreeWalk<'a> {
    bad: &'a Bad<'a>,
    /// Trees already found whole.
    good: &'a mut HashSet<BlobId>,
    problems: &'a mut Vec<Problem>,
    /// Usable chunks found outside the index.
    outside_index: u64,
}

/// Packs and blobs found damaged.
pub(crate) struct Bad<'a> {
    pub packs: &'a HashSet<PackId>,
    /// Copies that cannot be rebuilt, by pack: another copy may be sound.
    pub blobs: &'a HashSet<(PackId, BlobId)>,
}

impl Repository {
    /// Checks the repository (see the module docs).
    pub fn check(&self, read_data: ReadData, progress: &dyn Progress) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let problem = |object: String, message: String, affects: Vec<String>| Problem {
            object,
            message,
            affects,
        };

        // Index objects: each pack's entries, as the index says.
        let index_ids: Vec<IndexId> = self.index_ids()?;
        let mut indexed: HashMap<PackId, Vec<PackEntry>> = HashMap::new();
        let mut superseded = HashSet::new();
        let mut loaded = Vec::new();
        for id in &index_ids {
            match self.load_index(id) {
                Ok(f) => {
                    superseded.extend(f.supersedes.iter().copied());
                    loaded.push((*id, f));
                }
                Err(e) => report.problems.push(problem(
                    format!("index {}", id.to_hex()),
                    e.to_string(),
                    vec![],
                )),
            }
        }
        for (id, f) in loaded {
            if superseded.contains(&id) {
                continue;
            }
            for (pack, entries) in f.packs {
                indexed.entry(pack).or_default().extend(entries);
            }
        }
        report.packs = indexed.len() as u64;

        // Packs: present, long enough, header agrees with the index.
        let stored: HashMap<String, u64> =
            self.backend().list(FileType::Pack)?.into_iter().collect();
        // Packs no index names (an interrupted backup's, or awaiting a
        // prune's deletion) are checked by their own headers: snapshots may
        // read blobs from them (`Repository::lookup`).
        let known: HashSet<String> = indexed.keys().map(|p| p.to_hex()).collect();
        let mut outside: HashMap<PackId, Vec<PackEntry>> = HashMap::new();
        for (name, size) in stored.iter().filter(|(n, _)| !known.contains(*n)) {
            let Some(pack) = PackId::from_hex(name) else {
                continue;
            };
            match self.pack_header(&pack, *size) {
                Ok(entries) => {
                    report.info.push(format!("pack {name} is not referenced by any index (left by an interrupted backup or awaiting deletion; a backup reuses it or prune removes it)"));
                    outside.insert(pack, entries);
                }
                Err(e @ crate::Error::Store(_)) => report.info.push(format!(
                    "pack {name} is not referenced by any index and could not be read now ({e}); run check again"
                )),
                Err(e) => report.info.push(format!(
                    "pack {name} is not referenced by any index and is damaged ({e}); prune removes it"
                )),
            }
        }
        // Which packs are read in full, decided once (a percentage picks at
        // random), so progress knows the total.
        let selected: HashSet<PackId> = indexed
            .keys()
            .chain(outside.keys())
            .filter(|p| read_data.selects(p))
            .copied()
            .collect();
        progress.total(
            selected
                .iter()
                .filter_map(|p| stored.get(&p.to_hex()))
                .sum(),
        );
        let pack_findings: Vec<(PackId, PackFindings)> = indexed
            .par_iter()
            .chain(outside.par_iter())
            .map(|(pack, entries)| {
                let mut bad_deltas = Vec::new();
                let (p, read, bytes) = self.check_pack(
                    pack,
                    entries,
                    stored.get(&pack.to_hex()).copied(),
                    selected.contains(pack),
                    progress,
                    &mut bad_deltas,
                );
                (*pack, (p, bad_deltas, read, bytes))
            })
            .collect();
        // Files whose chunks lie in these packs, or are deltas that cannot be
        // rebuilt, are reported as affected.
        let mut bad_packs: HashSet<PackId> = HashSet::new();
        let mut bad_blobs: HashSet<(PackId, BlobId)> = HashSet::new();
        for (pack, (p, bad_deltas, read, bytes)) in pack_findings {
            if p.is_some() {
                bad_packs.insert(pack);
            }
            match p {
                // Damage where no index points: it matters only to files
                // that read from there, which the tree walk names.
                Some(p) if outside.contains_key(&pack) => report.info.push(format!(
                    "{}, which no index object names, is damaged: {}",
                    p.object, p.message
                )),
                p => report.problems.extend(p),
            }
            for (id, problem) in bad_deltas {
                bad_blobs.insert((pack, id));
                // Damage of a copy readers do not use (outside the index,
                // or a second copy whose indexed location is another pack)
                // matters only through the files the tree walk names.
                let unused_copy = outside.contains_key(&pack)
                    || self.index().get(&id)?.is_some_and(|l| l.pack != pack);
                if unused_copy {
                    report
                        .info
                        .push(format!("{}: {}", problem.object, problem.message));
                } else {
                    report.problems.push(problem);
                }
            }
            report.packs_read += read;
            report.bytes_read += bytes;
        }

        // Snapshots and their trees.
        let (snaps, damaged) = self.list_snapshots_checked()?;
        for (id, e) in damaged {
            report.problems.push(problem(
                format!("snapshot {}", id.to_hex()),
                e.to_string(),
                vec![id.to_string()],
            ));
        }
        report.snapshots = snaps.len() as u64;
        let mut good_trees = HashSet::new();
        let bad = Bad {
            packs: &bad_packs,
            blobs: &bad_blobs,
        };
        let mut walk = TreeWalk {
            bad: &bad,
            good: &mut good_trees,
            problems: &mut report.problems,
            outside_index: 0,
        };
        for (id, snap) in &snaps {
            self.check_tree(id, &snap.tree, "", &mut walk);
        }
        if walk.outside_index > 0 {
            report.info.push(format!(
                "{} chunk(s) that snapshots use are only in packs no index object names (a backup that ran during a prune, an interrupted prune, or lost index objects): they restore from there; the next prune puts them back into the index, or run `vault repair index`",
                walk.outside_index
            ));
        }
        Ok(report)
    }

    fn check_pack(
        &self,
        pack: &PackId,
        entries: &[PackEntry],
        stored_size: Option<u64>,
        read_in_full: bool,
        progress: &dyn Progress,
        bad_deltas: &mut Vec<(BlobId, Problem)>,
    ) -> (Option<Problem>, u64, u64) {
        let object = format!("pack {}", pack.to_hex());
        let p = |m: String| {
            Some(Problem {
                object: object.clone(),
                message: m,
                affects: vec![],
            })
        };
        let Some(size) = stored_size else {
            return (
                p(format!(
                    "missing ({} blobs indexed in it are lost)",
                    entries.len()
                )),
                0,
                0,
            );
        };
        let needed = entries
            .iter()
            .map(|e| u64::from(e.offset) + u64::from(e.length))
            .max()
            .unwrap_or(0);
        if size < needed {
            return (
                p(format!("truncated: {size} bytes, the index needs {needed}")),
                0,
                0,
            );
        }
        let handle = match Handle::new(FileType::Pack, pack.to_hex()) {
            Ok(h) => h,
            Err(e) => return (p(e.to_string()), 0, 0),
        };
        let header = if read_in_full {
            let bytes = match self.backend().read(&handle) {
                Ok(b) => b,
                Err(e) => return (p(e.to_string()), 0, 0),
            };
            progress.bytes(bytes.len() as u64);
            if object_hash(&bytes) != pack.0 {
                return (
                    p("content does not match its name".into()),
                    1,
                    bytes.len() as u64,
                );
            }
            let parsed = parse_pack(self.keys(), pack, &bytes);
            if let Ok(list) = &parsed {
                for e in list {
                    let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                    match open_body(self.keys(), e.kind, &e.id, sealed, e.raw_length) {
                        Err(err) => return (p(err.to_string()), 1, bytes.len() as u64),
                        Ok(Body::Whole(_)) => {}
                        Ok(Body::Delta { base, frame }) => {
                            let rebuilt = self.read_base(&e.id, &base).and_then(|b| {
                                apply_delta(self.keys(), e.kind, &e.id, &b, &frame, e.raw_length)
                            });
                            if let Err(err) = rebuilt {
                                bad_deltas.push((
                                    e.id,
                                    Problem {
                                        object: format!("blob {}", e.id.to_hex()),
                                        message: format!(
                                            "delta against {} cannot be rebuilt: {err}",
                                            base.to_hex()
                                        ),
                                        affects: vec![],
                                    },
                                ));
                            }
                        }
                    }
                }
            }
            (parsed, 1, bytes.len() as u64)
        } else {
            let parsed = self
                .backend()
                .read_range(&handle, size - 4, 4)
                .map_err(crate::Error::from)
                .and_then(|t| header_length(pack, &t, size))
                .and_then(|hl| {
                    let h = self.backend().read_range(
                        &handle,
                        size - 4 - u64::from(hl),
                        u64::from(hl),
                    )?;
                    parse_header(self.keys(), pack, &h, size)
                });
            (parsed, 0, 0)
        };
        let (parsed, read, bytes) = header;
        match parsed {
            Err(e) => (p(e.to_string()), read, bytes),
            Ok(list) => {
                let in_pack: HashMap<BlobId, &PackEntry> = list.iter().map(|e| (e.id, e)).collect();
                for e in entries {
                    match in_pack.get(&e.id) {
                        Some(h)
                            if h.offset == e.offset
                                && h.length == e.length
                                && h.kind == e.kind
                                && h.base == e.base => {}
                        _ => {
                            return (
                                p(format!(
                                    "its header disagrees with the index about blob {}",
                                    e.id.to_hex()
                                )),
                                read,
                                bytes,
                            )
                        }
                    }
                }
                (None, read, bytes)
            }
        }
    }

    /// True when a data chunk is indexed, its pack is sound, and (for a delta)
    /// its base is indexed whole in a sound pack.
    pub(crate) fn chunk_usable(&self, id: &BlobId, bad: &Bad<'_>) -> bool {
        let sound = |id: &BlobId| match self.locate(id) {
            Ok(l)
                if l.kind == BlobType::Data
                    && !bad.packs.contains(&l.pack)
                    && !bad.blobs.contains(&(l.pack, *id)) =>
            {
                Some(l)
            }
            _ => None,
        };
        match sound(id) {
            None => false,
            Some(l) => match l.base {
                None => true,
                Some(b) => sound(&b).is_some_and(|bl| bl.base.is_none()),
            },
        }
    }

    fn check_tree(&self, snap: &SnapshotId, tree: &BlobId, path: &str, w: &mut TreeWalk<'_>) {
        if w.good.contains(tree) {
            return;
        }
        let t = match self.load_tree(tree) {
            Ok(t) => t,
            Err(e) => {
                w.problems.push(Problem {
                    object: format!("tree {}", tree.to_hex()),
                    message: e.to_string(),
                    affects: vec![format!(
                        "{snap}:{}",
                        if path.is_empty() { "/" } else { path }
                    )],
                });
                return;
            }
        };
        let mut ok = true;
        for n in &t.nodes {
            let p = format!("{path}/{}", n.name);
            match n.kind {
                NodeKind::Dir => {
                    if let Some(sub) = n.subtree {
                        let before = w.problems.len();
                        self.check_tree(snap, &sub, &p, w);
                        ok &= w.problems.len() == before;
                    }
                }
                NodeKind::File => {
                    let mut missing = Vec::new();
                    let mut outside = 0;
                    let res = self.for_each_chunk_list(&n.content, n.content_depth, &mut |ids| {
                        for id in ids {
                            if !self.chunk_usable(id, w.bad) {
                                missing.push(*id);
                            } else if !self.index().contains(id)? {
                                outside += 1;
                            }
                        }
                        Ok(())
                    });
                    w.outside_index += outside;
                    if let Err(e) = res {
                        missing.clear();
                        w.problems.push(Problem {
                            object: format!("file {p}"),
                            message: e.to_string(),
                            affects: vec![format!("{snap}:{p}")],
                        });
                        ok = false;
                    }
                    if let Some(first) = missing.first() {
                        w.problems.push(Problem {
                            object: format!("blob {}", first.to_hex()),
                            message: format!(
                                "{} chunk(s) of this file are missing from the index, lie in a damaged pack, or are deltas whose base is",
                                missing.len()
                            ),
                            affects: vec![format!("{snap}:{p}")],
                        });
                        ok = false;
                    }
                }
                NodeKind::Symlink => {}
            }
        }
        if ok {
            w.good.insert(*tree);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse_and_slices_partition_the_packs() {
        assert_eq!(
            ReadData::parse_subset("2/7").unwrap(),
            ReadData::Slice(2, 7)
        );
        assert_eq!(
            ReadData::parse_subset("10%").unwrap(),
            ReadData::Percent(10.0)
        );
        for bad in ["0/3", "4/3", "1/0", "x", "150%", "-1%", "1/"] {
            assert!(ReadData::parse_subset(bad).is_err(), "{bad}");
        }
        let packs: Vec<PackId> = (0..500u32)
            .map(|i| PackId(*blake3::hash(&i.to_le_bytes()).as_bytes()))
            .collect();
        for p in &packs {
            let hits = (1..=5)
                .filter(|n| ReadData::Slice(*n, 5).selects(p))
                .count();
            assert_eq!(hits, 1, "every pack is in exactly one slice of 5");
        }
        let first = packs
            .iter()
            .filter(|p| ReadData::Slice(1, 5).selects(p))
            .count();
        assert!(
            (60..=140).contains(&first),
            "slices are even: {first} of 500"
        );
        assert!(packs
            .iter()
            .all(|p| ReadData::All.selects(p) && !ReadData::None.selects(p)));
    }
}
