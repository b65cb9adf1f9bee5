//! Snapshots: a point in time, its metadata and the root tree.
//!
//! A snapshot object is sealed JSON (associated data `"vault snapshot v1"`)
//! named by the BLAKE3 of its sealed bytes. It is written last, after every
//! pack and index object it depends on, so its existence is the commit.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};

/// Snapshot format version written by this build.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What a snapshot was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Files and directories.
    Paths,
    /// Standard input.
    Stdin,
    /// A command's standard output.
    Command,
}

/// Counters of one backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Regular files (and streams) saved.
    pub files: u64,
    /// Directories saved.
    pub dirs: u64,
    /// Files whose content came unchanged from the parent snapshot.
    #[serde(default)]
    pub files_unchanged: u64,
    /// Logical bytes of all files in the snapshot.
    pub bytes_total: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Plaintext bytes of new (not deduplicated) blobs.
    pub bytes_added: u64,
    /// Bytes of new blobs after compression and sealing (what was stored).
    pub bytes_stored: u64,
    /// New blobs written.
    pub blobs_added: u64,
    /// Of the new blobs, those stored as deltas against similar chunks.
    #[serde(default)]
    pub blobs_delta: u64,
    /// Source entries that could not be read.
    #[serde(default)]
    pub errors: u64,
    /// Wall time of the backup.
    pub duration_seconds: f64,
}

/// A committed point in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version.
    pub version: u32,
    /// When the snapshot was taken (RFC 3339 with the local offset at the time).
    pub time: String,
    /// Host it was taken on.
    pub hostname: String,
    /// User who took it.
    #[serde(default)]
    pub username: String,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Paths backed up (or the stream's name).
    pub paths: Vec<String>,
    /// What it was made from.
    pub source: SourceKind,
    /// The command whose output was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Root tree.
    pub tree: BlobId,
    /// Snapshot used to skip unchanged files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SnapshotId>,
    /// Counters.
    pub summary: Summary,
    /// vault version that wrote it.
    #[serde(default)]
    pub program_version: String,
    /// For a copy: the snapshot in the source repository it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<SnapshotId>,
}

impl Snapshot {
    /// The instant it was taken.
    pub fn timestamp(&self) -> Result<jiff::Timestamp> {
        parse_time(&self.time).map(|(t, _)| t)
    }

    /// True when it has every tag in `tags`.
    pub fn has_tags(&self, tags: &[String]) -> bool {
        tags.iter().all(|t| self.tags.contains(t))
    }
}

/// Parses RFC 3339 (e.g. `2026-11-23T10:00:00+01:00` or `...Z`), keeping the offset.
pub fn parse_time(s: &str) -> Result<(jiff::Timestamp, jiff::tz::Offset)> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!(
            "invalid time `{s}` (expected RFC 3339 such as 2026-11-23T10:00:00+01:00): {e}"
        ))
    };
    // RFC 3339 years have four digits: no signs, no extended years.
    if !s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return Err(bad(&"the year must have four digits"));
    }
    let ts: jiff::Timestamp = s.parse().map_err(|e| bad(&e))?;
    let offset = if s.ends_with('Z') || s.ends_with('z') {
        jiff::tz::Offset::UTC
    } else {
        let tail = s.get(s.len().saturating_sub(6)..).unwrap_or("");
        let sign = match tail.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad(&"missing offset")),
        };
        let h: i32 = tail
            .get(1..3)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| bad(&"bad offset"))?;
        let m: i32 = tail
            .get(4..6)
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| bad(&"bad offset"))?;
        jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|e| bad(&e))?
    };
    Ok((ts, offset))
}

/// Formats an instant in RFC 3339 with the given offset.
pub fn format_time(ts: jiff::Timestamp, offset: jiff::tz::Offset) -> String {
    ts.to_zoned(jiff::tz::TimeZone::fixed(offset))
        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        .to_string()
}

/// Selects snapshots by host, tags and paths.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Any of these hosts (empty: any host).
    pub hosts: Vec<String>,
    /// All of these tags.
    pub tags: Vec<String>,
    /// Any of these paths (empty: any).
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    /// True when `s` passes the filter.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && s.has_tags(&self.tags)
            && (self.paths.is_empty()
                || self.paths.iter().any(|p| {
                    s.paths
                        .iter()
                        .any(|q| q == p || q.trim_start_matches('/') == p.trim_start_matches('/'))
                }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keeps_offset() {
        let (ts, off) = parse_time("2026-03-29T01:30:00+02:00").unwrap();
        assert_eq!(off.seconds(), 7200);
        assert_eq!(ts.to_string(), "2026-03-28T23:30:00Z");
        assert_eq!(format_time(ts, off), "2026-03-29T01:30:00+02:00");
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z").unwrap().1,
            jiff::tz::Offset::UTC
        );
        assert_eq!(
            parse_time("2026-01-01T00:00:00-05:30").unwrap().1.seconds(),
            -19800
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-000001-01-01T00:00:00Z").is_err());
        assert!(parse_time("+010000-01-01T00:00:00Z").is_err());
    }
}
