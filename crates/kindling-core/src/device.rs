//! The device a pipeline asks for, before any backend is touched.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where tensors live: chosen in the pipeline (`device:`) or with `--device`. Resolving it to a
/// real device is the training crate's job; this crate only carries the choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// A hardware GPU through wgpu when one exists, else the CPU.
    #[default]
    Auto,
    /// burn's `flex` CPU backend.
    Cpu,
    /// wgpu, including software adapters; an error when no adapter exists.
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            other => Err(format!("unknown device `{other}` (expected auto, cpu or wgpu)")),
        }
    }
}

/// Lines a stage wants in the end-of-run summary (`test accuracy` -> `85.3%`), in order.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Label and value of each line.
    pub lines: Vec<(String, String)>,
}

impl Summary {
    /// Adds a line.
    pub fn push(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.lines.push((label.into(), value.into()));
    }
}
