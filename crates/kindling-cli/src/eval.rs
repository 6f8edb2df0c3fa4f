//! `kindling eval` and `kindling predict`: a finished run's model on other data.
//!
//! A run with a model package (`model.json` beside `model.safetensors`) is opened from those two
//! files alone: `predict` and `eval --data` need neither its configuration nor its training
//! data. A run without one (made before runs were packaged), `eval` on the run's own test
//! split and `--set` reopen the run (`kindling_pipeline::reopen`: its data and model stages
//! from its own `config.yaml`, with the weights from its `model.safetensors`). Either way a
//! sample goes through exactly the decoding, features and evaluation transforms the run's
//! validation saw; the inference itself is `kindling_train::infer`. This module parses and
//! prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use kindling_core::{DeviceChoice, KeyRole, LabelledFiles, PACKAGE_FILE, Package, Registry};
use kindling_pipeline::Overrides;
use kindling_train::infer::{Prediction, Predictor};

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Evaluate on this folder of class folders or `path,label` CSV instead of the run's test
    /// split (any run with a `model.json`; older runs: image-folder and audio runs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Overrides of the run's configuration (`idx_dataset.test_images=...`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Device: auto (a GPU through wgpu when one exists, else CPU), cpu or wgpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// How `kindling predict` writes its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A line per file: the path, then `class probability` per class, tab-separated.
    Tsv,
    /// A header `path,class_1,probability_1,...`, then a row per file.
    Csv,
    /// An array of `{"path": ..., "predictions": [{"class": ..., "probability": ...}]}`.
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 when every file was predicted; 1 when some could not be read \
(each is named on stderr with the reason, and the others are still predicted and written); 2 for \
bad arguments (a run that cannot be reopened, a path that lists nothing, a malformed manifest).")]
pub(crate) struct PredictArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Files, folders (searched recursively for the files the run's data stage reads: images
    /// png/jpg/jpeg/bmp/gif/webp for image runs, wav for audio runs; sorted by path) and CSV
    /// manifests (a header naming a `path` column, other columns such as `label` ignored; paths
    /// relative to the CSV's folder).
    #[arg(required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    /// How many classes to write per file, most probable first.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Files per forward pass; each batch's files are decoded in parallel.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Tsv)]
    format: Format,
    /// Write to this file (atomically: complete or not at all) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Device: auto (a GPU through wgpu when one exists, else CPU), cpu or wgpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// The run in `run` with its data and model built again from its `config.yaml` with
/// `overrides`, on `device` (not the device the run trained on: inference may run elsewhere).
fn reopen(registry: &Registry, run: &Path, overrides: &Overrides, device: DeviceChoice) -> Result<Predictor> {
    let overrides = Overrides { device: Some(device), ..overrides.clone() };
    let artifacts = kindling_pipeline::reopen(run, registry, &overrides)?;
    Ok(Predictor::from_artifacts(artifacts, run)?)
}

/// The run's model package, or `None` (with a note on stderr) for a run made before runs were
/// packaged.
pub(crate) fn package(run: &Path) -> Result<Option<Package>> {
    let package = Package::read(run).map_err(|e| anyhow!(e))?;
    if package.is_none() && run.join("config.yaml").is_file() {
        eprintln!(
            "note: {}: no {PACKAGE_FILE} (a run made before runs were packaged, or whose data stage cannot \
             describe its input); rebuilding its data and model from config.yaml, which needs the data it \
             was trained on",
            run.display()
        );
    }
    Ok(package)
}

/// The model of the run in `run` from its package alone (`model.json` and its weights), on
/// `device`.
pub(crate) fn open_package(run: &Path, package: &Package, device: DeviceChoice) -> Result<Predictor> {
    let reader = match package.input_kind() {
        Some("image") => kindling_vision::image_reader(&package.input),
        Some("audio") => kindling_audio::audio_reader(&package.input),
        other => Err(format!("an input of kind {other:?}, which this kindling cannot read")),
    }
    .map_err(|e| anyhow!("{}: {e}", run.join(PACKAGE_FILE).display()))?;
    Ok(Predictor::from_package(run, package, reader, device)?)
}

/// The run in `run` on `device`: from its package when it has one, else reopened.
pub(crate) fn open(registry: &Registry, run: &Path, device: DeviceChoice) -> Result<Predictor> {
    match package(run)? {
        Some(p) => open_package(run, &p, device),
        None => reopen(registry, run, &Overrides::default(), device),
    }
}

/// The extensions of the files a package's input reads.
fn package_extensions(package: &Package) -> Vec<&'static str> {
    if package.input_kind() == Some("audio") { vec!["wav"] } else { kindling_vision::IMAGE_EXTENSIONS.to_vec() }
}

