//! [`open_url`]: turn a repository location given by a user into a backend.
//!
//! Accepted forms:
//!
//! * a plain path, relative or absolute: `/srv/backup`, `repo`, `C:\backup`;
//! * `file://` followed by a path: `file:///srv/backup` (absolute) or
//!   `file://repo` (relative; the prefix is simply stripped);
//! * `s3://bucket/prefix` (S3 and S3-compatible stores), and, untested,
//!   `gs://bucket/prefix` and `az://container/prefix` (see [`crate::cloud`]).
//!
//! Anything else that looks like `scheme://...` is rejected rather than taken
//! as a relative directory name, so a typo such as `s4://bucket` does not
//! silently create a local directory called `s4:`.

use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Result, StoreError, StoreErrorKind};
use crate::local::LocalDir;

/// Open the repository at `url` (see the [module docs](self) for the forms).
///
/// Errors: [`StoreErrorKind::InvalidName`] for an empty location,
/// [`StoreErrorKind::Unsupported`] for cloud or unknown URL schemes. Nothing
/// is touched on disk; call [`Backend::init_layout`] to create a repository.
pub fn open_url(url: &str) -> Result<Arc<dyn Backend>> {
    if url.is_empty() {
        return Err(StoreError::new(
            StoreErrorKind::InvalidName,
            "the repository location is empty: use a path, file:///path or s3://bucket/prefix",
        ));
    }
    let Some((scheme, rest)) = split_scheme(url) else {
        return Ok(Arc::new(LocalDir::new(url)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" if rest.is_empty() => Err(StoreError::new(
            StoreErrorKind::InvalidName,
            format!("the repository URL `{url}` has no path: use file:///absolute/path"),
        )),
        "file" => Ok(Arc::new(LocalDir::new(rest))),
        // object_store retries HTTP failures itself; this adds retries of
        // anything else marked transient.
        #[cfg(feature = "cloud")]
        "s3" | "gs" | "az" => Ok(Arc::new(crate::retry::RetryBackend::new(
            crate::cloud::CloudBackend::from_url(url)?,
        ))),
        #[cfg(not(feature = "cloud"))]
        "s3" | "gs" | "az" => Err(StoreError::new(
            StoreErrorKind::Unsupported,
            "object stores need vault-store's `cloud` feature, which this build lacks",
        )),
        _ => Err(StoreError::new(
            StoreErrorKind::Unsupported,
            format!(
                "unknown repository URL scheme `{scheme}`: \
                 use a path, file:///path or s3://bucket/prefix"
            ),
        )),
    }
}

/// `Some((scheme, rest))` if `url` starts with a URL scheme (RFC 3986: a
/// letter, then letters, digits, `+`, `-` or `.`) followed by `://`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(url: &str) -> StoreErrorKind {
        open_url(url).unwrap_err().kind()
    }

    #[test]
    fn paths() {
        assert_eq!(open_url("/srv/backup").unwrap().location(), "/srv/backup");
        assert_eq!(open_url("repo").unwrap().location(), "repo");
        assert_eq!(open_url("./a/b").unwrap().location(), "./a/b");
        // Not a scheme: contains '/' before "://".
        assert_eq!(open_url("./x://y").unwrap().location(), "./x://y");
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            open_url("file:///srv/backup").unwrap().location(),
            "/srv/backup"
        );
        assert_eq!(open_url("file://repo").unwrap().location(), "repo");
        assert_eq!(open_url("FILE:///x").unwrap().location(), "/x");
        assert_eq!(kind_of("file://"), StoreErrorKind::InvalidName);
    }

    #[test]
    fn cloud_and_unknown_schemes() {
        let s3 = open_url("s3://bucket/some/prefix/").unwrap();
        assert_eq!(s3.location(), "s3://bucket/some/prefix");
        assert_eq!(kind_of("s3://"), StoreErrorKind::InvalidName);

        let err = open_url("s4://bucket").unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unsupported);
        assert!(
            err.to_string()
                .contains("unknown repository URL scheme `s4`"),
            "{err}"
        );
    }

    #[test]
    fn empty() {
        assert_eq!(kind_of(""), StoreErrorKind::InvalidName);
    }
}
