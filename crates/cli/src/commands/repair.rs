//! `vault repair index` and `vault repair snapshots`

use vault_core::NoProgress;

use crate::cli::RepairCommand;
use crate::context::Context;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, cmd: &RepairCommand) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    match cmd {
        RepairCommand::Index => {
            let r = repo.repair_index(&NoProgress)?;
            crate::output::report_stale(ctx.global.json, &r.stale_removed);
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::json!({"message_type": "repair_index", "report": r})
                );
            } else {
                for (p, e) in &r.damaged {
                    eprintln!("damaged pack {p}: {e} (its blobs are lost)");
                }
                println!(
                    "indexed {} blobs in {} packs; replaced {} index objects",
                    r.blobs, r.packs, r.replaced
                );
            }
            if r.damaged.is_empty() {
                Ok(Outcome::Success)
            } else {
                Err(CliError::fatal(format!(
                    "{} pack(s) could not be read; run `vault repair snapshots`",
                    r.damaged.len()
                )))
            }
        }
        RepairCommand::Snapshots { forget, dry_run } => {
            let r = repo.repair_snapshots(*forget, *dry_run, &NoProgress)?;
            crate::output::report_stale(ctx.global.json, &r.stale_removed);
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::json!({"message_type": "repair_snapshots", "report": r})
                );
            } else {
                for (old, new, lost) in &r.repaired {
                    if *dry_run {
                        println!("snapshot {old} lost {} entr(ies):", lost.len());
                    } else {
                        println!("snapshot {old} repaired as {new}; left out:");
                    }
                    for p in lost {
                        println!("  {p}");
                    }
                }
                println!(
                    "{} snapshot(s) repaired, {} intact",
                    r.repaired.len(),
                    r.intact
                );
            }
            Ok(Outcome::Success)
        }
    }
}
