//! `vault snapshots`

use vault_core::SnapshotFilter;

use crate::cli::SnapshotsArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &SnapshotsArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let filter = SnapshotFilter::from(&args.filter);
    let (all, damaged) = repo.list_snapshots_checked()?;
    for (id, e) in &damaged {
        crate::output::notice(
            ctx.global.json,
            "warning",
            &format!("snapshot {id} cannot be read: {e}"),
        );
    }
    let list: Vec<_> = all.into_iter().filter(|(_, s)| filter.matches(s)).collect();
    if ctx.global.json {
        let arr: Vec<_> = list
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(),
                    "short_id": id.to_string(),
                    "time": s.time,
                    "hostname": s.hostname,
                    "username": s.username,
                    "tags": s.tags,
                    "paths": s.paths,
                    "source": s.source,
                    "command": s.command,
                    "tree": s.tree,
                    "parent": s.parent,
                    "summary": s.summary,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(arr));
        return Ok(Outcome::Success);
    }
    println!(
        "{:<8}  {:<25}  {:<16}  {:<16}  {:>10}  paths",
        "id", "time", "host", "tags", "size"
    );
    for (id, s) in &list {
        println!(
            "{:<8}  {:<19}  {:<16}  {:<16}  {:>10}  {}",
            id.to_string(),
            s.time.get(..19).unwrap_or(&s.time).replace('T', " "),
            s.hostname,
            s.tags.join(","),
            bytes(s.summary.bytes_total),
            s.paths.join(" ")
        );
    }
    if !ctx.global.quiet {
        println!("{} snapshot(s)", list.len());
    }
    Ok(Outcome::Success)
}
