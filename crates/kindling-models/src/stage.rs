//! The `model` stage: a preset or a layer list -> an initialised [`Model`] on the run's device.

use burn::store::{ModuleSnapshot, SafetensorsStore};
use kindling_core::{
    Artifact, DataSpec, Dataset, DeviceChoice, Issues, KeyRole, PlanCx, Stage, StageConfig, StageDef, StageError,
    StageIo, derive_seed, rng_from_seed,
};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::{ResolvedDevice, resolve};
use crate::infer::{LayerInfo, Shape, fits_in_memory, infer};
use crate::init::InitConfig;
use crate::net::Sequential;
use crate::presets::{PRESETS, preset};
use crate::spec::{DropoutSpec, LayerSpec, check_layers};

/// Configuration of `model`: a named preset or an explicit layer list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A preset sized to the data (see [`crate::PRESETS`]); its last layer gets one output per
    /// class.
    #[schemars(schema_with = "preset_schema")]
    pub preset: Option<String>,
    /// Layers in order, e.g. `[{conv2d: {out_channels: 16, kernel_size: 3}}, relu, flatten, ...]`.
    pub layers: Option<Vec<LayerSpec>>,
    /// Initialisers per parameter kind: `{conv: xavier_uniform, linear: kaiming_normal, bias:
    /// zeros}`; PyTorch's defaults for kinds not named.
    pub init: InitConfig,
    /// Start from these weights (a run's `model.safetensors`) instead of the initialisers:
    /// fine-tuning, or evaluating a trained model. The layers must match.
    pub weights: Option<String>,
    /// Sets `p` of every `dropout` and `dropout2d` layer (of the preset or the list), so one
    /// key sweeps a preset's dropout; the seed's `keep_prob` is `1 - dropout`.
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub dropout: Option<f64>,
}

/// The JSON Schema of `preset`: one of [`PRESETS`], or absent.
fn preset_schema(_: &mut SchemaGenerator) -> Schema {
    let mut names: Vec<Value> = PRESETS.iter().map(|&p| Value::from(p)).collect();
    names.push(Value::Null);
    json_schema!({"type": ["string", "null"], "enum": names})
}

impl StageConfig for ModelConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        (
            "preset",
            "named architecture sized to the data: mnist_cnn, mnist_cnn_bn, mnist_cnn_dropout2d, vgg3, stereo_cnn, \
             mlp, dropout_mlp, bn_mlp, lenet5, lenet5_bn, direction_cnn",
        ),
        (
            "layers",
            "explicit layer list: conv2d, batchnorm, maxpool2d, avgpool2d, adaptive_avg_pool2d, dropout, dropout2d, \
             flatten, linear, relu, leaky_relu, elu, gelu, tanh, sigmoid, softmax, log_softmax",
        ),
        (
            "init",
            "initialisers {conv, linear, bias}: default, xavier_uniform, xavier_normal, kaiming_uniform, \
             kaiming_normal, normal, uniform, constant, zeros",
        ),
        ("weights", "start from these weights (a run's model.safetensors) instead of the initialisers"),
        ("dropout", "set p of every dropout and dropout2d layer (keep_prob = 1 - p)"),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.at("init", |nested| self.init.check(nested));
        if let Some(p) = self.dropout
            && !(0.0..1.0).contains(&p)
        {
            issues.push("dropout", format!("must be in [0, 1), got {p}"));
        }
        if let Some(layers) = &self.layers {
            issues.at("layers", |nested| check_layers(layers, nested));
        }
        match (&self.preset, &self.layers) {
            (Some(_), Some(_)) => issues.push("layers", "give either a preset or layers, not both"),
            (None, None) => issues.push("", "give a `preset` or a list of `layers`"),
            (Some(p), None) if !PRESETS.contains(&p.as_str()) => {
                let hint = kindling_core::closest(p, PRESETS.iter().copied()).map_or_else(
                    || format!("known presets: {}", PRESETS.join(", ")),
                    |b| format!("did you mean `{b}`?"),
                );
                issues.push_issue(
                    kindling_core::ConfigIssue::new("preset", format!("unknown preset `{p}`")).with_help(hint),
                );
            }
            (None, Some(l)) if l.is_empty() => issues.push("layers", "the layer list is empty"),
            _ => {}
        }
    }
}

