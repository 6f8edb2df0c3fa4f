//! `kindling data ...`: building data sets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kindling_audio::render::{self, Conditions, Renderer};
use kindling_audio::spatial::{SpatialConfig, spatialize};
use kindling_audio::{Audio, Channel, FeatureConfig, FeatureExtractor, StftConfig, WavExpect};

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// A stereo direction data set: real recordings convolved with measured head-related
    /// impulse responses into N horizontal directions (experiment 1's task).
    Spatialize(SpatializeArgs),
    /// Time on-the-fly rendering as the `spatial_dataset` stage does it: training samples
    /// rendered (noise, reverberation, head variation) and turned into features, per second,
    /// on one thread and on all of them.
    RenderBench(RenderBenchArgs),
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

/// The head, recordings and directions of `data spatialize` and `data render-bench`.
#[derive(Debug, Args)]
pub(crate) struct SceneArgs {
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
}

impl SceneArgs {
    /// The HRIR file, which must exist.
    fn hrir(&self) -> Result<PathBuf> {
        let hrir = self.head.hrir(self.hrir.clone());
        if !hrir.exists() {
            bail!("{}: no such HRIR file (apt-get install {PACKAGES}, or give --hrir)", hrir.display());
        }
        Ok(hrir)
    }

    /// The recordings: those given (each must exist), else the sound themes' that are
    /// installed; at least one.
    fn sources(&self) -> Result<Vec<PathBuf>> {
        let roots: Vec<PathBuf> = if self.sources.is_empty() {
            SOURCES.iter().map(PathBuf::from).filter(|p| p.exists()).collect()
        } else {
            self.sources.clone()
        };
        let sources = render::find_sources(&roots)?;
        if sources.is_empty() {
            let looked: Vec<String> = if self.sources.is_empty() {
                SOURCES.iter().map(|s| (*s).to_owned()).collect()
            } else {
                roots.iter().map(|r| r.display().to_string()).collect()
            };
            bail!("no source recordings found in {} (apt-get install {PACKAGES}, or give --source)", looked.join(", "));
        }
        Ok(sources)
    }
}

#[derive(Debug, Args)]
pub(crate) struct RenderBenchArgs {
    #[command(flatten)]
    scene: SceneArgs,
    /// Samples rendered per measurement.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Sample rate of the renders.
    #[arg(long, default_value_t = 16_000)]
    sample_rate: u32,
    /// Seconds per render.
    #[arg(long, default_value_t = 6.1)]
    duration: f64,
    /// STFT size of the features.
    #[arg(long, default_value_t = 512)]
    n_fft: usize,
    /// STFT hop of the features.
    #[arg(long, default_value_t = 256)]
    hop: usize,
    /// Feature planes, comma-separated (as in a pipeline's `features.channels`).
    #[arg(long, value_delimiter = ',', default_value = "l_logmag,r_logmag")]
    channels: Vec<String>,
    /// SNR range in dB, `lo,hi` (no noise when not given).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    snr_db: Option<Vec<f64>>,
    /// RT60 range in seconds, `lo,hi` (no tail when not given).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    rt60: Option<Vec<f64>>,
    /// Head size: ITD scaled by a factor in [1 - s, 1 + s].
    #[arg(long, default_value_t = 0.15)]
    itd_scale: f64,
    /// Per-ear EQ band gains in [-e, e] dB.
    #[arg(long, default_value_t = 3.0)]
    eq_db: f64,
    /// Spectral tilt in [-t, t] dB per octave.
    #[arg(long, default_value_t = 1.0)]
    tilt_db: f64,
    /// Level difference jitter in [-j, j] dB.
    #[arg(long, default_value_t = 2.0)]
    ild_jitter_db: f64,
}

