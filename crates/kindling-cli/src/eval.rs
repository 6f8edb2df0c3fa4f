//! `kindling eval` and `kindling predict`: a finished run's model on other data.
//!
//! Both rebuild the run from its own `config.yaml` (the data and model stages, with the
//! model's weights taken from the run's `model.safetensors`), so a sample goes through exactly
//! the decoding, features and evaluation transforms the run's validation saw.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use kindling_augment::{Pipeline, rng_for, to_tensor};
use kindling_core::{Dataset, Registry};
use kindling_models::Model;
use kindling_models::device::ResolvedDevice;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Evaluate on this folder of class folders or `path,label` CSV instead of the run's test
    /// split (image-folder and audio runs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Overrides of the run's configuration (`idx_dataset.test_images=...`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Image files (for image runs) or WAV files (for audio runs).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How many classes to print per file, most probable first.
    #[arg(long, default_value_t = 3)]
    top: usize,
}

/// The run's plan with its weights, and the data and model its stages build.
fn restore(registry: &Registry, run: &Path, mut set: Vec<String>) -> Result<(Dataset, Model, ResolvedDevice, String)> {
    let config = run.join("config.yaml");
    let weights = run.join("model.safetensors");
    for f in [&config, &weights] {
        if !f.is_file() {
            bail!("{}: missing; give the directory of a finished run", f.display());
        }
    }
    let weights = weights.canonicalize().with_context(|| weights.display().to_string())?;
    set.push(format!("model.weights={}", weights.display()));
    let plan = kindling_pipeline::load(&config, registry, &set).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_kind = plan.stages.first().map(|s| s.kind.clone()).unwrap_or_default();
    let mut artifacts = kindling_pipeline::prepare(plan)?;
    let data = artifacts.take::<Dataset>().context("the run's pipeline builds no data set")?;
    let model = artifacts.take::<Model>().context("the run's pipeline builds no model")?;
    let device = artifacts.take::<ResolvedDevice>().context("no device")?;
    Ok((data, model, device, data_kind))
}

