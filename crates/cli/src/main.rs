fn main() -> std::process::ExitCode {
    vault_cli::main()
}
