//! The `wasmgate` binary: a thin shell over the library.

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
