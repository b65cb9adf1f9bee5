//! Runs every committed corpus file through its target on stable Rust:
//! `cd fuzz && cargo test`. A failure names the file; reproduce it with
//! `cargo fuzz run <target> corpus/<target>/<file>` or by calling
//! `vault_fuzz::<target>` on its bytes.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use vault_fuzz::{seeds, Target, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Runs `f` on `data`, returning the panic message if it panicked.
fn run(f: Target, data: &[u8]) -> Option<String> {
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(data)));
    r.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

#[test]
fn every_corpus_file_passes_its_target() {
    let mut failures = Vec::new();
    for (target, f) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no seeds", dir.display());
        for path in &files {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(msg) = run(*f, &data) {
                failures.push(format!("{target}: {}: {msg}", path.display()));
            }
        }
        eprintln!("{target}: {} corpus files", files.len());
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for (target, _) in TARGETS {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz_targets")
            .join(format!("{target}.rs"));
        assert!(p.is_file(), "{} is missing", p.display());
    }
}

#[test]
fn generated_seeds_pass_their_targets() {
    for (target, name, data) in seeds::all() {
        let f = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .expect("known target")
            .1;
        assert_eq!(run(f, &data), None, "{target}/seed-{name}");
    }
}

#[test]
fn edge_inputs_pass_every_target() {
    let inputs: [&[u8]; 5] = [b"", b"\0", &[0xff; 64], &[0; 4096], b"{\"nodes\":[]}"];
    for (target, f) in TARGETS {
        for data in inputs {
            assert_eq!(run(*f, data), None, "{target} on {} bytes", data.len());
        }
    }
}

/// Sealed seeds only exercise the decoders if every process derives the same keys.
#[test]
fn fixed_keys_are_deterministic_and_open_committed_seeds() {
    assert!(
        vault_fuzz::keys_are_deterministic(),
        "fixed_key_file no longer unlocks: check KEY_AD in repository.rs"
    );
    let k = vault_fuzz::keys();
    let pack = std::fs::read(corpus_dir("pack_header").join("seed-valid-3-blobs"))
        .expect("committed pack seed");
    let entries = vault_core::pack::parse_pack(k, &vault_core::PackId([0; 32]), &pack)
        .expect("committed pack seed parses");
    assert_eq!(entries.len(), 3);
    let index = std::fs::read(corpus_dir("index_decode").join("seed-sealed-2-packs"))
        .expect("committed index seed");
    let file = vault_core::index::IndexFile::open(k, &vault_core::IndexId([0; 32]), &index)
        .expect("committed index seed opens");
    assert_eq!(file.blob_count(), 3);
    let key =
        std::fs::read(corpus_dir("key_decode").join("seed-fixed")).expect("committed key seed");
    let key =
        vault_core::repository::KeyFile::decode("seed", &key).expect("committed key seed decodes");
    assert!(key.unlock(vault_fuzz::FIXED_PASSWORD).is_some());
}
