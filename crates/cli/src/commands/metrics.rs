//! `vault metrics`: the repository's state as Prometheus metrics, so "no good
//! backup of X for 24 h" is one alert rule on
//! `vault_last_snapshot_timestamp_seconds`.

use std::collections::BTreeMap;

use vault_store::FileType;

use crate::context::Context;
use crate::metrics::{labels, render, sample, Labels, Sample};
use crate::{CliError, Outcome};

/// Seconds since the epoch of a snapshot's RFC 3339 time.
pub fn snapshot_seconds(time: &str) -> f64 {
    vault_core::snapshot::parse_time(time)
        .map(|(t, _)| t.as_millisecond() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// The labels of a group's state (operation `metrics`).
fn group(repository: &str, host: &str, tags: &[String]) -> Labels {
    labels("metrics", repository, host, tags)
}

pub fn run(ctx: &Context<'_>) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    // As given, like every other command's series of this repository.
    let location = ctx.global.repo.clone().unwrap_or_default();
    let (snaps, damaged) = repo.list_snapshots_checked()?;
    // Per group: count, latest time, latest logical size.
    let mut groups: BTreeMap<Labels, (u64, f64, u64)> = BTreeMap::new();
    for (_, s) in &snaps {
        let g = groups
            .entry(group(&location, &s.hostname, &s.tags))
            .or_insert((0, 0.0, 0));
        g.0 += 1;
        let t = snapshot_seconds(&s.time);
        if t >= g.1 {
            g.1 = t;
            g.2 = s.summary.bytes_total;
        }
    }
    let mut out: Vec<Sample> = Vec::new();
    for (l, (n, t, size)) in &groups {
        out.push(sample("vault_snapshots", l, *n as f64));
        out.push(sample("vault_last_snapshot_timestamp_seconds", l, *t));
        out.push(sample("vault_latest_snapshot_bytes", l, *size as f64));
    }
    let packs = repo.backend().list(FileType::Pack)?;
    let none = group(&location, "", &[]);
    out.push(sample("vault_repository_packs", &none, packs.len() as f64));
    out.push(sample(
        "vault_repository_stored_bytes",
        &none,
        packs.iter().map(|(_, s)| *s as f64).sum(),
    ));
    out.push(sample(
        "vault_repository_blobs",
        &none,
        repo.index().len()? as f64,
    ));
    out.push(sample("vault_errors", &none, damaged.len() as f64));
    if let Some(path) = &ctx.global.metrics_file {
        // This command owns every group series of these names for this
        // repository: groups that no longer exist go; other repositories'
        // and other commands' series stay.
        let owned = [
            "vault_snapshots",
            "vault_last_snapshot_timestamp_seconds",
            "vault_latest_snapshot_bytes",
        ];
        crate::metrics::write_file(path, &out, |o| {
            owned.contains(&o.name.as_str())
                && o.labels.get("operation").map(String::as_str) == Some("metrics")
                && o.labels.get("repository") == Some(&location)
        })?;
    }
    if ctx.global.json {
        let rows: Vec<serde_json::Value> = out
            .iter()
            .map(|s| serde_json::json!({"name": s.name, "labels": s.labels, "value": s.value}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"message_type": "metrics", "metrics": rows})
        );
    } else if ctx.global.metrics_file.is_none() {
        print!("{}", render(&out));
    }
    if damaged.is_empty() {
        Ok(Outcome::Success)
    } else {
        Err(CliError::fatal(format!(
            "{} snapshot(s) cannot be read: run `vault check`",
            damaged.len()
        )))
    }
}
