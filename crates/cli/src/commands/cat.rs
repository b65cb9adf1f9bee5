//! `vault cat`: repository objects decoded, for debugging.

use vault_core::{IndexId, PackId, SnapshotFilter};
use vault_store::{FileType, Handle};

use crate::cli::CatArgs;
use crate::context::Context;
use crate::{CliError, Outcome};

fn full_id(repo: &vault_core::Repository, kind: FileType, spec: &str) -> Result<String, CliError> {
    let names: Vec<String> = repo
        .backend()
        .list(kind)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(spec))
        .collect();
    match names.as_slice() {
        [one] if spec.len() >= 4 => Ok(one.clone()),
        [] => Err(CliError::usage(format!("no {} `{spec}`", kind.dir()))),
        _ => Err(CliError::usage(format!(
            "`{spec}` is ambiguous or too short: give more hex digits"
        ))),
    }
}

pub fn run(ctx: &Context<'_>, args: &CatArgs) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let id = || {
        args.id
            .as_deref()
            .ok_or_else(|| CliError::usage(format!("`cat {}` needs an id", args.kind)))
    };
    let value = match args.kind.as_str() {
        "config" => serde_json::to_value(repo.config()).expect("config serializes"),
        "snapshot" => {
            let (sid, s) = repo.find_snapshot(id()?, &SnapshotFilter::default())?;
            serde_json::json!({"id": sid.to_hex(), "snapshot": s})
        }
        "key" => {
            let name = full_id(&repo, FileType::Key, id()?)?;
            let bytes = repo
                .backend()
                .read(&Handle::new(FileType::Key, name.clone())?)?;
            let key = vault_core::repository::KeyFile::decode(&name, &bytes)?;
            serde_json::json!({"id": name, "key": key})
        }
        "index" => {
            let name = full_id(&repo, FileType::Index, id()?)?;
            let iid = IndexId::from_hex(&name).ok_or_else(|| CliError::usage("bad index id"))?;
            let f = repo.load_index(&iid)?;
            let packs: Vec<serde_json::Value> = f
                .packs
                .iter()
                .map(|(p, entries)| {
                    serde_json::json!({"pack": p.to_hex(), "blobs": entries.iter().map(entry).collect::<Vec<_>>()})
                })
                .collect();
            serde_json::json!({
                "id": name,
                "packs": packs,
                "supersedes": f.supersedes.iter().map(|s| s.to_hex()).collect::<Vec<_>>(),
                "sketches": f.sketches.len(),
                "writer": f.writer,
            })
        }
        "pack" => {
            let name = full_id(&repo, FileType::Pack, id()?)?;
            let pid = PackId::from_hex(&name).ok_or_else(|| CliError::usage("bad pack id"))?;
            let bytes = repo
                .backend()
                .read(&Handle::new(FileType::Pack, name.clone())?)?;
            let entries = vault_core::pack::parse_pack(repo.keys(), &pid, &bytes)?;
            serde_json::json!({"id": name, "size": bytes.len(), "blobs": entries.iter().map(entry).collect::<Vec<_>>()})
        }
        other => return Err(CliError::usage(format!("cannot cat `{other}`"))),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&value).expect("JSON serializes")
    );
    Ok(Outcome::Success)
}

fn entry(e: &vault_core::pack::PackEntry) -> serde_json::Value {
    serde_json::json!({
        "type": e.kind.name(),
        "id": e.id.to_hex(),
        "offset": e.offset,
        "length": e.length,
        "raw_length": e.raw_length,
        "base": e.base.map(|b| b.to_hex()),
    })
}
