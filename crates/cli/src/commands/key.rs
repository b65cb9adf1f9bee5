//! `vault key list|add|remove|passwd`

use vault_core::keys::NewKey;
use vault_core::{KdfParams, KeyId};

use crate::cli::{KeyCommand, NewPasswordArgs};
use crate::context::{hostname, now_rfc3339, read_password, username, Context};
use crate::{CliError, Outcome};

fn new_password(args: &NewPasswordArgs) -> Result<Vec<u8>, CliError> {
    let pw = read_password(
        args.new_password_file.as_deref(),
        None,
        "VAULT_NEW_PASSWORD",
        "new password",
        true,
    )?;
    if pw.is_empty() {
        return Err(CliError::usage("the new password is empty"));
    }
    Ok(pw)
}

fn who() -> NewKey {
    // Documented for test suites only, as at init.
    let kdf = if std::env::var_os("VAULT_INSECURE_TEST_KDF").is_some_and(|v| v == "1") {
        KdfParams::insecure_for_tests()
    } else {
        KdfParams::default()
    };
    NewKey {
        hostname: hostname(),
        username: username(),
        time: now_rfc3339(),
        kdf,
    }
}

pub fn run(ctx: &Context<'_>, cmd: &KeyCommand) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    match cmd {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if ctx.global.json {
                println!("{}", serde_json::to_string(&keys).expect("keys serialize"));
            } else {
                for k in &keys {
                    let mark = if k.current { "*" } else { " " };
                    match &k.damaged {
                        None => println!(
                            "{mark} {}  {}  {}@{}",
                            k.id, k.created, k.username, k.hostname
                        ),
                        Some(e) => println!("{mark} {}  damaged: {e}", k.id),
                    }
                }
            }
        }
        KeyCommand::Add(args) => {
            let id = repo.add_key(&new_password(args)?, &who())?;
            report(ctx, "key_added", &id);
        }
        KeyCommand::Remove { id } => {
            let id = find_key(&repo, id)?;
            repo.remove_key(&id)?;
            report(ctx, "key_removed", &id);
        }
        KeyCommand::Passwd(args) => {
            let id = repo.change_password(&new_password(args)?, &who())?;
            report(ctx, "password_changed", &id);
        }
    }
    Ok(Outcome::Success)
}

fn report(ctx: &Context<'_>, what: &str, id: &KeyId) {
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": what, "key_id": id.to_hex()})
        );
    } else if !ctx.global.quiet {
        println!("{}: key {id}", what.replace('_', " "));
    }
}

/// A key by full id or unique prefix.
fn find_key(repo: &vault_core::Repository, spec: &str) -> Result<KeyId, CliError> {
    if spec.len() < 4 {
        return Err(CliError::usage("give at least 4 hex digits of the key id"));
    }
    let matches: Vec<KeyId> = repo
        .list_keys()?
        .into_iter()
        .map(|k| k.id)
        .filter(|id| id.to_hex().starts_with(spec))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::usage(format!("there is no key `{spec}`"))),
        _ => Err(CliError::usage(format!(
            "`{spec}` matches several keys: give more digits"
        ))),
    }
}
