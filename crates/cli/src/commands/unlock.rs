//! `vault unlock`

use crate::cli::UnlockArgs;
use crate::context::Context;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &UnlockArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let mut removed: Vec<String> = Vec::new();
    if args.remove_all {
        crate::output::notice(
            ctx.global.json,
            "warning",
            "removing every lock and lease; a prune or backup still running loses its protection",
        );
        for (name, info) in repo.locks()? {
            repo.release(&name)?;
            let what = info
                .map(|i| i.describe())
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            removed.push(format!("{name}: {what}"));
        }
    } else {
        removed = repo
            .remove_stale_locks()?
            .iter()
            .map(|i| format!("stale {}", i.describe()))
            .collect();
        // No working vault writes an unreadable lock: it is damage, and it
        // would keep prune deferring forever.
        removed.extend(
            repo.remove_unreadable_locks()?
                .into_iter()
                .map(|n| format!("unreadable lock object {n}")),
        );
    }
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "unlock", "removed": removed})
        );
    } else {
        for r in &removed {
            println!("removed {r}");
        }
        if removed.is_empty() && !ctx.global.quiet {
            println!("no stale locks");
        }
    }
    Ok(Outcome::Success)
}
