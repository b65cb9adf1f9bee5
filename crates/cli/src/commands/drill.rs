//! `vault drill`: the restore rehearsal of the runbooks. For the latest
//! snapshot of each selected group (host and tags): restore it (or only
//! verify every chunk), optionally run a validation command on the result,
//! and report the time it took (the measured RTO) and the snapshot's age
//! (the RPO it proves). Any failure fails the drill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vault_core::tree::NodeKind;
use vault_core::{RestoreOptions, Snapshot, SnapshotFilter, SnapshotId};

use crate::cli::DrillArgs;
use crate::context::Context;
use crate::output::{bytes, rate};
use crate::{CliError, Outcome};

/// What one group's drill found.
struct Finding {
    group: (String, Vec<String>),
    snapshot: SnapshotId,
    age_seconds: f64,
    /// Restore (or verification) alone: the RTO.
    restore_seconds: f64,
    /// Restore and validation.
    seconds: f64,
    bytes: u64,
    files: u64,
    error: Option<String>,
}

/// Parses `90s`, `45m`, `26h`, `8d` into seconds.
fn parse_age(s: &str) -> Result<f64, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--max-age `{s}`: use a number with s, m, h or d (e.g. 26h)"
        ))
    };
    let (num, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    Ok(n * mult)
}

/// Latest snapshot of each (host, tags) group the filter selects.
fn latest_per_group(
    snaps: Vec<(SnapshotId, Snapshot)>,
    filter: &SnapshotFilter,
) -> BTreeMap<(String, Vec<String>), (SnapshotId, Snapshot)> {
    let mut groups: BTreeMap<(String, Vec<String>), (SnapshotId, Snapshot)> = BTreeMap::new();
    for (id, s) in snaps.into_iter().filter(|(_, s)| filter.matches(s)) {
        let mut tags = s.tags.clone();
        tags.sort();
        let key = (s.hostname.clone(), tags);
        let newer = groups.get(&key).is_none_or(|(_, cur)| {
            super::metrics::snapshot_seconds(&s.time) >= super::metrics::snapshot_seconds(&cur.time)
        });
        if newer {
            groups.insert(key, (id, s));
        }
    }
    groups
}

/// Forwards progress, except the per-file totals of `dump`.
struct WholeSnapshot<'a>(&'a dyn vault_core::Progress);

impl vault_core::Progress for WholeSnapshot<'_> {
    fn file(&self, path: &Path) {
        self.0.file(path)
    }
    fn bytes(&self, n: u64) {
        self.0.bytes(n)
    }
    fn warning(&self, path: &Path, message: &str) {
        self.0.warning(path, message)
    }
}