pub(crate) fn eval(registry: &Registry, a: EvalArgs) -> Result<ExitCode> {
    let mut set = a.set.clone();
    let kind = first_stage_kind(&a.run)?;
    let mut split_name = "test";
    if let Some(data) = &a.data {
        let data = data.canonicalize().with_context(|| format!("{}: no such file or folder", data.display()))?;
        let csv = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let key = match (kind.as_str(), csv) {
            ("image_dataset", false) => "image_dataset.test_root",
            ("image_dataset", true) => "image_dataset.test_manifest",
            ("audio_dataset", false) => "audio_dataset.valid_root",
            ("audio_dataset", true) => "audio_dataset.valid_manifest",
            (other, _) => bail!(
                "--data works for image_dataset and audio_dataset runs; this run's data stage is `{other}` (use --set)"
            ),
        };
        if kind == "audio_dataset" {
            split_name = "valid";
        }
        set.push(format!("{key}={}", data.display()));
    }
    let (data, model, device, _) = restore(registry, &a.run, set)?;
    let split = match split_name {
        "test" => data.test.as_ref().or(Some(&data.valid)).filter(|s| !s.is_empty()),
        _ => Some(&data.valid),
    }
    .context("the run's data has no test or validation split to evaluate")?;
    let shape: [usize; 3] = data.shape.as_slice().try_into().context("samples are not [c, h, w]")?;
    let plain = device.device.clone().inner();
    let net = model.net.valid();
    let (metrics, confusion) = kindling_train::evaluate(
        &net,
        split,
        shape,
        data.classes.len(),
        a.batch_size,
        &CrossEntropyLossConfig::new(),
        &plain,
    )?;
    println!(
        "{}: {} samples, accuracy {:.2}%, loss {:.4}",
        a.run.display(),
        split.len(),
        100.0 * metrics.accuracy,
        metrics.loss
    );
    let report = confusion.report();
    println!("{:<16} {:>9} {:>7} {:>7} {:>8}", "class", "precision", "recall", "f1", "support");
    for (name, m) in data.classes.iter().zip(&report.classes) {
        println!("{name:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", m.precision, m.recall, m.f1, m.support);
    }
    let w = &report.weighted_avg;
    println!("{:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", "weighted avg", w.precision, w.recall, w.f1, w.support);
    println!("\nconfusion matrix (rows: true class):\n{}", confusion.to_csv(&data.classes));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn predict(registry: &Registry, a: PredictArgs) -> Result<ExitCode> {
    let config = load_config(&a.run)?;
    let (data, model, device, kind) = restore(registry, &a.run, Vec::new())?;
    let shape: [usize; 3] = data.shape.as_slice().try_into().context("samples are not [c, h, w]")?;
    let with = config.get("stages").and_then(|s| s.get(0)).and_then(|s| s.get("with")).cloned().unwrap_or_default();
    let samples = match kind.as_str() {
        "image_dataset" | "idx_dataset" | "cifar_dataset" => image_samples(&a.files, &with, shape)?,
        "audio_dataset" => audio_samples(&a.files, &with, &a.run, shape)?,
        other => bail!("predict does not know the inputs of a `{other}` run"),
    };
    let per: usize = shape.iter().product();
    let plain = device.device.clone().inner();
    let net = model.net.valid();
    let n = a.files.len();
    let x = Tensor::<4>::from_data(TensorData::new(samples, [n, shape[0], shape[1], shape[2]]), &plain);
    debug_assert_eq!(per * n, x.shape().num_elements());
    let probs = burn::tensor::activation::softmax(net.forward(x), 1).into_data();
    let probs: Vec<f32> = probs.iter::<f32>().collect();
    let classes = data.classes.len();
    for (file, p) in a.files.iter().zip(probs.chunks(classes)) {
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
        let top: Vec<String> =
            order.iter().take(a.top.max(1)).map(|&c| format!("{} {:.3}", data.classes[c], p[c])).collect();
        println!("{}\t{}", file.display(), top.join("\t"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's `config.yaml` as a value.
fn load_config(run: &Path) -> Result<serde_json::Value> {
    let path = run.join("config.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{}: not YAML", path.display()))
}

fn first_stage_kind(run: &Path) -> Result<String> {
    let config = load_config(run)?;
    Ok(config["stages"][0]["stage"].as_str().unwrap_or_default().to_owned())
}

/// Image files decoded to the run's channels and passed through its evaluation transforms
/// (for IDX runs, its `normalize`).
fn image_samples(files: &[PathBuf], with: &serde_json::Value, shape: [usize; 3]) -> Result<Vec<f32>> {
    let mut pipeline: Pipeline =
        serde_json::from_value(with.get("transforms").cloned().unwrap_or(serde_json::json!([])))?;
    if let Some(n) = with.get("normalize").filter(|n| !n.is_null()) {
        let step = serde_json::json!([{ "normalize": n }]);
        let normalize: Pipeline = serde_json::from_value(step)?;
        pipeline.steps.extend(normalize.steps);
    }
    let mut out = Vec::with_capacity(files.len() * shape.iter().product::<usize>());
    for (i, file) in files.iter().enumerate() {
        let px = kindling_vision::decode_file(file, shape[0])?;
        let image = to_tensor(&px.data, px.height, px.width, px.channels);
        let image = pipeline.try_apply(image, false, &mut rng_for(0, 0, i))?;
        let got = [image.channels, image.height, image.width];
        if got != shape {
            bail!("{}: is {got:?} after the run's transforms; the model takes {shape:?}", file.display());
        }
        out.extend_from_slice(&image.data);
    }
    Ok(out)
}

/// WAV files through the run's feature extraction (and its fitted statistics, when it fitted
/// some).
fn audio_samples(files: &[PathBuf], with: &serde_json::Value, run: &Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    let config: kindling_audio::FeatureConfig =
        serde_json::from_value(with.get("features").cloned().unwrap_or_default())?;
    let extractor = kindling_audio::FeatureExtractor::new(config)?;
    let stats = run.join("norm_stats.json");
    let stats: Option<kindling_audio::NormStats> = if stats.is_file() {
        Some(serde_json::from_str(&std::fs::read_to_string(&stats)?).with_context(|| stats.display().to_string())?)
    } else {
        None
    };
    let mut out = Vec::new();
    for file in files {
        let mut f = extractor.from_path(file)?;
        if let Some(s) = &stats {
            s.apply(&mut f)?;
        }
        if f.shape() != shape {
            bail!("{}: features are {:?}; the model takes {shape:?}", file.display(), f.shape());
        }
        out.extend_from_slice(&f.data);
    }
    Ok(out)
}
