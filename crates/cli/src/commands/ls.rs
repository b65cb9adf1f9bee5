//! `vault ls`

use std::io::Write;

use vault_core::tree::NodeKind;
use vault_core::SnapshotFilter;

use crate::cli::LsArgs;
use crate::context::Context;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &LsArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let (_, snap) = repo.find_snapshot(&args.snapshot, &SnapshotFilter::from(&args.filter))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut rows = Vec::new();
    let json = ctx.global.json;
    repo.walk(
        &snap,
        args.path.as_deref().unwrap_or("/"),
        &mut |path, node| {
            let kind = match node.kind {
                NodeKind::File => "file",
                NodeKind::Dir => "dir",
                NodeKind::Symlink => "symlink",
            };
            if json {
                rows.push(serde_json::json!({
                "path": path, "type": kind, "size": node.size, "mode": node.mode,
                "mtime_ns": node.mtime_ns, "uid": node.uid, "gid": node.gid, "target": node.target,
            }));
            } else if args.long {
                let _ = writeln!(out, "{kind:<7} {:04o} {:>12} {path}", node.mode, node.size);
            } else {
                let _ = writeln!(out, "{path}");
            }
            Ok(())
        },
    )?;
    if json {
        let _ = writeln!(out, "{}", serde_json::Value::Array(rows));
    }
    out.flush()
        .map_err(|e| CliError::fatal(format!("writing to stdout: {e}")))?;
    Ok(Outcome::Success)
}
