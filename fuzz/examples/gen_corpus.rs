//! Writes the seed corpus: `cargo run --example gen_corpus` (in `fuzz/`).
//!
//! Overwrites `corpus/<target>/seed-*` with [`vault_fuzz::seeds::all`]; other
//! corpus files are left alone.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, name, bytes) in vault_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), &bytes)?;
        println!("corpus/{target}/seed-{name}: {} bytes", bytes.len());
    }
    Ok(())
}