pub(crate) fn eval(registry: &Registry, a: EvalArgs) -> Result<ExitCode> {
    let mut overrides = Overrides::from_set(&a.set);
    let data = match &a.data {
        Some(data) => Some(data.canonicalize().with_context(|| format!("{}: no such file or folder", data.display()))?),
        None => None,
    };
    // `--data` on a packaged run reads the package alone; the run's own test split and `--set`
    // need its configuration and data.
    let packaged = match (&data, a.set.is_empty()) {
        (Some(data), true) => package(&a.run)?.map(|p| (p, data)),
        _ => None,
    };
    let (predictor, result) = if let Some((package, data)) = packaged {
        let predictor = open_package(&a.run, &package, a.device)?;
        let csv = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let listed = if csv {
            LabelledFiles::from_manifest(data)?
        } else {
            LabelledFiles::from_folder(data, &package_extensions(&package), false)?.0
        };
        let result = predictor.evaluate_files(&listed, a.batch_size)?;
        (predictor, result)
    } else {
        if let Some(data) = data {
            let csv = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let role = if csv { KeyRole::HeldOutManifest } else { KeyRole::HeldOutFolder };
            overrides.roles.push((role, data));
        }
        let predictor = reopen(registry, &a.run, &overrides, a.device)?;
        let result = predictor.evaluate(a.batch_size)?;
        (predictor, result)
    };
    let classes = predictor.classes();
    println!(
        "{}: {} samples, accuracy {:.2}%, loss {:.4}",
        a.run.display(),
        result.samples,
        100.0 * result.metrics.accuracy,
        result.metrics.loss
    );
    let report = result.confusion.report();
    println!("{:<16} {:>9} {:>7} {:>7} {:>8}", "class", "precision", "recall", "f1", "support");
    for (name, m) in classes.iter().zip(&report.classes) {
        println!("{name:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", m.precision, m.recall, m.f1, m.support);
    }
    let w = &report.weighted_avg;
    println!("{:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", "weighted avg", w.precision, w.recall, w.f1, w.support);
    println!("\nconfusion matrix (rows: true class):\n{}", result.confusion.to_csv(classes));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn predict(registry: &Registry, a: PredictArgs) -> Result<ExitCode> {
    let packaged = match Package::read(&a.run) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let opened = match &packaged {
        Some(p) => open_package(&a.run, p, a.device),
        None => open(registry, &a.run, a.device),
    };
    let predictor = match opened {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let extensions = packaged.as_ref().map_or_else(|| run_extensions(&a.run), package_extensions);
    let files = match list_inputs(&a.files, &extensions) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let top = a.top.max(1).min(predictor.classes().len());
    let mut out: Box<dyn Write> = match &a.output {
        Some(_) => Box::new(Vec::new()),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // The file, in memory when it goes to `--output`.
    let mut buffer = Vec::new();
    let sink: &mut dyn Write = if a.output.is_some() { &mut buffer } else { &mut *out };
    let mut writer = Writer { out: sink, format: a.format, top, written: 0 };
    writer.start()?;
    let mut failed = 0usize;
    let batch_size = usize::try_from(a.batch_size).unwrap_or(usize::MAX);
    for batch in predictor.predict_batches(&files, batch_size)? {
        for outcome in batch {
            match outcome {
                Ok(p) => writer.write(&p)?,
                Err(e) => {
                    failed += 1;
                    let message = e.to_string();
                    let named = e.file.display().to_string();
                    if message.contains(&named) {
                        eprintln!("error: {message}");
                    } else {
                        eprintln!("error: {named}: {message}");
                    }
                }
            }
        }
        writer.out.flush()?;
    }
    writer.finish()?;
    if let Some(path) = &a.output {
        kindling_core::write_atomic(path, &buffer).with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush()?;
    if failed > 0 {
        eprintln!("{failed} of {} file(s) could not be read; the others were predicted", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The extensions of the files the run's data stage reads: WAV for the audio stage, else
/// images.
fn run_extensions(run: &Path) -> Vec<&'static str> {
    let config = run.join("config.yaml");
    let audio = std::fs::read_to_string(&config)
        .ok()
        .and_then(|src| kindling_pipeline::compose(&config, &src).ok())
        .and_then(|c| c.doc.get("stages").and_then(|s| s.as_sequence()).cloned())
        .is_some_and(|stages| stages.iter().any(|s| s.get("stage").and_then(|k| k.as_str()) == Some("audio_dataset")));
    if audio { vec!["wav"] } else { kindling_vision::IMAGE_EXTENSIONS.to_vec() }
}

/// The files the paths name, in order: a file as it is (read or fail later, like any other),
/// a folder's files with `extensions` (recursively, sorted by path), a CSV manifest's `path`
/// column. A folder or manifest that lists nothing, or a manifest that cannot be parsed, is an
/// error: the arguments are wrong.
fn list_inputs(paths: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, extensions, &mut found).map_err(|e| format!("{}: {e}", path.display()))?;
            if found.is_empty() {
                let wanted = extensions.iter().map(|e| format!("*.{e}")).collect::<Vec<_>>().join(", ");
                return Err(format!("{}: a folder with no {wanted} files", path.display()));
            }
            found.sort();
            files.extend(found);
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) && path.is_file() {
            files.extend(manifest_paths(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Every file below `dir` whose extension is one of `extensions` (in any case); names starting
/// with `.` are skipped and symbolic links to folders are not followed, as data folders are
/// listed for training (`kindling_core::LabelledFiles`).
fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, extensions, out)?;
        } else if name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)))
        {
            // A dangling link is kept: reading it fails, and that is reported with the rest.
            out.push(path);
        }
    }
    Ok(())
}

/// The `path` column of a CSV manifest (as `kindling_core::LabelledFiles` reads manifests: a
/// header line, fields optionally double-quoted, paths relative to the CSV's folder; a
/// `label` or any other column is ignored). Listed files are not checked here: one that cannot
/// be read is reported when it is read, like any other.
fn manifest_paths(csv: &Path) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let base = csv.parent().unwrap_or(Path::new(""));
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header = lines.next().and_then(|(_, h)| kindling_core::split_csv(h)).unwrap_or_default();
    let Some(column) = header.iter().position(|h| h.trim().eq_ignore_ascii_case("path")) else {
        return Err(format!("{}:1: the header must name a `path` column, found {header:?}", csv.display()));
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (line, raw) in lines {
        if raw.trim().is_empty() {
            continue;
        }
        match kindling_core::split_csv(raw) {
            None => problems.push(format!("{}:{line}: has an unterminated quoted field", csv.display())),
            Some(f) if f.len() != header.len() => problems.push(format!(
                "{}:{line}: has {} fields, the header has {}",
                csv.display(),
                f.len(),
                header.len()
            )),
            Some(f) if f[column].trim().is_empty() => {
                problems.push(format!("{}:{line}: has an empty path", csv.display()));
            }
            Some(f) => files.push(base.join(f[column].trim())),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    if files.is_empty() {
        return Err(format!("{}: lists no files", csv.display()));
    }
    Ok(files)
}

/// Writes predictions in one [`Format`], as they come.
struct Writer<'a> {
    out: &'a mut dyn Write,
    format: Format,
    /// Classes per file.
    top: usize,
    /// Predictions written so far.
    written: usize,
}

impl Writer<'_> {
    fn start(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Tsv => Ok(()),
            Format::Json => write!(self.out, "["),
            Format::Csv => {
                let mut header = vec!["path".to_owned()];
                for i in 1..=self.top {
                    header.push(format!("class_{i}"));
                    header.push(format!("probability_{i}"));
                }
                writeln!(self.out, "{}", header.join(","))
            }
        }
    }

    fn write(&mut self, p: &Prediction) -> std::io::Result<()> {
        let scores = &p.scores[..self.top.min(p.scores.len())];
        let path = p.file.display().to_string();
        match self.format {
            Format::Tsv => {
                let top: Vec<String> = scores.iter().map(|s| format!("{} {:.3}", s.class, s.probability)).collect();
                writeln!(self.out, "{path}\t{}", top.join("\t"))?;
            }
            Format::Csv => {
                let mut row = vec![csv_field(&path)];
                for s in scores {
                    row.push(csv_field(&s.class));
                    row.push(s.probability.to_string());
                }
                writeln!(self.out, "{}", row.join(","))?;
            }
            Format::Json => {
                let predictions: Vec<serde_json::Value> = scores
                    .iter()
                    .map(|s| serde_json::json!({"class": s.class, "probability": json_f32(s.probability)}))
                    .collect();
                let object = serde_json::json!({"path": path, "predictions": predictions});
                let sep = if self.written == 0 { "\n" } else { ",\n" };
                write!(self.out, "{sep}{}", serde_json::to_string(&object)?)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Json if self.written == 0 => writeln!(self.out, "]"),
            Format::Json => writeln!(self.out, "\n]"),
            _ => Ok(()),
        }?;
        self.out.flush()
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// `x` as a JSON number with the shortest decimal that reads back as the same `f32` (`0.1`,
/// not `0.10000000149011612`).
fn json_f32(x: f32) -> serde_json::Value {
    x.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(serde_json::Value::Null, Into::into)
}
