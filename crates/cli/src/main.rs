//! The `vault` binary: see `vault --help`.

fn main() -> std::process::ExitCode {
    vault_cli::main()
}
