//! `kindling export`: a finished run's model written again as ONNX (`model.onnx`) or for
//! PyTorch (`model.pytorch.safetensors`, `model.pytorch.json`, `model.check.safetensors`).
//!
//! The run is reopened (`kindling_pipeline::reopen`: its data and model stages from its own
//! `config.yaml`, with the weights from its `model.safetensors`) and the export is
//! `kindling_train::export_run`, the code the train stage writes them with, so the files are
//! those the run wrote, byte for byte.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kindling_core::Registry;
use kindling_pipeline::Overrides;
use kindling_train::ExportFormat;

/// Which export to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `model.onnx` (opset 17; class names, input shape and preprocessing in its metadata).
    Onnx,
    /// `model.pytorch.safetensors` (the state dict of the equivalent `torch.nn.Sequential`),
    /// `model.pytorch.json` (its layers) and `model.check.safetensors` (inputs and outputs).
    Pytorch,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 when the export was written; 2 for bad arguments (an unknown \
format, a run that cannot be reopened); 1 when the export could not be written.")]
pub(crate) struct ExportArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`), with its config.yaml and model.safetensors.
    run: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    format: Format,
    /// For onnx, the file to write (default: RUN/model.onnx); for pytorch, the folder to write
    /// the three files into (default: RUN).
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
}

pub(crate) fn run(registry: &Registry, a: ExportArgs) -> Result<ExitCode> {
    let artifacts = match kindling_pipeline::reopen(&a.run, registry, &Overrides::default()) {
        Ok(artifacts) => artifacts,
        Err(e) => {
            eprintln!("error: {}: cannot reopen the run: {e}", a.run.display());
            return Ok(ExitCode::from(2));
        }
    };
    let format = match a.format {
        Format::Onnx => ExportFormat::Onnx,
        Format::Pytorch => ExportFormat::Pytorch,
    };
    for path in kindling_train::export_run(artifacts, &a.run, format, a.output.as_deref())? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
