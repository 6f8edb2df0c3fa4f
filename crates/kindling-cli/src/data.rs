//! `kindling data ...`: building data sets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kindling_audio::spatial::{SpatialConfig, spatialize};

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// A stereo direction data set: real recordings convolved with measured head-related
    /// impulse responses into N horizontal directions (experiment 1's task).
    Spatialize(SpatializeArgs),
    /// Write an IDX image set (MNIST, Fashion-MNIST) out as an image folder of PNGs,
    /// `out/<label>_<class>/<index>.png`, grey or RGB.
    ImageFolder(ImageFolderArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImageFolderArgs {
    /// IDX images (`[count, rows, cols]`, gzipped or not).
    #[arg(long)]
    images: PathBuf,
    /// IDX labels.
    #[arg(long)]
    labels: PathBuf,
    /// Output folder; must not exist, or be empty.
    #[arg(long)]
    out: PathBuf,
    /// Write 3-channel RGB PNGs (the grey value in each channel) instead of grey ones.
    #[arg(long)]
    rgb: bool,
    /// Class names in label order, comma-separated (default: the label numbers).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// Write only the first N images of each class.
    #[arg(long)]
    per_class: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct SpatializeArgs {
    /// Output folder: one folder per class, and manifest.csv.
    #[arg(long)]
    out: PathBuf,
    /// Measured head: KEMAR or FABIAN (from the SSR HRIR files).
    #[arg(long, value_enum, default_value_t = Head::Kemar)]
    head: Head,
    /// An HRIR file in the SSR layout instead of --head.
    #[arg(long)]
    hrir: Option<PathBuf>,
    /// Source recordings (WAV or Ogg Vorbis files, or folders of them). Default: the ALSA and
    /// freedesktop sound themes' recordings.
    #[arg(long = "source")]
    sources: Vec<PathBuf>,
    /// Number of directions, evenly from -90 to +90 degrees (+90 is the listener's left).
    #[arg(long, default_value_t = 11)]
    classes: usize,
    /// Samples per class.
    #[arg(long, default_value_t = 80)]
    per_class: usize,
    /// Output sample rate.
    #[arg(long, default_value_t = 16_000)]
    sample_rate: u32,
    /// Seconds per sample.
    #[arg(long, default_value_t = 6.1)]
    duration: f64,
    /// Add diffuse noise (independent per ear) at this SNR in dB.
    #[arg(long)]
    snr_db: Option<f64>,
    /// Add a late-reverberation tail with this RT60 in seconds.
    #[arg(long)]
    rt60: Option<f64>,
    /// Direct-to-reverberant ratio of that tail in dB.
    #[arg(long, default_value_t = 0.0)]
    drr_db: f64,
    /// Seed of every random choice (source, offset, gain, noise, tail).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Head {
    Kemar,
    Fabian,
}

const HRIRS: &str = "/usr/share/ssr/impulse_responses/hrirs";
const SOURCES: &[&str] = &["/usr/share/sounds/alsa", "/usr/share/sounds/freedesktop/stereo"];
const PACKAGES: &str = "soundscaperenderer-common alsa-utils sound-theme-freedesktop";

pub(crate) fn run(command: DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Spatialize(a) => spatialize_command(a),
        DataCommand::ImageFolder(a) => image_folder_command(a),
    }
}

fn image_folder_command(a: ImageFolderArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let classes = (!a.classes.is_empty()).then_some(a.classes.as_slice());
    let summary = kindling_vision::export_idx_folder(&a.images, &a.labels, &a.out, a.rgb, classes, a.per_class)?;
    let total: usize = summary.counts.iter().sum();
    println!(
        "{total} {} PNGs in {} class folders in {:.1} s -> {}",
        if a.rgb { "RGB" } else { "grey" },
        summary.folders.len(),
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn spatialize_command(a: SpatializeArgs) -> Result<ExitCode> {
    let hrir = a.hrir.unwrap_or_else(|| {
        Path::new(HRIRS).join(match a.head {
            Head::Kemar => "hrirs_kemar.wav",
            Head::Fabian => "hrirs_fabian_min_phase_eq.wav",
        })
    });
    if !hrir.exists() {
        bail!("{}: no such HRIR file (apt-get install {PACKAGES}, or give --hrir)", hrir.display());
    }
    let roots: Vec<PathBuf> =
        if a.sources.is_empty() { SOURCES.iter().map(PathBuf::from).collect() } else { a.sources.clone() };
    let mut sources = Vec::new();
    for root in &roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(root)
                .with_context(|| format!("{}: cannot list", root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["wav", "oga", "ogg"].contains(&e)))
                .collect();
            found.sort();
            sources.extend(found);
        } else if root.exists() {
            sources.push(root.clone());
        } else if !a.sources.is_empty() {
            bail!("{}: no such file or folder", root.display());
        }
    }
    if sources.is_empty() {
        bail!(
            "no source recordings found in {} (apt-get install {PACKAGES}, or give --source)",
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if a.classes == 0 {
        bail!("--classes must be at least 1");
    }
    let mut cfg = SpatialConfig::new(hrir, sources);
    cfg.directions = if a.classes == 1 {
        vec![0]
    } else {
        (0..a.classes).map(|i| (-90.0 + 180.0 * i as f64 / (a.classes - 1) as f64).round() as i32).collect()
    };
    cfg.per_class = a.per_class;
    cfg.sample_rate = a.sample_rate;
    cfg.duration = a.duration;
    cfg.snr_db = a.snr_db;
    cfg.rt60 = a.rt60;
    cfg.drr_db = a.drr_db;
    cfg.seed = a.seed;
    let start = Instant::now();
    let outcome = spatialize(&cfg, &a.out)?;
    println!(
        "{} files ({} directions x {}, {} sources) in {:.1} s -> {}",
        outcome.files,
        cfg.directions.len(),
        cfg.per_class,
        cfg.sources.len(),
        start.elapsed().as_secs_f64(),
        outcome.manifest.display()
    );
    Ok(ExitCode::SUCCESS)
}
