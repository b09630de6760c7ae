//! The `sluice` command: a thin wrapper around [`sluice_host::cli`].

fn main() -> std::process::ExitCode {
    sluice_host::cli::main()
}
