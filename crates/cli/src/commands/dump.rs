//! `vault dump`

use vault_core::{NoProgress, SnapshotFilter};

use crate::cli::DumpArgs;
use crate::context::Context;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &DumpArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let (_, snap) = repo.find_snapshot(&args.snapshot, &SnapshotFilter::from(&args.filter))?;
    let mut out = std::io::stdout();
    repo.dump(&snap, &args.path, &mut out, &NoProgress)?;
    Ok(Outcome::Success)
}
