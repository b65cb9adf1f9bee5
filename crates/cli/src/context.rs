//! Turning global options and the environment into an open repository.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use vault_core::{OpenOptions, Repository, SnapshotFilter};
use vault_store::Backend;

use crate::cli::{FilterArgs, GlobalArgs};
use crate::CliError;

/// What every command needs: where the repository is and how to unlock it.
pub struct Context<'a> {
    pub global: &'a GlobalArgs,
}

/// The global options with `repository` (a profile's own) in place of
/// `--repo`, when given.
pub fn with_repository(global: &GlobalArgs, repository: Option<&str>) -> GlobalArgs {
    GlobalArgs {
        repo: repository
            .map(str::to_owned)
            .or_else(|| global.repo.clone()),
        ..global.clone()
    }
}

impl Context<'_> {
    /// The repository location, required.
    pub fn backend(&self) -> Result<Arc<dyn Backend>, CliError> {
        let url = self.global.repo.as_deref().ok_or_else(|| {
            CliError::usage("no repository given: use --repo PATH or set VAULT_REPOSITORY")
        })?;
        Ok(vault_store::open_url(url)?)
    }

    /// The password from (in order) --password-file, --password-command,
    /// VAULT_PASSWORD, or a prompt when a terminal is attached.
    pub fn password(&self, confirm: bool) -> Result<Vec<u8>, CliError> {
        let g = self.global;
        read_password(
            g.password_file.as_deref(),
            g.password_command.as_deref(),
            "VAULT_PASSWORD",
            "repository password",
            confirm,
        )
    }

    /// The cache directory: --cache-dir, else the user's cache directory.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.global
            .cache_dir
            .clone()
            .or_else(|| dirs::cache_dir().map(|d| d.join("vault")))
    }

    /// Opens the repository.
    pub fn open(&self) -> Result<Repository, CliError> {
        let backend = self.backend()?;
        // Fail fast on a missing repository before asking for a password.
        match backend.size(&vault_store::Handle::config()) {
            Err(e) if e.is_not_found() => {
                return Err(vault_core::Error::RepositoryNotFound {
                    location: backend.location(),
                }
                .into())
            }
            _ => {}
        }
        let password = self.password(false)?;
        let opts = OpenOptions {
            cache_dir: self.cache_dir(),
            lock_timing: lock_timing(),
        };
        Ok(Repository::open(backend, &password, &opts)?)
    }
}

/// Lease and lock lifetimes: the default, or for test suites only
/// `VAULT_TEST_LOCK_SECONDS=N` (lifetime N seconds, refreshed every N/3).
pub fn lock_timing() -> vault_core::lock::LockTiming {
    match std::env::var("VAULT_TEST_LOCK_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
    {
        Some(secs) => vault_core::lock::LockTiming {
            lifetime: std::time::Duration::from_secs_f64(secs),
            refresh: std::time::Duration::from_secs_f64(secs / 3.0),
        },
        None => Default::default(),
    }
}

/// A password from a file, a command, an environment variable, or a prompt
/// on the terminal, in that order.
pub fn read_password(
    file: Option<&std::path::Path>,
    command: Option<&str>,
    env_var: &str,
    label: &str,
    confirm: bool,
) -> Result<Vec<u8>, CliError> {
    if let Some(path) = file {
        let text = std::fs::read(path).map_err(|e| {
            CliError::fatal(format!("cannot read password file {}: {e}", path.display()))
        })?;
        return Ok(first_line(text));
    }
    if let Some(cmd) = command {
        let argv = shell_words::split(cmd)
            .map_err(|e| CliError::fatal(format!("cannot parse the password command: {e}")))?;
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| CliError::fatal("the password command is empty"))?;
        let out = std::process::Command::new(prog)
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| CliError::fatal(format!("cannot run password command `{cmd}`: {e}")))?;
        if !out.status.success() {
            return Err(CliError::fatal(format!(
                "password command `{cmd}` failed ({})",
                out.status
            )));
        }
        return Ok(first_line(out.stdout));
    }
    if let Some(pw) = std::env::var_os(env_var) {
        return Ok(pw.into_encoded_bytes());
    }
    if std::io::stdin().is_terminal() {
        let pw = rpassword::prompt_password(format!("{label}: "))
            .map_err(|e| CliError::fatal(format!("cannot read the password: {e}")))?;
        if confirm {
            let again = rpassword::prompt_password("repeat the password: ")
                .map_err(|e| CliError::fatal(format!("cannot read the password: {e}")))?;
            if again != pw {
                return Err(CliError::fatal("the passwords do not match"));
            }
        }
        if pw.is_empty() {
            return Err(CliError::fatal("an empty password is not allowed"));
        }
        return Ok(pw.into_bytes());
    }
    Err(CliError::fatal(format!(
        "no {label} given: set {env_var}, {env_var}_FILE or {env_var}_COMMAND, or run on a terminal"
    )))
}

fn first_line(mut b: Vec<u8>) -> Vec<u8> {
    if let Some(i) = b.iter().position(|&c| c == b'\n') {
        b.truncate(i);
    }
    if b.last() == Some(&b'\r') {
        b.pop();
    }
    b
}

impl From<&FilterArgs> for SnapshotFilter {
    fn from(f: &FilterArgs) -> Self {
        SnapshotFilter {
            hosts: f.hosts.clone(),
            tags: f.tags.clone(),
            paths: f.paths.clone(),
        }
    }
}

/// Now, with the local offset.
pub fn now_rfc3339() -> String {
    let now = jiff::Zoned::now();
    vault_core::snapshot::format_time(now.timestamp(), now.offset())
}

/// This machine's host name.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The user running vault.
pub fn username() -> String {
    std::env::var("USER").unwrap_or_default()
}
