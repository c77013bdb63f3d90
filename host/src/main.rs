//! The `wasmgate` binary: a thin shell over the library.

/// mimalloc instead of glibc's malloc: under load, glibc's arenas showed as ~12% of the
/// gateway's CPU (`_int_malloc`, `_int_free`, `malloc_consolidate`) plus lock contention
/// (`__lll_lock_wake_private`); mimalloc's thread-local free lists avoid both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
