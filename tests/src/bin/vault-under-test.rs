//! The `vault` binary, built in the test package so its tests can run it.
fn main() -> std::process::ExitCode {
    vault_cli::main()
}
