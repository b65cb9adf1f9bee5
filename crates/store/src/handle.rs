//! Object kinds ([`FileType`]) and validated object names ([`Handle`]).
//!
//! Names are restricted to a small alphabet so that they are safe as file
//! names and object-store keys everywhere (no separators, no dots, no case
//! folding surprises), and so that anything else found in a directory, such as
//! a temporary file, can be recognised and ignored.

use std::fmt;

use crate::error::{Result, StoreError, StoreErrorKind};

/// Longest allowed object name, in characters.
const MAX_NAME_LEN: usize = 128;

/// Kinds of objects in a repository.
///
/// Path layout, relative to the repository root:
///
/// | kind       | path                                  |
/// |------------|---------------------------------------|
/// | `Config`   | `config` (the only allowed name is `config`) |
/// | `Key`      | `keys/<name>`                         |
/// | `Pack`     | `data/<first two chars of name>/<name>` |
/// | `Index`    | `index/<name>`                        |
/// | `Snapshot` | `snapshots/<name>`                    |
/// | `Lock`     | `locks/<name>`                        |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// The repository configuration; exactly one object, named `config`.
    Config,
    /// Key files (the master key wrapped by a password).
    Key,
    /// Pack files holding encrypted blobs; by far the most numerous kind.
    Pack,
    /// Index files mapping blobs to packs.
    Index,
    /// Snapshot descriptions.
    Snapshot,
    /// Repository locks.
    Lock,
}

impl FileType {
    /// Every kind, in a fixed order.
    pub const ALL: [FileType; 6] = [
        FileType::Config,
        FileType::Key,
        FileType::Pack,
        FileType::Index,
        FileType::Snapshot,
        FileType::Lock,
    ];

    /// Directory holding objects of this kind, relative to the root.
    ///
    /// `Config` lives in the root itself, so its directory is `""`. Packs live
    /// one level further down, in `data/<two-char prefix>/`.
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys",
            FileType::Pack => "data",
            FileType::Index => "index",
            FileType::Snapshot => "snapshots",
            FileType::Lock => "locks",
        }
    }

    /// Singular lower-case name for messages: `"config"`, `"key"`, `"pack"`,
    /// `"index"`, `"snapshot"` or `"lock"`.
    pub fn name(self) -> &'static str {
        match self {
            FileType::Config => "config",
            FileType::Key => "key",
            FileType::Pack => "pack",
            FileType::Index => "index",
            FileType::Snapshot => "snapshot",
            FileType::Lock => "lock",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated object name within a kind.
///
/// Valid names are 1 to 128 characters of `0-9`, `a-z` and `-`; pack names
/// need at least 2 characters (their first two select the `data/xx`
/// directory), and the only valid `Config` name is `config`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    kind: FileType,
    name: String,
}

impl Handle {
    /// Validate `name` for `kind`; fails with [`StoreErrorKind::InvalidName`].
    pub fn new(kind: FileType, name: impl Into<String>) -> Result<Handle> {
        let name = name.into();
        if let Some(problem) = name_problem(kind, &name) {
            return Err(StoreError::new(
                StoreErrorKind::InvalidName,
                format!(
                    "invalid {} name `{}`: {problem}",
                    kind.name(),
                    name.escape_debug()
                ),
            ));
        }
        Ok(Handle { kind, name })
    }

    /// The repository configuration object.
    pub fn config() -> Handle {
        Handle {
            kind: FileType::Config,
            name: "config".to_owned(),
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> FileType {
        self.kind
    }

    /// The object's name within its kind.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path relative to the repository root, `/`-separated (see [`FileType`]).
    pub fn path(&self) -> String {
        match self.kind {
            FileType::Config => self.name.clone(),
            FileType::Pack => format!("data/{}/{}", &self.name[..2], self.name),
            kind => format!("{}/{}", kind.dir(), self.name),
        }
    }
}

impl fmt::Display for Handle {
    /// `"<kind> <name>"`, e.g. `pack 3fa9…`; the config object is just `config`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FileType::Config => f.write_str("config"),
            kind => write!(f, "{} {}", kind.name(), self.name),
        }
    }
}

/// Why `name` is not valid for `kind`, or `None` if it is.
fn name_problem(kind: FileType, name: &str) -> Option<&'static str> {
    if kind == FileType::Config {
        return (name != "config").then_some("the only valid config name is `config`");
    }
    if name.is_empty() {
        return Some("names must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("names are at most 128 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
    {
        return Some("names may only contain 0-9, a-z and '-'");
    }
    if kind == FileType::Pack && name.len() < 2 {
        return Some("pack names need at least 2 characters");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(kind: FileType, name: &str) -> bool {
        matches!(Handle::new(kind, name), Err(e) if e.kind() == StoreErrorKind::InvalidName)
    }

    #[test]
    fn valid_names() {
        for name in ["a", "0", "abc-123", &"f".repeat(128)] {
            assert!(Handle::new(FileType::Key, name).is_ok(), "{name}");
        }
        assert!(Handle::new(FileType::Pack, "ab").is_ok());
        assert_eq!(
            Handle::new(FileType::Config, "config").unwrap(),
            Handle::config()
        );
    }

    #[test]
    fn invalid_names() {
        for name in [
            "",
            "A",
            "a.b",
            "a/b",
            "a_b",
            ".tmp-1",
            "é",
            "a b",
            &"f".repeat(129),
        ] {
            assert!(invalid(FileType::Snapshot, name), "{name:?}");
        }
        assert!(invalid(FileType::Pack, "a"));
        assert!(invalid(FileType::Config, "other"));
        assert!(invalid(FileType::Config, ""));
    }

    #[test]
    fn invalid_name_message_names_kind_and_name() {
        let err = Handle::new(FileType::Index, "Bad").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("index") && msg.contains("`Bad`"), "{msg}");
    }

    #[test]
    fn paths_and_display() {
        let pack = Handle::new(FileType::Pack, "3fa9beef").unwrap();
        assert_eq!(pack.path(), "data/3f/3fa9beef");
        assert_eq!(pack.to_string(), "pack 3fa9beef");
        assert_eq!(Handle::config().path(), "config");
        assert_eq!(Handle::config().to_string(), "config");
        let expect = [
            (FileType::Key, "keys/k"),
            (FileType::Index, "index/k"),
            (FileType::Snapshot, "snapshots/k"),
            (FileType::Lock, "locks/k"),
        ];
        for (kind, path) in expect {
            assert_eq!(Handle::new(kind, "k").unwrap().path(), path);
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(FileType::ALL.len(), 6);
        let names: Vec<_> = FileType::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            ["config", "key", "pack", "index", "snapshot", "lock"]
        );
        assert_eq!(FileType::Snapshot.dir(), "snapshots");
    }
}
