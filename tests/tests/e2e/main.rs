//! End-to-end tests: the real `vault` binary driven as a user would, on
//! repositories in temporary directories.

mod dedup;
mod errors;
mod realdata;
mod roundtrip;

use vault_tests::Harness;

/// A harness for the binary built with this test.
pub fn harness() -> Harness {
    Harness::new(env!("CARGO_BIN_EXE_vault-under-test"))
}

/// A harness with an initialised repository; `chunk` sets `--chunk-size`.
pub fn repo(chunk: Option<&str>) -> Harness {
    let h = harness();
    match chunk {
        Some(c) => h.init(&["--chunk-size", c]),
        None => h.init(&[]),
    }
    h
}
