//! `vault restore`

use vault_core::{RestoreOptions, SnapshotFilter};

use crate::cli::RestoreArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &RestoreArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let (id, snap) = repo.find_snapshot(&args.snapshot, &SnapshotFilter::from(&args.filter))?;
    let started = std::time::Instant::now();
    let opts = RestoreOptions {
        include: args.include.clone(),
    };
    let progress = crate::progress::TermProgress::new("restore", ctx.global.quiet, ctx.global.json);
    let sum = repo.restore(&snap, &args.target, &opts, &progress)?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    for e in &sum.errors {
        if ctx.global.json {
            eprintln!(
                "{}",
                serde_json::json!({"message_type": "error", "path": e.path, "message": e.message})
            );
        } else {
            eprintln!("error: {}: {}", e.path, e.message);
        }
    }
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "snapshot_id": id.to_hex(), "files": sum.files, "dirs": sum.dirs,
                "symlinks": sum.symlinks, "bytes": sum.bytes, "errors": sum.errors.len(), "duration_seconds": secs})
        );
    } else if !ctx.global.quiet {
        println!(
            "restored snapshot {id} to {}: {} files, {} dirs, {} symlinks, {} in {secs:.2} s",
            args.target.display(),
            sum.files,
            sum.dirs,
            sum.symlinks,
            bytes(sum.bytes)
        );
    }
    if sum.errors.is_empty() {
        Ok(Outcome::Success)
    } else {
        Err(CliError::fatal(format!(
            "{} entr{} could not be restored (listed above); everything else was restored and verified",
            sum.errors.len(),
            if sum.errors.len() == 1 { "y" } else { "ies" }
        )))
    }
}
