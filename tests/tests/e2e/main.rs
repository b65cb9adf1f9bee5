//! End-to-end tests: the real `vault` binary driven as a user would, on
//! repositories in temporary directories and on a private S3 server.

use vault_tests::{Harness, Store};

/// Runs one test body against a local repository and against S3 (one
/// suite, two backends): `both!(name, |store| { ... })`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn local() {
                let f: fn(vault_tests::Store) = $body;
                f(vault_tests::Store::Local)
            }
            #[test]
            fn s3() {
                let f: fn(vault_tests::Store) = $body;
                f(vault_tests::Store::S3)
            }
        }
    };
}

mod copy;
mod crash;
mod dedup;
mod delta;
mod drill;
mod errors;
mod forget;
mod inspect;
mod keys;
mod operator;
mod profiles;
mod realdata;
mod resources;
mod roundtrip;

/// A harness for the binary built with this test, on a local repository.
pub fn harness() -> Harness {
    harness_on(Store::Local)
}

/// A harness whose repository lives in `store`.
pub fn harness_on(store: Store) -> Harness {
    Harness::with_store(env!("CARGO_BIN_EXE_vault-under-test"), store)
}

/// A local harness with an initialised repository; `chunk` sets `--chunk-size`.
pub fn repo(chunk: Option<&str>) -> Harness {
    repo_on(Store::Local, chunk)
}

/// An initialised repository in `store`.
pub fn repo_on(store: Store, chunk: Option<&str>) -> Harness {
    let h = harness_on(store);
    match chunk {
        Some(c) => h.init(&["--chunk-size", c]),
        None => h.init(&[]),
    }
    h
}
