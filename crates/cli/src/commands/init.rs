//! `vault init`

use vault_core::{ChunkerParams, Compression, InitOptions, KdfParams, Repository};

use crate::cli::InitArgs;
use crate::context::{hostname, now_rfc3339, username, Context};
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &InitArgs) -> Result<Outcome, CliError> {
    let backend = ctx.backend()?;
    let chunker = u32::try_from(args.chunk_size)
        .map_err(|_| CliError::usage("--chunk-size is too large"))
        .and_then(|c| ChunkerParams::from_average(c).map_err(CliError::usage))?;
    let zstd_level = match args.compression.as_str() {
        "off" | "none" => None,
        l => Some(
            l.parse::<i32>()
                .ok()
                .filter(|l| (-7..=22).contains(l))
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--compression `{l}`: use a zstd level from -7 to 22, or off"
                    ))
                })?,
        ),
    };
    let pack_size =
        u32::try_from(args.pack_size).map_err(|_| CliError::usage("--pack-size is too large"))?;
    // Documented for test suites only: argon2id at 256 KiB / 1 pass.
    let kdf = if std::env::var_os("VAULT_INSECURE_TEST_KDF").is_some_and(|v| v == "1") {
        KdfParams::insecure_for_tests()
    } else {
        KdfParams::default()
    };
    let password = ctx.password(true)?;
    let opts = InitOptions {
        chunker,
        compression: Compression { zstd_level },
        pack_size,
        delta: !args.no_delta,
        kdf,
        hostname: hostname(),
        username: username(),
        time: now_rfc3339(),
    };
    let config = Repository::init(backend.clone(), &password, &opts)?;
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "init", "id": config.id, "location": backend.location(), "chunker": config.chunker, "pack_size": config.pack_size, "delta": config.delta})
        );
    } else if !ctx.global.quiet {
        println!(
            "created repository {} at {} (chunks {}..{}..{} bytes, delta compression {})",
            &config.id[..8],
            backend.location(),
            config.chunker.min_size,
            config.chunker.avg_size,
            config.chunker.max_size,
            if config.delta { "on" } else { "off" }
        );
        println!("keep the password safe: without it the data cannot be recovered");
    }
    Ok(Outcome::Success)
}
