//! `kindling-custom`: the `kindling` command with every stage Kindling ships plus this crate's
//! `csv_dataset`. Argument parsing, validation, runs, sweeps and reports are all
//! `kindling-cli`'s; this file only chooses the plugins.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut plugins = kindling_cli::default_plugins();
    plugins.push(kindling_example_custom_stage::plugin());
    kindling_cli::main_with(plugins)
}
