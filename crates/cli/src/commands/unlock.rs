//! `vault unlock`

use crate::cli::UnlockArgs;
use crate::context::{hostname, Context};
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &UnlockArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    if args.remove_all {
        eprintln!("warning: removing every lock and lease; a prune or backup still running loses its protection");
        for (name, info) in repo.locks()? {
            repo.release(&name)?;
            let what = info
                .map(|i| i.describe())
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            println!("removed {name}: {what}");
        }
        return Ok(Outcome::Success);
    }
    let removed = repo.remove_stale_locks(&hostname())?;
    for i in &removed {
        println!("removed stale {}", i.describe());
    }
    if removed.is_empty() && !ctx.global.quiet {
        println!("no stale locks");
    }
    Ok(Outcome::Success)
}