/// A built model and what is known about it.
#[derive(Debug)]
pub struct Model {
    /// The network.
    pub net: Sequential,
    /// Its layers as configured.
    pub layers: Vec<LayerSpec>,
    /// Inferred shapes and parameter counts, one per layer.
    pub infos: Vec<LayerInfo>,
}

/// The model's layer table as validation infers it, recorded as a plan fact.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    /// Shape of one input sample.
    pub input: Shape,
    /// The layers.
    pub layers: Vec<LayerSpec>,
    /// Output shape and parameters of each layer.
    pub infos: Vec<LayerInfo>,
}

impl ModelSummary {
    /// A table of the layers, their output shapes and parameter counts, with the total.
    pub fn table(&self) -> String {
        let mut out = format!("{:<4} {:<36} {:>14} {:>12}\n", "#", "layer", "output", "parameters");
        out += &format!("{:<4} {:<36} {:>14} {:>12}\n", "", "input", self.input.to_string(), "");
        for (i, (layer, info)) in self.layers.iter().zip(&self.infos).enumerate() {
            out += &format!("{i:<4} {:<36} {:>14} {:>12}\n", layer.to_string(), info.output.to_string(), info.params);
        }
        let total: usize = self.infos.iter().map(|i| i.params).sum();
        out += &format!("{:<4} {:<36} {:>14} {total:>12}\n", "", "total", "");
        out
    }
}

impl Artifact for Model {
    const KIND: &'static str = "model";
}

impl Artifact for ResolvedDevice {
    const KIND: &'static str = "device";
}

pub(crate) fn model() -> StageDef {
    StageDef::new::<ModelConfig>(
        "model",
        "build a CNN from a preset or a layer list, shapes checked against the data, on the run's device",
        &["dataset"],
        &["model"],
        |config| Box::new(ModelStage { config }),
    )
    .with_roles(&[(KeyRole::Weights, "weights")])
}

struct ModelStage {
    config: ModelConfig,
}

impl ModelStage {
    /// The layers and their shapes for data of `spec`, or the problems, with paths relative to
    /// the stage's `with:` block.
    fn resolve(&self, spec: &DataSpec) -> Result<(Vec<LayerSpec>, Vec<LayerInfo>), Issues> {
        let mut issues = Issues::default();
        let (layers, at) = match (&self.config.preset, &self.config.layers) {
            (Some(p), _) => (preset(p, spec.classes).unwrap_or_default(), "preset"),
            (None, Some(l)) => (l.clone(), "layers"),
            (None, None) => (Vec::new(), "layers"),
        };
        let has_dropout =
            |layers: &[LayerSpec]| layers.iter().any(|l| matches!(l, LayerSpec::Dropout(_) | LayerSpec::Dropout2d(_)));
        if self.config.dropout.is_some() && !layers.is_empty() && !has_dropout(&layers) {
            // A sweep over it would make trials that differ only in name.
            let with: Vec<&str> =
                PRESETS.iter().copied().filter(|p| preset(p, spec.classes).is_some_and(|l| has_dropout(&l))).collect();
            let what = self.config.preset.as_ref().map_or_else(|| "the layer list".to_owned(), |p| format!("`{p}`"));
            issues.push_issue(
                kindling_core::ConfigIssue::new(
                    "dropout",
                    format!("{what} has no dropout layer, so `dropout` would change nothing"),
                )
                .with_help(format!("presets with dropout layers: {}", with.join(", "))),
            );
            return Err(issues);
        }
        let layers = match self.config.dropout {
            Some(p) => layers
                .into_iter()
                .map(|l| match l {
                    LayerSpec::Dropout(_) => LayerSpec::Dropout(DropoutSpec { p }),
                    LayerSpec::Dropout2d(_) => LayerSpec::Dropout2d(DropoutSpec { p }),
                    other => other,
                })
                .collect(),
            None => layers,
        };
        let Some(input) = Shape::from_dims(&spec.shape) else {
            issues.push("", format!("samples of shape {:?} are neither images [c, h, w] nor flat [n]", spec.shape));
            return Err(issues);
        };
        match infer(&layers, &input) {
            Ok(infos) => {
                let out = infos.last().map(|i| i.output.clone());
                if out != Some(Shape::Flat(spec.classes)) {
                    let shown = out.map_or_else(|| "nothing".to_owned(), |o| o.to_string());
                    let at = if at == "layers" {
                        format!("layers[{}]", layers.len().saturating_sub(1))
                    } else {
                        at.to_owned()
                    };
                    issues.push(
                        &at,
                        format!("the last layer gives {shown} outputs, the data has {} classes", spec.classes),
                    );
                    return Err(issues);
                }
                Ok((layers, infos))
            }
            Err(errors) => {
                for e in errors {
                    let path = if at == "layers" { format!("layers[{}]", e.layer) } else { at.to_owned() };
                    issues.push(&path, e.message);
                }
                Err(issues)
            }
        }
    }
}

