//! The `kindling` binary: the command of `kindling-cli` with every plugin Kindling ships.

use std::process::ExitCode;

/// burn's CPU backend allocates a fresh buffer per tile, task and result; with mimalloc that
/// churn costs less: training +10% on `mnist_cnn` (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kindling_cli::main_with(kindling_cli::default_plugins())
}
