//! Errors of the engine.
//!
//! Every public fallible function returns [`Result<T>`]. The variants are the
//! decisions a caller can act on (the CLI maps them to exit codes); each
//! message names the object or file involved and, where there is one, what to
//! do next. The engine never prints: context travels in the error.

use std::path::PathBuf;

use vault_store::StoreError;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No repository exists at the location (no `config` object).
    #[error("no repository at {location}: check --repo / VAULT_REPOSITORY, or create one with `vault init`")]
    RepositoryNotFound {
        /// The backend location.
        location: String,
    },
    /// `init` found an existing repository.
    #[error("a repository already exists at {location}; refusing to overwrite it")]
    RepositoryExists {
        /// The backend location.
        location: String,
    },
    /// No key of the repository opens with the given password.
    #[error("wrong password: none of the {keys} key(s) in {location} opens with it")]
    WrongPassword {
        /// The backend location.
        location: String,
        /// How many keys were tried.
        keys: usize,
    },
    /// The repository uses a format this version does not understand.
    #[error("{what} has format version {found}, but this vault understands only version {supported}: upgrade vault")]
    UnsupportedVersion {
        /// Which object.
        what: String,
        /// Version found in the object.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// An object failed to authenticate, decode or verify.
    #[error("{what} is damaged: {reason}")]
    Corrupt {
        /// Which object (kind and id) or file.
        what: String,
        /// What check failed.
        reason: String,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file operation failed (source, target or cache).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "creating", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The local index cache could not be used.
    #[error("index cache {path}: {reason}")]
    Cache {
        /// The cache database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The caller asked for something that does not exist or is ambiguous.
    #[error("{0}")]
    Invalid(String),
    /// A command whose output was being backed up failed.
    #[error("command `{command}` {status}; no snapshot was created")]
    CommandFailed {
        /// The command line as given.
        command: String,
        /// How it ended ("exited with status 1", "was killed by signal 9", "could not be started: ...").
        status: String,
    },
    /// Another process holds the repository's exclusive lock.
    #[error("the repository is locked by {holder}; if that process is gone, run `vault unlock`")]
    Locked {
        /// Who holds it.
        holder: String,
    },
    /// A lease or lock this process held stopped counting while its work ran
    /// (see [`crate::lock::Held::ensure_valid`]); the work stopped before
    /// committing or deleting anything more.
    #[error("{what}; stopped before committing: run the command again")]
    LockLost {
        /// Which lease or lock, and what happened to it.
        what: String,
    },
    /// The operation was cancelled by the caller.
    #[error("interrupted; nothing was committed")]
    Interrupted,
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn cache(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Cache {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
