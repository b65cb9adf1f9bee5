//! `vault stats` and `vault diff`

use vault_core::SnapshotFilter;

use crate::cli::{DiffArgs, StatsArgs};
use crate::context::Context;
use crate::output::bytes;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &StatsArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    match &args.snapshot {
        None => {
            let s = repo.stats()?;
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::json!({"message_type": "stats", "repository": s})
                );
            } else {
                println!("snapshots:          {}", s.snapshots);
                println!("logical size:       {}", bytes(s.logical_bytes));
                println!(
                    "unique data:        {} in {} blobs ({} as deltas)",
                    bytes(s.unique_bytes),
                    s.blobs,
                    s.delta_blobs
                );
                println!(
                    "stored:             {} in {} packs",
                    bytes(s.stored_bytes),
                    s.packs
                );
                println!("dedup ratio:        {:.2}", s.dedup_ratio);
                println!("compression ratio:  {:.2}", s.compression_ratio);
            }
        }
        Some(spec) => {
            let (id, _) = repo.find_snapshot(spec, &SnapshotFilter::from(&args.filter))?;
            let s = repo.snapshot_stats(&id)?;
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::json!({"message_type": "stats", "snapshot": s})
                );
            } else {
                println!("snapshot:           {id}");
                println!("files:              {}", s.files);
                println!("logical size:       {}", bytes(s.logical_bytes));
                println!(
                    "references:         {} in {} blobs",
                    bytes(s.blob_bytes),
                    s.blobs
                );
                println!(
                    "only this snapshot: {} in {} blobs, {} stored (freed by forget + prune)",
                    bytes(s.unique_bytes),
                    s.unique_blobs,
                    bytes(s.unique_stored_bytes)
                );
            }
        }
    }
    Ok(Outcome::Success)
}

pub fn diff(ctx: &Context<'_>, args: &DiffArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let all = SnapshotFilter::default();
    let (_, a) = repo.find_snapshot(&args.from, &all)?;
    let (_, b) = repo.find_snapshot(&args.to, &all)?;
    let changes = repo.diff(&a, &b)?;
    let entry = |p: &str, size: u64| serde_json::json!({"path": p, "size": size});
    if ctx.global.json {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for (p, (old, new)) in &changes {
            match (old, new) {
                (None, Some(n)) => added.push(entry(p, *n)),
                (Some(o), None) => removed.push(entry(p, *o)),
                (Some(o), Some(n)) => {
                    changed.push(serde_json::json!({"path": p, "old_size": o, "new_size": n}))
                }
                (None, None) => {}
            }
        }
        println!(
            "{}",
            serde_json::json!({"message_type": "diff", "added": added, "removed": removed, "changed": changed})
        );
    } else {
        for (p, (old, new)) in &changes {
            match (old, new) {
                (None, Some(n)) => println!("+ {p} ({})", bytes(*n)),
                (Some(o), None) => println!("- {p} ({})", bytes(*o)),
                (Some(o), Some(n)) => println!("M {p} ({} -> {})", bytes(*o), bytes(*n)),
                (None, None) => {}
            }
        }
    }
    Ok(Outcome::Success)
}