/// Restores (or verifies) one snapshot, then validates it; returns (files,
/// bytes, seconds the restore took).
fn rehearse(
    repo: &vault_core::Repository,
    snap: &Snapshot,
    target: Option<&Path>,
    validate: Option<&str>,
    progress: &dyn vault_core::Progress,
) -> Result<(u64, u64, f64), String> {
    let started = Instant::now();
    let mut files: Vec<String> = Vec::new();
    repo.walk(snap, "/", &mut |path, node| {
        if node.kind == NodeKind::File {
            files.push(path.to_owned());
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let Some(target) = target else {
        // Verify only: every chunk is read, decrypted and checked against its
        // id, and every file against its whole-content digest. Progress
        // counts towards the whole snapshot, not each file.
        progress.total(snap.summary.bytes_total);
        let whole = WholeSnapshot(progress);
        let mut total = 0;
        for f in &files {
            total += repo
                .dump(snap, f, &mut std::io::sink(), &whole)
                .map_err(|e| format!("{f}: {e}"))?;
        }
        return Ok((files.len() as u64, total, started.elapsed().as_secs_f64()));
    };
    let summary = repo
        .restore(snap, target, &RestoreOptions::default(), progress)
        .map_err(|e| e.to_string())?;
    let restore_seconds = started.elapsed().as_secs_f64();
    if let Some(first) = summary.errors.first() {
        return Err(format!(
            "{} entr{} could not be restored, first {}: {}",
            summary.errors.len(),
            if summary.errors.len() == 1 {
                "y"
            } else {
                "ies"
            },
            first.path,
            first.message
        ));
    }
    if let Some(cmd) = validate {
        let restored: Vec<PathBuf> = files
            .iter()
            .map(|f| target.join(f.trim_start_matches('/')))
            .collect();
        let runs: Vec<String> = if cmd.contains("{}") {
            restored
                .iter()
                .map(|p| cmd.replace("{}", &shell_words::quote(&p.to_string_lossy())))
                .collect()
        } else {
            vec![format!(
                "{cmd} {}",
                shell_words::quote(&target.to_string_lossy())
            )]
        };
        for line in runs {
            let argv =
                shell_words::split(&line).map_err(|e| format!("cannot parse --validate: {e}"))?;
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("validation `{line}` could not run: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "validation `{line}` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    Ok((summary.files, summary.bytes, restore_seconds))
}

pub fn run(ctx: &Context<'_>, args: &DrillArgs) -> Result<Outcome, CliError> {
    let started = Instant::now();
    let mut recorded = false;
    let result = drill(ctx, args, &mut recorded);
    // The run as a whole, under the selection asked for (the host given, or
    // none, and the tags given): a drill that failed before it could
    // rehearse any group, or could not read every snapshot, shows here, and
    // the next drill that passes clears it.
    if let Some(path) = &ctx.global.metrics_file {
        let host = args.filter.hosts.first().cloned().unwrap_or_default();
        let repository = ctx.global.repo.as_deref().unwrap_or_default();
        let labels = crate::metrics::labels("drill_run", repository, &host, &args.filter.tags);
        let seconds = started.elapsed().as_secs_f64();
        let values: &[(&str, f64)] = if recorded { &[] } else { &DRILL_VALUES };
        if let Err(m) = crate::metrics::record(path, &labels, seconds, result.is_ok(), values) {
            crate::output::notice(ctx.global.json, "warning", &m.message);
        }
    }
    result
}

/// The values a drill records per group (zero when it failed).
const DRILL_VALUES: [(&str, f64); 4] = [
    ("vault_restore_seconds", 0.0),
    ("vault_snapshot_age_seconds", 0.0),
    ("vault_bytes_read", 0.0),
    ("vault_files", 0.0),
];

/// The drill; `recorded` tells whether it wrote per-group metrics.
fn drill(ctx: &Context<'_>, args: &DrillArgs, recorded: &mut bool) -> Result<Outcome, CliError> {
    let max_age = args.max_age.as_deref().map(parse_age).transpose()?;
    let repo = ctx.open()?;
    let filter = SnapshotFilter::from(&args.filter);
    let (snaps, damaged) = repo.list_snapshots_checked()?;
    for (id, e) in &damaged {
        crate::output::notice(
            ctx.global.json,
            "warning",
            &format!("snapshot {id} cannot be read: {e}"),
        );
    }
    let groups = latest_per_group(snaps, &filter);
    if groups.is_empty() {
        return Err(CliError::fatal("no snapshot matches: nothing to rehearse"));
    }
    let now = crate::metrics::now();
    let mut findings = Vec::new();
    for ((host, tags), (id, snap)) in groups {
        let scratch;
        let target: Option<PathBuf> = if args.verify_only {
            None
        } else if let Some(t) = &args.target {
            Some(t.join(id.to_string()))
        } else {
            scratch = tempfile::Builder::new()
                .prefix("vault-drill-")
                .tempdir()
                .map_err(|e| CliError::fatal(format!("cannot create a scratch directory: {e}")))?;
            Some(scratch.path().to_owned())
        };
        let started = Instant::now();
        let progress =
            crate::progress::TermProgress::new("drill", ctx.global.quiet, ctx.global.json);
        let r = rehearse(
            &repo,
            &snap,
            target.as_deref(),
            args.validate.as_deref(),
            &progress,
        );
        progress.finish();
        let seconds = started.elapsed().as_secs_f64();
        let age = now - super::metrics::snapshot_seconds(&snap.time);
        let mut error = r.as_ref().err().cloned();
        if error.is_none() {
            if let Some(max) = max_age.filter(|m| age > *m) {
                error = Some(format!(
                    "the latest snapshot is {:.1} h old, more than the {:.1} h allowed",
                    age / 3600.0,
                    max / 3600.0
                ));
            }
        }
        let (files, bytes, restore_seconds) = r.unwrap_or((0, 0, seconds));
        findings.push(Finding {
            group: (host, tags),
            snapshot: id,
            age_seconds: age,
            restore_seconds,
            seconds,
            bytes,
            files,
            error,
        });
    }
    for f in &findings {
        if let Some(path) = &ctx.global.metrics_file {
            *recorded = true;
            let repository = ctx.global.repo.as_deref().unwrap_or_default();
            let labels = crate::metrics::labels("drill", repository, &f.group.0, &f.group.1);
            let m = crate::metrics::record(
                path,
                &labels,
                f.seconds,
                f.error.is_none(),
                &[
                    ("vault_restore_seconds", f.restore_seconds),
                    ("vault_snapshot_age_seconds", f.age_seconds),
                    ("vault_bytes_read", f.bytes as f64),
                    ("vault_files", f.files as f64),
                ],
            );
            if let Err(e) = m {
                crate::output::notice(ctx.global.json, "warning", &e.message);
            }
        }
        if ctx.global.json {
            println!(
                "{}",
                serde_json::json!({
                    "message_type": "drill",
                    "host": f.group.0,
                    "tags": f.group.1,
                    "snapshot_id": f.snapshot.to_hex(),
                    "ok": f.error.is_none(),
                    "error": f.error,
                    "restore_seconds": f.restore_seconds,
                    "validate_seconds": f.seconds - f.restore_seconds,
                    "snapshot_age_seconds": f.age_seconds,
                    "files": f.files,
                    "bytes": f.bytes,
                    "mb_per_second": f.bytes as f64 / 1e6 / f.restore_seconds.max(1e-6),
                    "verify_only": args.verify_only,
                })
            );
        } else if !ctx.global.quiet || f.error.is_some() {
            let status = match &f.error {
                None => "ok".to_owned(),
                Some(e) => format!("FAILED: {e}"),
            };
            println!(
                "drill {} (host {}, tags [{}]): {status}; restored {} files, {} in {:.2} s ({}); snapshot age {:.1} h",
                f.snapshot,
                f.group.0,
                f.group.1.join(","),
                f.files,
                bytes(f.bytes),
                f.restore_seconds,
                rate(f.bytes, f.restore_seconds),
                f.age_seconds / 3600.0
            );
        }
    }
    let failed = findings.iter().filter(|f| f.error.is_some()).count();
    if failed > 0 {
        return Err(CliError::fatal(format!(
            "the drill failed for {failed} of {} group(s)",
            findings.len()
        )));
    }
    if !damaged.is_empty() {
        // The latest snapshot of some group may be among them: the drill
        // cannot vouch for what it could not read.
        return Err(CliError::fatal(format!(
            "{} snapshot(s) cannot be read (the latest of a group may be among them): run `vault check`",
            damaged.len()
        )));
    }
    Ok(Outcome::Success)
}