impl Stage for ModelStage {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        if let Some(weights) = &self.config.weights {
            let path = cx.base_dir.join(weights);
            if !path.is_file() {
                cx.issues.push("weights", format!("{}: no such file", path.display()));
            }
        }
        let Some(spec) = cx.facts.get::<DataSpec>() else { return };
        match self.resolve(spec) {
            Ok((layers, infos)) => {
                let input = Shape::from_dims(&spec.shape).unwrap_or(Shape::Flat(0));
                // The weights alone (a batch of one): the train stage checks its batch size.
                if let Err(e) = fits_in_memory(&input, &infos, 1) {
                    let at = if self.config.preset.is_some() { "preset" } else { "layers" };
                    cx.issues.push(at, e);
                }
                cx.facts.insert(ModelSummary { input, layers, infos });
            }
            Err(found) => {
                for issue in found.into_vec() {
                    cx.issues.push_issue(issue);
                }
            }
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let data = io.artifacts.get::<Dataset>().ok_or(StageError::MissingArtifact(Dataset::KIND))?;
        let spec = DataSpec { shape: data.shape.clone(), classes: data.classes.len() };
        let (layers, infos) = self.resolve(&spec).map_err(|issues| {
            let text: Vec<String> = issues.into_vec().iter().map(ToString::to_string).collect();
            StageError::Stopped(format!("the model does not fit the data: {}", text.join("; ")))
        })?;
        // Checked again here: the data's shape was only a plan fact before it was loaded.
        let input = Shape::from_dims(&spec.shape).unwrap_or(Shape::Flat(0));
        fits_in_memory(&input, &infos, 1).map_err(StageError::Stopped)?;
        let choice = io.artifacts.get::<DeviceChoice>().copied().unwrap_or_default();
        let resolved = resolve(choice).map_err(StageError::domain)?;
        // burn's own generator still drives dropout masks; seed it too.
        resolved.device.seed(derive_seed(io.seed, "device"));
        let mut net =
            Sequential::new(&layers, &infos, &self.config.init, &mut rng_from_seed(io.seed, "init"), &resolved.device);
        if let Some(weights) = &self.config.weights {
            let path = io.base_dir.join(weights);
            let fail = |why: String| StageError::Stopped(format!("{}: cannot load the weights: {why}", path.display()));
            let result = net.load_from(&mut SafetensorsStore::from_file(&path)).map_err(|e| fail(e.to_string()))?;
            if !result.is_success() || !result.missing.is_empty() {
                let missing: Vec<&str> = result.missing.iter().map(|(name, _)| name.as_str()).collect();
                return Err(fail(format!(
                    "they do not match this model (missing: {}; errors: {})",
                    if missing.is_empty() { "none".to_owned() } else { missing.join(", ") },
                    result.errors.len()
                )));
            }
            eprintln!("model: weights loaded from {}", path.display());
        }
        let params: usize = infos.iter().map(|i| i.params).sum();
        eprintln!("model: {} layers, {params} parameters, on {}", layers.len(), resolved.description);
        let layers_json = serde_json::to_value(&layers).map_err(StageError::domain)?;
        io.artifacts.insert(kindling_core::ModelDescription { input: spec.shape.clone(), layers: layers_json });
        io.artifacts.insert(Model { net, layers, infos });
        io.artifacts.insert(resolved);
        Ok(())
    }
}