#[derive(Debug, Args)]
pub(crate) struct SpatializeArgs {
    /// Output folder: one folder per class, and manifest.csv.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    scene: SceneArgs,
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

const SOURCES: &[&str] = render::THEME_SOURCES;
const PACKAGES: &str = render::PACKAGES;

impl Head {
    fn hrir(self, given: Option<PathBuf>) -> PathBuf {
        given.unwrap_or_else(|| match self {
            Head::Kemar => render::Head::Kemar.path(),
            Head::Fabian => render::Head::Fabian.path(),
        })
    }
}

/// `n` azimuths evenly from -90 to +90 degrees (0 alone for one).
fn azimuths(n: usize) -> Vec<i32> {
    if n == 1 { vec![0] } else { (0..n).map(|i| (-90.0 + 180.0 * i as f64 / (n - 1) as f64).round() as i32).collect() }
}

pub(crate) fn run(command: DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Spatialize(a) => spatialize_command(a),
        DataCommand::ImageFolder(a) => image_folder_command(a),
        DataCommand::RenderBench(a) => render_bench_command(a),
    }
}

fn render_bench_command(a: RenderBenchArgs) -> Result<ExitCode> {
    let hrir = a.scene.hrir()?;
    let sources = a.scene.sources()?;
    if a.scene.classes == 0 || a.count == 0 {
        bail!("nothing to render: give sources, --classes and --count of at least 1");
    }
    let range = |key: &str, v: &Option<Vec<f64>>| match v.as_deref() {
        None => Ok(None),
        Some(&[lo, hi]) => Ok(Some([lo, hi])),
        Some(_) => Err(anyhow::anyhow!("--{key}: give two values, `lo,hi`")),
    };
    let conditions = Conditions {
        snr_db: range("snr-db", &a.snr_db)?,
        rt60: range("rt60", &a.rt60)?,
        itd_scale: a.itd_scale,
        eq_db: a.eq_db,
        tilt_db: a.tilt_db,
        ild_jitter_db: a.ild_jitter_db,
        ..Conditions::default()
    };
    let channels: Vec<Channel> = a
        .channels
        .iter()
        .map(|c| {
            serde_json::from_value(serde_json::Value::String(c.clone())).with_context(|| format!("--channels: `{c}`"))
        })
        .collect::<Result<_>>()?;
    let extractor = FeatureExtractor::new(FeatureConfig {
        wav: WavExpect { duration: Some(a.duration), sample_rate: a.sample_rate, ..WavExpect::default() },
        stft: StftConfig { n_fft: a.n_fft, hop_length: Some(a.hop), ..StftConfig::default() },
        channels,
        ..FeatureConfig::default()
    })?;
    let start = Instant::now();
    let directions = azimuths(a.scene.classes);
    let renderer = Renderer::load(&hrir, &sources, &directions, a.sample_rate, a.duration, conditions)?;
    println!(
        "loaded {} directions of {} and {} sources in {:.1} s; features {:?}",
        directions.len(),
        hrir.display(),
        sources.len(),
        start.elapsed().as_secs_f64(),
        extractor.shape().unwrap_or_default()
    );
    let one = |i: usize| -> Result<usize> {
        let [l, r] = renderer.render(i % directions.len(), 0, 1, i as u64);
        let audio = Audio { sample_rate: a.sample_rate, channels: vec![l, r] };
        Ok(extractor.from_audio(Path::new("<render>"), &audio)?.data.len())
    };
    // Rendering alone, then with features, on one thread; then with features on all.
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(a.count as f64 / t.elapsed().as_secs_f64())
    };
    let render_only = time(&|| {
        for i in 0..a.count {
            std::hint::black_box(renderer.render(i % directions.len(), 0, 1, i as u64));
        }
        Ok(())
    })?;
    let serial = time(&|| (0..a.count).try_for_each(|i| one(i).map(|_| ())))?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let parallel = time(&|| {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| scope.spawn(move || (t..a.count).step_by(threads).try_for_each(|i| one(i).map(|_| ()))))
                .collect();
            workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a render thread panicked"))?)
        })
    })?;
    println!("{render_only:.1} renders/s on 1 thread ({serial:.1} with features)");
    println!("{parallel:.1} renders/s with features on {threads} threads");
    Ok(ExitCode::SUCCESS)
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
    let hrir = a.scene.hrir()?;
    let sources = a.scene.sources()?;
    if a.scene.classes == 0 {
        bail!("--classes must be at least 1");
    }
    let mut cfg = SpatialConfig::new(hrir, sources);
    cfg.directions = azimuths(a.scene.classes);
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
