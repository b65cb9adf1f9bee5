//! Command-line definitions (clap derive).
// Doc comments here become `--help` text, so fields that need no help carry none.
#![allow(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   fatal error (the message says what failed and what to do)
  2   invalid command line
  3   snapshot created, but some source files could not be read (listed on stderr)
  10  repository does not exist
  11  repository is locked
  12  wrong password";

/// vault: encrypted, deduplicated backups of files, directory trees and database dumps.
#[derive(Debug, Parser)]
#[command(name = "vault", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Repository: a directory path or file:///path.
    #[arg(short = 'r', long, env = "VAULT_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the password from this file (first line).
    #[arg(long, env = "VAULT_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this command (split like a shell would, without a shell) and use its output as the password.
    #[arg(long, env = "VAULT_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Directory for the local index cache (default: the user's cache directory, e.g. ~/.cache/vault).
    #[arg(long, env = "VAULT_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Selects snapshots by host, tag and path.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots with this tag (repeat to require several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Only snapshots of this path (repeatable).
    #[arg(long = "path")]
    pub paths: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files, directories, standard input or a command's output.
    Snapshot(SnapshotArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot.
    Ls(LsArgs),
    /// Restore a snapshot into a directory.
    Restore(RestoreArgs),
    /// Write one file or stream of a snapshot to standard output.
    Dump(DumpArgs),
    /// Copy snapshots from another repository into this one.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Average chunk size (power of two, 16K..4M; min is a quarter, max four times it).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Target pack size.
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    pub pack_size: u64,
    /// zstd level for new data, or `off`.
    #[arg(long, default_value = "3")]
    pub compression: String,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Back up standard input as one file.
    #[arg(long, conflicts_with_all = ["paths", "command"])]
    pub stdin: bool,
    /// Run this command and back up its standard output; the snapshot is committed only if it
    /// exits 0. The line is split into words like a POSIX shell would (quotes, backslashes), but no
    /// shell runs: no pipes, redirections, globs or variables (use `sh -c '...'` for those).
    #[arg(long, conflicts_with = "paths")]
    pub command: Option<String>,
    /// Name of the file holding the stream in the snapshot (with --stdin or --command).
    #[arg(long, default_value = "stdin")]
    pub stdin_name: String,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Snapshot time, RFC 3339 (default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Re-read all files, even those unchanged since the previous snapshot.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// Only this path and what is under it.
    pub path: Option<String>,
    /// Show type, mode, size and time.
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// Directory to restore into (created if missing).
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this glob (repeatable); without a leading `/` it matches at any depth.
    #[arg(long)]
    pub include: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// File in the snapshot (for a stdin or command snapshot: its --stdin-name).
    pub path: String,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from (path, file:// or s3:// URL).
    #[arg(long, env = "VAULT_FROM_REPOSITORY")]
    pub from_repo: String,
    /// Read the source repository's password from this file.
    #[arg(long, env = "VAULT_FROM_PASSWORD_FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this command for the source repository's password.
    #[arg(long, env = "VAULT_FROM_PASSWORD_COMMAND")]
    pub from_password_command: Option<String>,
    /// Snapshots to copy (default: all that match the filters).
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Parses `1048576`, `512K`, `1M`, `1G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size unit in `{s}` (use K, M or G)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("`{s}` is not a size such as 1M or 512K"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
